package gate_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/cosigntest"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/upstream"
	"github.com/portcullis-dev/portcullis/verify"
)

func signaturePolicy(t *testing.T, release cosigntest.Key, perPlatform bool) *policy.Policy {
	t.Helper()
	pp := "false"
	if perPlatform {
		pp = "true"
	}
	doc := `version: 1
exceptionProcess: "file a SEC ticket"
authorities:
` + release.AuthorityYAML(t, "release") + `    signCommand: "cosign sign --key release.key"
environments:
  - name: prod
    repositories: ["prod/**"]
  - name: dev
    repositories: ["**"]
    failMode: open
rules:
  - id: prod-signed
    type: signature
    mode: block
    environments: [prod]
    authorities: [release]
    perPlatform: ` + pp + `
`
	p, err := policy.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func signedGate(t *testing.T, reg string, p *policy.Policy) (*gate.Gate, *memSink) {
	t.Helper()
	up, err := upstream.New(reg, http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	g := gate.New(p, up, sink, gate.WithSignatures(verify.New(up)),
		gate.WithClock(func() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) }))
	return g, sink
}

func pull(g *gate.Gate, repo, digest string, manifest []byte) gate.Result {
	return g.Admit(context.Background(), gate.Request{Action: policy.ActionPull, Host: "gw.example", Repository: repo, Reference: digest, Digest: digest, Manifest: manifest})
}

func TestProdPullNeedsATrustedSignature(t *testing.T) {
	reg := regtest.Registry(t)
	host := strings.TrimPrefix(reg, "http://")
	release, stranger := cosigntest.NewKey(t), cosigntest.NewKey(t)
	g, sink := signedGate(t, reg, signaturePolicy(t, release, false))

	unsigned := pushRandom(t, reg, "prod/api:1.0.0")
	res := pull(g, "prod/api", unsigned, nil)
	if res.Verdict != policy.VerdictDeny {
		t.Fatalf("unsigned prod image: %s", res.Verdict)
	}
	for _, want := range []string{"[prod-signed]", "release", "no signature", "cosign sign --key release.key gw.example/prod/api@" + unsigned, "file a SEC ticket"} {
		if !strings.Contains(res.Message, want) {
			t.Errorf("denial %q lacks %q", res.Message, want)
		}
	}

	byStranger := pushRandom(t, reg, "prod/api:1.0.1")
	cosigntest.SignLegacy(t, host, "prod/api", byStranger, stranger)
	if res := pull(g, "prod/api", byStranger, nil); res.Verdict != policy.VerdictDeny || !strings.Contains(res.Message, "unknown key") {
		t.Fatalf("signed by an unknown key: %s %q", res.Verdict, res.Message)
	}

	// A signature replayed from another image: valid, by the right key, for another digest.
	replayed := pushRandom(t, reg, "prod/api:1.0.2")
	other := pushRandom(t, reg, "prod/api:1.0.3")
	cosigntest.PushLegacy(t, host, "prod/api", replayed, cosigntest.Payload(host+"/prod/api", other), release.Sign)
	if res := pull(g, "prod/api", replayed, nil); res.Verdict != policy.VerdictDeny || !strings.Contains(res.Message, "another digest") {
		t.Fatalf("replayed signature: %s %q", res.Verdict, res.Message)
	}

	good := pushRandom(t, reg, "prod/api:1.1.0")
	cosigntest.SignLegacy(t, host, "prod/api", good, release)
	if res := pull(g, "prod/api", good, nil); res.Verdict != policy.VerdictAllow {
		t.Fatalf("signed by release: %s %q", res.Verdict, res.Message)
	}
	last := sink.events[len(sink.events)-1]
	if last.Verdict != "allow" || last.Results[0].Outcome != "pass" || !strings.Contains(last.Results[0].Finding, "release") {
		t.Fatalf("audit event of the signed pull: %+v", last)
	}

	// dev needs no signature.
	devImg := pushRandom(t, reg, "team/api:1.0.0")
	if res := pull(g, "team/api", devImg, nil); res.Verdict != policy.VerdictAllow {
		t.Fatalf("dev pull: %s %q", res.Verdict, res.Message)
	}
}

func TestSignedIndexCoversItsPlatformManifests(t *testing.T) {
	for _, perPlatform := range []bool{false, true} {
		t.Run(map[bool]string{false: "index signature covers children", true: "perPlatform requires each child signed"}[perPlatform], func(t *testing.T) {
			reg := regtest.Registry(t)
			host := strings.TrimPrefix(reg, "http://")
			release := cosigntest.NewKey(t)
			g, _ := signedGate(t, reg, signaturePolicy(t, release, perPlatform))

			idx, err := random.Index(128, 1, 2)
			if err != nil {
				t.Fatal(err)
			}
			ref, _ := name.ParseReference(host+"/prod/multi:2.0.0", name.Insecure)
			if err := remote.WriteIndex(ref, idx); err != nil {
				t.Fatal(err)
			}
			idxDigest, _ := idx.Digest()
			raw, _ := idx.RawManifest()
			im, _ := idx.IndexManifest()
			child := im.Manifests[0].Digest.String()

			// Before the index is pulled, an unsigned child stands alone and is denied.
			if res := pull(g, "prod/multi", child, nil); res.Verdict != policy.VerdictDeny {
				t.Fatalf("unsigned child before its index: %s", res.Verdict)
			}
			cosigntest.SignLegacy(t, host, "prod/multi", idxDigest.String(), release)
			if res := pull(g, "prod/multi", idxDigest.String(), raw); res.Verdict != policy.VerdictAllow {
				t.Fatalf("signed index: %s %q", res.Verdict, res.Message)
			}
			res := pull(g, "prod/multi", child, nil)
			want := map[bool]policy.Verdict{false: policy.VerdictAllow, true: policy.VerdictDeny}[perPlatform]
			if res.Verdict != want {
				t.Fatalf("child after its signed index was served: %s %q, want %s", res.Verdict, res.Message, want)
			}
			if !perPlatform && !strings.Contains(res.Decision.Results[0].Finding, idxDigest.String()[:19]) {
				t.Fatalf("finding %q does not name the covering index", res.Decision.Results[0].Finding)
			}
		})
	}
}

func TestIndexCoverageIsSharedThroughTheCache(t *testing.T) {
	reg := regtest.Registry(t)
	host := strings.TrimPrefix(reg, "http://")
	release := cosigntest.NewKey(t)
	p := signaturePolicy(t, release, false)
	up, err := upstream.New(reg, http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	shared := cache.NewMemory(1 << 20)
	replica := func() *gate.Gate {
		return gate.New(p, up, &memSink{}, gate.WithSignatures(verify.New(up)), gate.WithCache(shared))
	}
	a, b := replica(), replica()

	idx, err := random.Index(128, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(host+"/prod/multi:3.0.0", name.Insecure)
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	idxDigest, _ := idx.Digest()
	raw, _ := idx.RawManifest()
	im, _ := idx.IndexManifest()
	cosigntest.SignLegacy(t, host, "prod/multi", idxDigest.String(), release)
	if res := pull(a, "prod/multi", idxDigest.String(), raw); res.Verdict != policy.VerdictAllow {
		t.Fatalf("signed index through replica A: %s", res.Verdict)
	}
	if res := pull(b, "prod/multi", im.Manifests[1].Digest.String(), nil); res.Verdict != policy.VerdictAllow {
		t.Fatalf("platform manifest through replica B after A served the index: %s %q", res.Verdict, res.Message)
	}
}
