package mirror

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/proxy"
	"github.com/portcullis-dev/portcullis/upstream"
	"github.com/portcullis-dev/portcullis/verify"
)

// importPolicy forbids tag 2.1.0 (so the gateway refuses that tag push) and tag moves.
const importPolicy = `version: 1
exceptionProcess: "ask the platform team"
environments:
  - name: dev
    repositories: ["**"]
rules:
  - {id: immutable-tags, type: immutable, mode: block}
  - {id: no-210, type: tag, mode: block, forbidden: ["2.1.0"]}
`

// target is the disconnected side: a registry with a gateway in front, and a count of
// the write requests that reached the registry.
type target struct {
	reg    string // the registry's URL, for reading behind the gateway's back
	gw     string // the gateway's host:port
	writes atomic.Int64
	// manifestWrites counts the manifest pushes among them.
	manifestWrites atomic.Int64
}

func newTarget(t *testing.T) *target {
	t.Helper()
	return newGateway(t, regtest.Registry(t), importPolicy)
}

// newGateway is a target whose gateway, with policy doc, is in front of the registry reg.
func newGateway(t *testing.T, reg, doc string) *target {
	t.Helper()
	tg := &target{reg: reg}
	p, err := policy.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	up, err := upstream.New(tg.reg, http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	g := gate.New(p, up, discard{}, gate.WithSignatures(verify.New(up)), gate.WithClock(func() time.Time { return time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC) }))
	tr, err := proxy.NewTransport(proxy.TransportOptions{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	counting := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			tg.writes.Add(1)
			if strings.Contains(r.URL.Path, "/manifests/") {
				tg.manifestWrites.Add(1)
			}
		}
		return tr.RoundTrip(r)
	})
	px, err := proxy.New(tg.reg, counting, proxy.WithGate(g))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v2/", px)
	mux.Handle(proxy.DecisionsPath, px.Decisions())
	srv := httptest.NewServer(proxy.Door{Name: "default"}.Handler(mux))
	t.Cleanup(srv.Close)
	tg.gw = strings.TrimPrefix(srv.URL, "http://")
	return tg
}

type discard struct{}

