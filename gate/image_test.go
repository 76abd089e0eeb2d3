package gate_test

import (
	"context"
	"crypto/rand"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/upstream"
)

const imagePolicy = `version: 1
environments:
  - name: prod
    repositories: ["prod/**"]
rules:
  - id: no-root
    type: config
    mode: block
    check: root
  - id: no-secrets
    type: secret
    mode: block
`

// countingImages counts the blobs the gate reads through the real upstream client.
type countingImages struct {
	*upstream.Client
	blobs atomic.Int64
}

func (c *countingImages) Blob(ctx context.Context, repo, digest string, max int64) ([]byte, error) {
	c.blobs.Add(1)
	return c.Client.Blob(ctx, repo, digest, max)
}

// pushWithConfig pushes a random image whose config has user and env, returning its
// digest and manifest.
func pushWithConfig(t *testing.T, reg, repoTag, user string, env ...string) (string, []byte) {
	t.Helper()
	img, err := random.Image(128, 1)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Config(img, v1.Config{User: user, Env: env})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(strings.TrimPrefix(reg, "http://")+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	raw, _ := img.RawManifest()
	return d.String(), raw
}

func TestImageEvidenceForConfigAndSecretRules(t *testing.T) {
	reg := regtest.Registry(t)
	p, err := policy.Parse([]byte(imagePolicy))
	if err != nil {
		t.Fatal(err)
	}
	up, err := upstream.New(reg, http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	images := &countingImages{Client: up}
	g := gate.New(p, up, &memSink{}, gate.WithImages(images), gate.WithClock(func() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) }))
	admit := func(action policy.Action, repo, digest string, manifest []byte) gate.Result {
		return g.Admit(context.Background(), gate.Request{Action: action, Repository: repo, Reference: digest, Digest: digest, Manifest: manifest})
	}

	clean, cleanManifest := pushWithConfig(t, reg, "prod/api:1.0.0", "65532")
	if res := admit(policy.ActionPush, "prod/api", clean, cleanManifest); res.Verdict != policy.VerdictAllow {
		t.Fatalf("non-root image without secrets: %s %q", res.Verdict, res.Message)
	}
	root, rootManifest := pushWithConfig(t, reg, "prod/api:1.0.1", "")
	if res := admit(policy.ActionPush, "prod/api", root, rootManifest); res.Verdict != policy.VerdictDeny || !strings.Contains(res.Message, "no USER is set") {
		t.Fatalf("root image: %s %q", res.Verdict, res.Message)
	}
	token := randomToken(36)
	leaky, leakyManifest := pushWithConfig(t, reg, "prod/api:1.0.2", "1000", "GITHUB_TOKEN=ghp_"+token)
	res := admit(policy.ActionPush, "prod/api", leaky, leakyManifest)
	if res.Verdict != policy.VerdictDeny || !strings.Contains(res.Message, "[no-secrets]") || strings.Contains(res.Message, token) {
		t.Fatalf("image with a token in Env: %s %q (must name it, never show it)", res.Verdict, res.Message)
	}

	// A HEAD (no body): the gate reads the manifest itself; the config's evidence is cached.
	before := images.blobs.Load()
	if res := admit(policy.ActionPull, "prod/api", root, nil); res.Verdict != policy.VerdictDeny {
		t.Fatalf("HEAD of the root image: %s", res.Verdict)
	}
	if n := images.blobs.Load() - before; n != 0 {
		t.Fatalf("the config was read again (%d blob reads) though its evidence is cached", n)
	}

	// An index has no config: its platform manifests are judged on their own.
	idx, err := random.Index(64, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := idx.RawManifest()
	d, _ := idx.Digest()
	if res := admit(policy.ActionPush, "prod/api", d.String(), raw); res.Verdict != policy.VerdictAllow {
		t.Fatalf("index: %s %q", res.Verdict, res.Message)
	}
}

func TestUnreadableConfigAppliesTheFailMode(t *testing.T) {
	reg := regtest.Registry(t)
	p, err := policy.Parse([]byte(imagePolicy))
	if err != nil {
		t.Fatal(err)
	}
	up, err := upstream.New(reg, http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	g := gate.New(p, up, &memSink{}, gate.WithImages(up))
	// A manifest whose config blob is not in the registry.
	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` + strings.Repeat("1", 64) + `","size":10},"layers":[]}`)
	res := g.Admit(context.Background(), gate.Request{Action: policy.ActionPush, Repository: "prod/api", Reference: "2.0.0", Digest: "sha256:" + strings.Repeat("2", 64), Manifest: manifest})
	if !res.Unavailable || !strings.Contains(res.Message, "fails closed") {
		t.Fatalf("unreadable config in prod: %+v", res)
	}
}

// randomToken returns n random base62 characters, shaped like a real token's random part.
func randomToken(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
