package gate_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/upstream"
)

// memSink collects audit events.
type memSink struct {
	mu     sync.Mutex
	events []audit.Event
}

func (m *memSink) Record(_ context.Context, e audit.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, e)
	return nil
}

const testPolicy = `version: 1
exceptionProcess: "file a SEC ticket"
environments:
  - name: prod
    repositories: ["prod/**"]
    failMode: closed
  - name: dev
    repositories: ["**"]
    failMode: open
rules:
  - id: no-latest
    type: tag
    mode: block
    forbidden: [latest]
  - id: immutable-tags
    type: immutable
    mode: block
  - id: release-tags
    type: tag
    mode: block
    enforceFrom: 2026-12-15
    environments: [prod]
    allowed: ['^v?\d+\.\d+\.\d+$']
`

func newGate(t *testing.T, upstreamURL string, now time.Time) (*gate.Gate, *memSink) {
	t.Helper()
	p, err := policy.Parse([]byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	up, err := upstream.New(upstreamURL, http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	return gate.New(p, up, sink, gate.WithClock(func() time.Time { return now })), sink
}

// pushRandom pushes a random image straight to the registry and returns its digest.
func pushRandom(t *testing.T, registry, repoTag string) string {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(strings.TrimPrefix(registry, "http://")+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func TestPushTagRulesAgainstRealRegistry(t *testing.T) {
	reg := regtest.Registry(t)
	existing := pushRandom(t, reg, "team/app:1.0.0")
	day := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	g, sink := newGate(t, reg, day)
	other := "sha256:" + strings.Repeat("ab", 32)
	cases := []struct {
		name, repo, ref, digest string
		want                    policy.Verdict
		inMessage               string
	}{
		{"latest is denied with the rule and the fix", "team/app", "latest", other, policy.VerdictDeny, "[no-latest]"},
		{"a new tag is accepted", "team/app", "1.0.1", other, policy.VerdictAllow, ""},
		{"moving an existing tag is denied", "team/app", "1.0.0", other, policy.VerdictDeny, "already points at"},
		{"re-pushing the same digest is accepted", "team/app", "1.0.0", existing, policy.VerdictAllow, ""},
		{"an artifact tag does not hold an image", "team/app", "sha256-" + strings.Repeat("cd", 32) + ".sig", other, policy.VerdictDeny, "is reserved for the signature of"},
		{"push by digest has no tag rules", "team/app", other, other, policy.VerdictAllow, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := g.Admit(context.Background(), gate.Request{Action: policy.ActionPush, Repository: c.repo, Reference: c.ref, Digest: c.digest})
			if res.Verdict != c.want {
				t.Fatalf("verdict %s, want %s (message %q)", res.Verdict, c.want, res.Message)
			}
			if c.inMessage != "" && !strings.Contains(res.Message, c.inMessage) {
				t.Fatalf("message %q lacks %q", res.Message, c.inMessage)
			}
			if c.want == policy.VerdictDeny && !strings.Contains(res.Message, "file a SEC ticket") {
				t.Fatalf("denial %q does not say how to request an exception", res.Message)
			}
		})
	}
	if len(sink.events) != len(cases) {
		t.Fatalf("%d audit events for %d decisions", len(sink.events), len(cases))
	}
	e := sink.events[2]
	if e.Verdict != "deny" || e.Repository != "team/app" || e.Reference != "1.0.0" || e.Environment != "dev" || e.PolicyRevision == "" || len(e.Results) == 0 {
		t.Fatalf("incomplete audit event: %+v", e)
	}
}

func TestEnforceFromWarnsBeforeAndBlocksFrom(t *testing.T) {
	reg := regtest.Registry(t)
	req := gate.Request{Action: policy.ActionPush, Repository: "prod/app", Reference: "nightly", Digest: "sha256:" + strings.Repeat("01", 32)}
	before, _ := newGate(t, reg, time.Date(2026, 12, 14, 23, 59, 0, 0, time.UTC))
	res := before.Admit(context.Background(), req)
	if res.Verdict != policy.VerdictWarn || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "2026-12-15") {
		t.Fatalf("day before: verdict %s warnings %q, want one warning naming 2026-12-15", res.Verdict, res.Warnings)
	}
	on, _ := newGate(t, reg, time.Date(2026, 12, 15, 0, 0, 0, 0, time.UTC))
	if res := on.Admit(context.Background(), req); res.Verdict != policy.VerdictDeny || !strings.Contains(res.Message, "[release-tags]") {
		t.Fatalf("enforcement day: verdict %s message %q, want a denial by release-tags", res.Verdict, res.Message)
	}
}

func TestFailModeWhenUpstreamCannotBeRead(t *testing.T) {
	// A closed port: the tag lookup fails, so immutability cannot be decided.
	g, sink := newGate(t, "http://127.0.0.1:1", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	prod := g.Admit(context.Background(), gate.Request{Action: policy.ActionPush, Repository: "prod/app", Reference: "1.0.0", Digest: "sha256:" + strings.Repeat("01", 32)})
	if prod.Verdict != policy.VerdictDeny || !prod.Unavailable || !strings.Contains(prod.Message, "fails closed") ||
		prod.RetryAfter <= 0 || prod.Lasting || !strings.HasPrefix(prod.Message, "The tag check is unavailable for now; retry in") {
		t.Fatalf("prod: %+v, want refused as unavailable with a Retry-After, failing closed, saying first what is missing", prod)
	}
	dev := g.Admit(context.Background(), gate.Request{Action: policy.ActionPush, Repository: "team/app", Reference: "1.0.0", Digest: "sha256:" + strings.Repeat("01", 32)})
	if dev.Verdict != policy.VerdictWarn || dev.Unavailable || len(dev.Warnings) == 0 || !strings.Contains(dev.Warnings[len(dev.Warnings)-1], "fails open") {
		t.Fatalf("dev: %+v, want allowed with a fail-open warning", dev)
	}
	if sink.events[0].FailMode != "closed" || sink.events[1].FailMode != "open" || sink.events[0].Undecided == "" {
		t.Fatalf("audit events do not record the fail mode: %+v", sink.events)
	}
}

func TestUpstreamChallengeIsRelayed(t *testing.T) {
	reg := regtest.Registry(t, regtest.Htpasswd(t, "ci", "s3cret"))
	g, _ := newGate(t, reg, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	res := g.Admit(context.Background(), gate.Request{Action: policy.ActionPush, Repository: "team/app", Reference: "1.0.0", Digest: "sha256:" + strings.Repeat("01", 32)})
	if res.Challenge == nil || res.Challenge.Status != http.StatusUnauthorized || !strings.Contains(res.Challenge.WWWAuthenticate, "Basic") {
		t.Fatalf("got %+v, want the upstream's 401 Basic challenge", res)
	}
}

// TestSubjectDoesNotMakeAnArtifact: an image with a subject field is still an image, and
// every rule judges it; a real signature manifest is judged as a signature.
func TestSubjectDoesNotMakeAnArtifact(t *testing.T) {
	reg := regtest.Registry(t)
	g, sink := newGate(t, reg, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	subject := map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + strings.Repeat("01", 32), "size": 10}
	image, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
		"config":       map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + strings.Repeat("03", 32), "size": 2},
		"layers":       []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + strings.Repeat("04", 32), "size": 2}},
		"subject":      subject})
	res := g.Admit(context.Background(), gate.Request{Action: policy.ActionPush, Repository: "team/app", Reference: "latest", Digest: "sha256:" + strings.Repeat("02", 32), Manifest: image})
	if res.Verdict != policy.VerdictDeny || !strings.Contains(res.Message, "[no-latest]") {
		t.Fatalf("an image with a subject pushed as latest: %s %q, want denied by no-latest", res.Verdict, res.Message)
	}
	sig, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config":  map[string]any{"mediaType": "application/vnd.oci.empty.v1+json", "digest": "sha256:" + strings.Repeat("05", 32), "size": 2},
		"layers":  []any{map[string]any{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "digest": "sha256:" + strings.Repeat("06", 32), "size": 2}},
		"subject": subject})
	res = g.Admit(context.Background(), gate.Request{Action: policy.ActionPush, Repository: "team/app", Reference: "sha256:" + strings.Repeat("07", 32), Digest: "sha256:" + strings.Repeat("07", 32), Manifest: sig})
	if res.Verdict == policy.VerdictDeny {
		t.Fatalf("a sigstore bundle pushed by digest: %q", res.Message)
	}
	if first, last := sink.events[len(sink.events)-2], sink.events[len(sink.events)-1]; first.Kind != "image" || last.Kind != "signature" {
		t.Fatalf("audit events name the kinds %q and %q, want image and signature", first.Kind, last.Kind)
	}
}