func (discard) Record(context.Context, audit.Event) error { return nil }

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// tagDigest reads repo:tag straight from the target registry ("" when absent).
func (tg *target) tagDigest(t *testing.T, repo, tag string) string {
	t.Helper()
	ref, err := name.ParseReference(strings.TrimPrefix(tg.reg, "http://")+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Head(ref)
	if isNotFound(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return d.Digest.String()
}

func (tg *target) options(t *testing.T, journal string, p Progress) ImportOptions {
	return ImportOptions{Gateway: tg.gw, Insecure: true, Journal: journal, WorkDir: t.TempDir(), Keychain: authn.NewMultiKeychain(), Progress: p}
}

// cancelAfter cancels an import after n pushed blobs and manifests: an import killed
// half-way.
type cancelAfter struct {
	mu     sync.Mutex
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Event(e Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.Phase == "blob" || e.Phase == "manifest" {
		c.n--
		if c.n == 0 {
			c.cancel()
		}
	}
}

func TestImportQuarantineResumeIdempotent(t *testing.T) {
	src := newSource(t)
	key := newSigningKey(t)
	dir, m := collect(t, src.mirrorFile(t, ""), key, WriteOptions{ChunkSize: 16 << 10})
	tg := newTarget(t)
	journal := filepath.Join(t.TempDir(), "journal.jsonl")

	// Killed half-way: cancelled after 5 steps.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := Import(ctx, dir, key.verifier, tg.options(t, journal, &cancelAfter{n: 5, cancel: cancel})); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled import: %v", err)
	}
	half := journalLines(t, journal)
	if half < 4 || half > 6 {
		t.Fatalf("journal holds %d steps after a cancel at the 5th", half)
	}
	for _, img := range m.Images {
		if d := tg.tagDigest(t, img.Name, img.Tag); d != "" {
			t.Fatalf("%s:%s published before the import finished", img.Name, img.Tag)
		}
	}

	// Resumed: completes; the refused tag stays unpublished.
	writesBefore := tg.writes.Load()
	rep, err := Import(context.Background(), dir, key.verifier, tg.options(t, journal, nil))
	if err != nil {
		t.Fatal(err)
	}
	if tg.writes.Load() == writesBefore {
		t.Fatal("the resumed import wrote nothing")
	}
	t.Logf("report: %+v", rep.Images)
	want := map[string]string{"1.0.0": VerdictAllow, "2.0.0": VerdictAllow, "2.1.0": VerdictDeny}
	for i, r := range rep.Images {
		if r.Verdict != want[r.Tag] || r.Digest != m.Images[i].Digest {
			t.Errorf("%s:%s: verdict %s (%s), want %s", r.Name, r.Tag, r.Verdict, r.Message, want[r.Tag])
		}
		got := tg.tagDigest(t, r.Name, r.Tag)
		switch r.Verdict {
		case VerdictAllow:
			if got != r.Digest {
				t.Errorf("%s:%s points at %q, want %s", r.Name, r.Tag, got, r.Digest)
			}
		case VerdictDeny:
			if got != "" {
				t.Errorf("refused %s:%s was published", r.Name, r.Tag)
			}
			if !strings.Contains(r.Message, "no-210") {
				t.Errorf("refusal message %q does not name the rule", r.Message)
			}
			// Quarantined: present by digest.
			ref, _ := name.ParseReference(strings.TrimPrefix(tg.reg, "http://")+"/"+r.Name+"@"+r.Digest, name.Insecure)
			if _, err := remote.Head(ref); err != nil {
				t.Errorf("refused image is not held by digest: %v", err)
			}
		}
	}
	if rep.Refused() != 1 {
		t.Fatalf("refused %d, want 1", rep.Refused())
	}
	// The legacy signature's tag came along.
	web := m.Images[0]
	if d := tg.tagDigest(t, web.Name, "sha256-"+web.Digest[7:]+".sig"); d == "" {
		t.Error("the .sig tag of the signed image was not imported")
	}

	// A third run changes nothing: no write reaches the registry, the journal is unchanged.
	lines, writes := journalLines(t, journal), tg.writes.Load()
	rep3, err := Import(context.Background(), dir, key.verifier, tg.options(t, journal, nil))
	if err != nil {
		t.Fatal(err)
	}
	if tg.writes.Load() != writes || journalLines(t, journal) != lines {
		t.Fatalf("third run: %d writes, journal %d→%d lines", tg.writes.Load()-writes, lines, journalLines(t, journal))
	}
	if rep3.Refused() != 1 {
		t.Fatalf("third run refused %d", rep3.Refused())
	}

	// Without the journal (lost), existing content is found by HEAD: still no write.
	if _, err := Import(context.Background(), dir, key.verifier, tg.options(t, filepath.Join(t.TempDir(), "new.jsonl"), nil)); err != nil {
		t.Fatal(err)
	}
	if tg.writes.Load() != writes {
		t.Fatalf("a run without the journal wrote %d times", tg.writes.Load()-writes)
	}
}

func TestImportDriftIsNotMoved(t *testing.T) {
	src := newSource(t)
	key := newSigningKey(t)
	dir, m := collect(t, src.mirrorFile(t, ""), key, WriteOptions{})
	tg := newTarget(t)
	api := m.Images[1]
	other, _ := regtest.WriteImage(t, tg.reg, api.Name+":"+api.Tag, randomImage(t, 512, 1))
	var drawn bytes.Buffer
	bars := NewBars(&drawn) // terminal bars follow an import too (per-blob bars, a total)
	rep, err := Import(context.Background(), dir, key.verifier, tg.options(t, filepath.Join(t.TempDir(), "j"), bars))
	bars.Wait()
	if !strings.Contains(drawn.String(), "total") {
		t.Errorf("bars drew %q", drawn.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Images[1]
	if r.Verdict != VerdictDrift || !strings.Contains(r.Message, other) {
		t.Fatalf("drifted tag: %+v", r)
	}
	if got := tg.tagDigest(t, api.Name, api.Tag); got != other {
		t.Fatalf("the drifted tag was moved to %s", got)
	}
}

func TestImportTamperedBundleImportsNothing(t *testing.T) {
	src := newSource(t)
	key := newSigningKey(t)
	dir, _ := collect(t, src.mirrorFile(t, ""), key, WriteOptions{ChunkSize: 16 << 10})
	bad := copyDir(t, dir)
	chunk := filepath.Join(bad, ChunkName(1))
	data, err := os.ReadFile(chunk)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 1
	if err := os.WriteFile(chunk, data, 0o644); err != nil {
		t.Fatal(err)
	}
	tg := newTarget(t)
	journal := filepath.Join(t.TempDir(), "j")
	_, err = Import(context.Background(), bad, key.verifier, tg.options(t, journal, nil))
	if err == nil || !strings.Contains(err.Error(), "nothing imported") || !strings.Contains(err.Error(), ChunkName(1)) {
		t.Fatalf("tampered bundle: %v", err)
	}
	if n := tg.writes.Load(); n != 0 {
		t.Fatalf("a tampered bundle wrote %d times to the registry", n)
	}
	if _, err := os.Stat(journal); !os.IsNotExist(err) {
		t.Fatal("a tampered bundle started a journal")
	}
}

func TestImportRefusesARegistryThatIsNotAGateway(t *testing.T) {
	src := newSource(t)
	key := newSigningKey(t)
	dir, _ := collect(t, src.mirrorFile(t, ""), key, WriteOptions{})
	reg := regtest.Registry(t)
	rep, err := Import(context.Background(), dir, key.verifier, ImportOptions{Gateway: strings.TrimPrefix(reg, "http://"), Insecure: true,
		Journal: filepath.Join(t.TempDir(), "j"), WorkDir: t.TempDir(), Keychain: authn.NewMultiKeychain()})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Images {
		if r.Verdict != VerdictError || !strings.Contains(r.Message, "portcullis gateway") {
			t.Errorf("%s:%s through a bare registry: %s %q", r.Name, r.Tag, r.Verdict, r.Message)
		}
	}
}

func journalLines(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(data), "\n")
}
