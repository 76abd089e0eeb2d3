package gate_test

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/internal/scantest"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/scan/vulndb"
	"github.com/portcullis-dev/portcullis/upstream"
)

// imageWithFile pushes an image with one layer holding path → content.
func imageWithFile(t *testing.T, reg, repoTag, path string, content []byte) (string, []byte) {
	t.Helper()
	l := scantest.FileLayer(t, path, content)
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Config(img, v1.Config{User: "65532"})
	if err != nil {
		t.Fatal(err)
	}
	return regtest.WriteImage(t, reg, repoTag, img)
}

// countingLayers counts the layer blobs the scanner opens.
type countingLayers struct {
	*upstream.Client
	opened atomic.Int64
}

func (c *countingLayers) OpenBlob(ctx context.Context, repo, digest string) (io.ReadCloser, error) {
	c.opened.Add(1)
	return c.Client.OpenBlob(ctx, repo, digest)
}

func TestScannerFindsRealGoAdvisoriesOnce(t *testing.T) {
	dbDir, reg, up := scanEnv(t)
	dgst, manifest := imageWithFile(t, reg, "prod/svc:1.0.0", "app/svc", scantest.VulnerableGoBinary(t))
	reader := &countingLayers{Client: up}
	s := gate.NewScanner(reader, cache.NewFlight(cache.NewMemory(64<<20)), dbDir)
	rep, err := s.Scan(context.Background(), "prod/svc", dgst, manifest)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]string{}
	for _, f := range rep.Findings {
		if f.Package.Name == "golang.org/x/text" {
			found[f.ID] = f.Fixed
		}
	}
	if found["GO-2021-0113"] != "0.3.7" || found["GO-2022-1059"] != "0.3.8" {
		t.Fatalf("x/text findings %v, want GO-2021-0113 fixed in 0.3.7 and GO-2022-1059 fixed in 0.3.8 (all: %+v)", found, rep.Findings)
	}
	if rep.DBRevision == "" || rep.Packages == 0 {
		t.Fatalf("report lacks revision or packages: %+v", rep)
	}
	// A second scan of the same digest is the cached report: no layer is read again.
	opened := reader.opened.Load()
	if _, err := s.Scan(context.Background(), "prod/svc", dgst, manifest); err != nil {
		t.Fatal(err)
	}
	if reader.opened.Load() != opened {
		t.Fatal("the second scan read the layer again")
	}
}

func TestVulnerabilityRuleDeniesThenNewDatabaseRematchesWithoutBlobs(t *testing.T) {
	dbDir, reg, up := scanEnv(t)
	binary := scantest.VulnerableGoBinary(t)
	prodDigest, prodManifest := imageWithFile(t, reg, "prod/svc:1.0.0", "app/svc", binary)
	devDigest, devManifest := imageWithFile(t, reg, "dev/svc:1.0.0", "app/svc", binary)
	p, err := policy.Parse([]byte(`version: 1
environments:
  - name: prod
    repositories: ["prod/**"]
  - name: dev
    repositories: ["**"]
    failMode: open
rules:
  - id: prod-vulns
    type: vulnerability
    mode: block
    environments: [prod]
    severity: critical
    fixable: true
  - id: dev-vulns
    type: vulnerability
    mode: warn
    environments: [dev]
    severity: high
`))
	if err != nil {
		t.Fatal(err)
	}
	reader := &countingLayers{Client: up}
	scanner := gate.NewScanner(reader, cache.NewFlight(cache.NewMemory(64<<20)), dbDir)
	g := gate.New(p, up, &memSink{}, gate.WithImages(up), gate.WithScanner(scanner))
	push := func(repo, dgst string, manifest []byte) gate.Result {
		return g.Admit(context.Background(), gate.Request{Action: policy.ActionPush, Repository: repo, Reference: "1.0.0", Digest: dgst, Manifest: manifest})
	}
	res := push("prod/svc", prodDigest, prodManifest)
	if res.Verdict != policy.VerdictDeny {
		t.Fatalf("vulnerable Go binary pushed to prod: %s %q", res.Verdict, res.Message)
	}
	for _, want := range []string{"[prod-vulns]", "GO-2022-1059", "golang.org/x/text", "0.3.8"} {
		if !strings.Contains(res.Message, want) {
			t.Errorf("prod denial lacks %q:\n%s", want, res.Message)
		}
	}
	if res := push("dev/svc", devDigest, devManifest); res.Verdict != policy.VerdictWarn || len(res.Warnings) == 0 || !strings.Contains(res.Warnings[0], "GO-2022-1059") {
		t.Fatalf("same image to dev: %s %q, want allowed with the findings as warnings", res.Verdict, res.Warnings)
	}

	// A newer database without those advisories: the verdict changes, and no layer blob is
	// read again (the cached inventories are matched anew).
	opened := reader.opened.Load()
	if _, err := vulndb.Import(dbDir, filepath.Join("..", "scan", "vulndb", "testdata", "debian")); err != nil {
		t.Fatal(err)
	}
	scanner.Reload()
	if res := push("prod/svc", prodDigest, prodManifest); res.Verdict != policy.VerdictAllow {
		t.Fatalf("after importing a database without Go advisories: %s %q", res.Verdict, res.Message)
	}
	if n := reader.opened.Load() - opened; n != 0 {
		t.Fatalf("re-matching read %d layer blobs again, want 0", n)
	}
}

// heldLayers holds every layer read until released, like a slow upstream.
type heldLayers struct {
	*upstream.Client
	release chan struct{}
}