func TestClientUserIsRecorded(t *testing.T) {
	reg := regtest.Registry(t)
	g, sink := newGate(t, reg, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	g.Admit(context.Background(), gate.Request{Action: policy.ActionPull, Repository: "team/app", Reference: "1.0.0",
		Authorization: "Basic Y2ktYm90OnNlY3JldA==", ClientAddr: "10.0.0.7:5123"})
	if got := sink.events[0].Client; got.User != "ci-bot" || got.Addr != "10.0.0.7:5123" {
		t.Fatalf("client %+v, want user ci-bot at 10.0.0.7:5123", got)
	}
}

// Failing open lets through what could not be checked, not what was checked and failed:
// a vulnerability rule without a scan warns, a tag rule still denies.
func TestFailOpenOnlyForMissingEvidence(t *testing.T) {
	reg := regtest.Registry(t)
	up, err := upstream.New(reg, http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse([]byte(`version: 1
environments:
  - {name: dev, repositories: ["**"], failMode: open}
rules:
  - {id: no-latest, type: tag, mode: block, forbidden: [latest]}
  - {id: vulns, type: vulnerability, mode: block, severity: critical}
`))
	if err != nil {
		t.Fatal(err)
	}
	g := gate.New(p, up, &memSink{}) // no scanner: the vulnerability evidence cannot be gathered
	digest := "sha256:" + strings.Repeat("01", 32)
	res := g.Admit(context.Background(), gate.Request{Action: policy.ActionPush, Repository: "team/app", Reference: "1.0.0", Digest: digest, Manifest: []byte(`{}`)})
	if res.Verdict != policy.VerdictWarn || res.Unavailable || len(res.Warnings) < 2 ||
		!strings.Contains(strings.Join(res.Warnings, "\n"), "[vulns] could not scan team/app@") ||
		!strings.Contains(res.Warnings[len(res.Warnings)-1], "fails open") {
		t.Fatalf("unscanned push in a fail-open environment: %+v, want allowed with warnings", res)
	}
	res = g.Admit(context.Background(), gate.Request{Action: policy.ActionPush, Repository: "team/app", Reference: "latest", Digest: digest, Manifest: []byte(`{}`)})
	if res.Verdict != policy.VerdictDeny || res.Unavailable || !strings.Contains(res.Message, "[no-latest]") || strings.Contains(res.Message, "[vulns]") {
		t.Fatalf("latest in a fail-open environment: %+v, want denied by no-latest only", res)
	}
}