func (h *heldLayers) OpenBlob(ctx context.Context, repo, digest string) (io.ReadCloser, error) {
	select {
	case <-h.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return h.Client.OpenBlob(ctx, repo, digest)
}

func TestFirstPullOfAnUnscannedImageDoesNotWaitForever(t *testing.T) {
	dbDir, reg, up := scanEnv(t)
	// Pushed straight to the registry: the gateway has never scanned it.
	dgst, manifest := imageWithFile(t, reg, "prod/svc:2.0.0", "app/svc", scantest.VulnerableGoBinary(t))
	p, err := policy.Parse([]byte(`version: 1
environments:
  - {name: prod, repositories: ["prod/**"], failMode: closed}
  - {name: dev, repositories: ["**"], failMode: open}
rules:
  - {id: vulns, type: vulnerability, mode: block, severity: critical}
`))
	if err != nil {
		t.Fatal(err)
	}
	held := &heldLayers{Client: up, release: make(chan struct{})}
	scanner := gate.NewScanner(held, cache.NewFlight(cache.NewMemory(64<<20)), dbDir)
	g := gate.New(p, up, &memSink{}, gate.WithImages(up), gate.WithScanner(scanner), gate.WithPullScanWait(100*time.Millisecond))
	pullOf := func(repo string) gate.Result {
		return g.Admit(context.Background(), gate.Request{Action: policy.ActionPull, Repository: repo, Reference: dgst, Digest: dgst, Manifest: manifest})
	}
	res := pullOf("prod/svc")
	if !res.Unavailable || res.RetryAfter <= 0 || !strings.Contains(res.Message, "being scanned") {
		t.Fatalf("prod pull while the scan runs: %+v, want a retryable refusal", res)
	}
	close(held.release)
	// The scan went on in the background; once it lands the pull gets the real verdict.
	deadline := time.Now().Add(time.Minute)
	for {
		res = pullOf("prod/svc")
		if !res.Unavailable || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if res.Verdict != policy.VerdictDeny || !strings.Contains(res.Message, "GO-2022-1059") {
		t.Fatalf("prod pull after the scan: %s %q, want denied for the advisories", res.Verdict, res.Message)
	}
}

// scanEnv is a database of real Go advisories and a real registry with a client.
func scanEnv(t *testing.T) (dbDir, reg string, up *upstream.Client) {
	t.Helper()
	dbDir = scantest.GoDB(t)
	reg = regtest.Registry(t)
	up, err := upstream.New(reg, http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	return dbDir, reg, up
}

// An environment's unscanned setting decides what the first pull of an image not scanned
// yet gets, whatever its fail mode: dev (fails open) refuses with retry, prod (fails
// closed) lets it through with a warning; without waiting, and the scan still runs.
func TestUnscannedPullPerEnvironment(t *testing.T) {
	dbDir, reg, up := scanEnv(t)
	bin := scantest.VulnerableGoBinary(t)
	dgst, manifest := imageWithFile(t, reg, "prod/svc:2.0.0", "app/svc", bin)
	devDigest, devManifest := imageWithFile(t, reg, "dev/svc:2.0.0", "app/svc", bin)
	p, err := policy.Parse([]byte(`version: 1
environments:
  - {name: prod, repositories: ["prod/**"], failMode: closed, unscanned: {wait: 0s, then: allow}}
  - {name: dev, repositories: ["**"], failMode: open, unscanned: {wait: 50ms, then: retry}}
rules:
  - {id: vulns, type: vulnerability, mode: block, severity: critical}
`))
	if err != nil {
		t.Fatal(err)
	}
	held := &heldLayers{Client: up, release: make(chan struct{})}
	scanner := gate.NewScanner(held, cache.NewFlight(cache.NewMemory(64<<20)), dbDir)
	// The gateway-wide wait is long: the environments' own waits must be the ones used.
	g := gate.New(p, up, &memSink{}, gate.WithImages(up), gate.WithScanner(scanner), gate.WithPullScanWait(time.Hour))
	pullOf := func(repo string) gate.Result {
		d, m := dgst, manifest
		if repo == "dev/svc" {
			d, m = devDigest, devManifest
		}
		return g.Admit(context.Background(), gate.Request{Action: policy.ActionPull, Repository: repo, Reference: d, Digest: d, Manifest: m})
	}
	res := pullOf("prod/svc")
	if res.Verdict != policy.VerdictWarn || res.Unavailable || len(res.Warnings) == 0 ||
		!strings.Contains(res.Warnings[len(res.Warnings)-1], "answers pulls of images still being scanned with allow") {
		t.Fatalf("prod pull while the scan runs: %+v, want allowed with a warning", res)
	}
	res = pullOf("dev/svc")
	if !res.Unavailable || res.RetryAfter <= 0 || !strings.Contains(res.Message, "answers pulls of images still being scanned with retry") {
		t.Fatalf("dev pull while the scan runs: %+v, want a retryable refusal", res)
	}
	close(held.release)
	// The scan started by the first pull lands; then the pull gets the real verdict.
	deadline := time.Now().Add(time.Minute)
	for {
		res = pullOf("prod/svc")
		if res.Verdict == policy.VerdictDeny || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if res.Verdict != policy.VerdictDeny || !strings.Contains(res.Message, "GO-2022-1059") {
		t.Fatalf("prod pull after the scan: %s %q, want denied for the advisories", res.Verdict, res.Message)
	}
}
