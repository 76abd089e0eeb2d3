package gate_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/internal/scantest"
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
	return regtest.WriteImage(t, reg, repoTag, img)
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

// layerSecretsPolicy blocks secrets in prod, and nothing else.
const layerSecretsPolicy = `version: 1
environments:
  - {name: prod, repositories: ["prod/**"], failMode: closed}
rules:
  - {id: no-secrets, type: secret, mode: block}
`

// pushLayers pushes an image of the given layers (a non-root user, nothing in its config)
// straight to the registry, returning its digest, manifest and layer diffIDs.
func pushLayers(t *testing.T, reg, repoTag string, layers ...v1.Layer) (string, []byte, []string) {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	if img, err = mutate.Config(img, v1.Config{User: "65532"}); err != nil {
		t.Fatal(err)
	}
	regtest.WriteImage(t, reg, repoTag, img)
	d, _ := img.Digest()
	raw, _ := img.RawManifest()
	var diffIDs []string
	for _, l := range layers {
		id, err := l.DiffID()
		if err != nil {
			t.Fatal(err)
		}
		diffIDs = append(diffIDs, id.String())
	}
	return d.String(), raw, diffIDs
}

// shortID is how a denial names a layer: "sha256:" and 12 hex digits.
func shortID(diffID string) string { return diffID[:len("sha256:")+12] + "…" }

// noRawSecret fails when text holds 8 characters in a row of raw.
func noRawSecret(t *testing.T, what, text, raw string) {
	t.Helper()
	for i := 0; i+8 <= len(raw); i++ {
		if strings.Contains(text, raw[i:i+8]) {
			t.Fatalf("%s shows part of the raw secret (%q):\n%s", what, raw[i:i+8], text)
		}
	}
}

func TestSecretInALayerFileIsDeniedWithoutAVulnerabilityDatabase(t *testing.T) {
	reg := regtest.Registry(t)
	up, err := upstream.New(reg, http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse([]byte(layerSecretsPolicy))
	if err != nil {
		t.Fatal(err)
	}
	// No database was ever imported here: vulnerability scans fail, layer analysis does not.
	scanner := gate.NewScanner(up, cache.NewFlight(cache.NewMemory(64<<20)), t.TempDir())
	sink := &memSink{}
	g := gate.New(p, up, sink, gate.WithImages(up), gate.WithScanner(scanner))
	push := func(repo, dgst string, manifest []byte) gate.Result {
		return g.Admit(context.Background(), gate.Request{Action: policy.ActionPush, Repository: repo, Reference: "1.0.0", Digest: dgst, Manifest: manifest})
	}
	key, body := scantest.PrivateKeyPEM(t)

	leaky, leakyManifest, diffIDs := pushLayers(t, reg, "prod/api:1.0.0",
		scantest.FileLayer(t, "app/main.py", []byte("print('hello')\n")),
		scantest.FileLayer(t, "app/id_rsa", []byte(key)))
	if _, err := scanner.Scan(context.Background(), "prod/api", leaky, leakyManifest); err == nil || !strings.Contains(err.Error(), "no vulnerability database") {
		t.Fatalf("Scan without a database: %v, want it to say there is none", err)
	}
	res := push("prod/api", leaky, leakyManifest)
	if res.Verdict != policy.VerdictDeny || res.Unavailable {
		t.Fatalf("private key in a layer file, pushed to prod: %s (unavailable %v) %q", res.Verdict, res.Unavailable, res.Message)
	}
	for _, want := range []string{"[no-secrets]", "private-key in /app/id_rsa:1 in layer 2 (" + shortID(diffIDs[1]) + ")",
		"remove the file in the Dockerfile stage that adds it and rotate the credential",
		"deleting it in a later layer does not remove it from the image"} {
		if !strings.Contains(res.Message, want) {
			t.Errorf("denial lacks %q:\n%s", want, res.Message)
		}
	}
	noRawSecret(t, "the denial", res.Message, body)
	sink.mu.Lock()
	events, _ := json.Marshal(sink.events)
	sink.mu.Unlock()
	noRawSecret(t, "the audit events", string(events), body)

	// Deleted in a later layer: still denied, since the lower layer's blob carries the key.
	deleted, deletedManifest, deletedIDs := pushLayers(t, reg, "prod/api:1.0.1",
		scantest.FileLayer(t, "app/id_rsa", []byte(key)),
		scantest.FileLayer(t, "app/.wh.id_rsa", nil))
	res = push("prod/api", deleted, deletedManifest)
	want := "private-key in /app/id_rsa:1 in layer 1 (" + shortID(deletedIDs[0]) + "), deleted in a later layer but still in the image's blobs"
	if res.Verdict != policy.VerdictDeny || !strings.Contains(res.Message, want) {
		t.Fatalf("key deleted by a later layer: %s %q, want a denial naming %q", res.Verdict, res.Message, want)
	}

	clean, cleanManifest, _ := pushLayers(t, reg, "prod/api:1.0.2", scantest.FileLayer(t, "app/main.py", []byte("print('hello')\n")))
	res = push("prod/api", clean, cleanManifest)
	if res.Verdict != policy.VerdictAllow || len(res.Decision.Results) != 1 || res.Decision.Results[0].Finding != "no secrets in the image configuration and layers" {
		t.Fatalf("clean image: %s %+v", res.Verdict, res.Decision.Results)
	}
}

func TestConfigOnlyEvidenceIsNotReusedAsLayerEvidence(t *testing.T) {
	reg := regtest.Registry(t)
	up, err := upstream.New(reg, http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse([]byte(layerSecretsPolicy))
	if err != nil {
		t.Fatal(err)
	}
	key, _ := scantest.PrivateKeyPEM(t)
	dgst, manifest, _ := pushLayers(t, reg, "prod/api:2.0.0", scantest.FileLayer(t, "srv/deploy.pem", []byte(key)))
	shared := cache.NewMemory(16 << 20) // the evidence cache both gateways use
	push := func(g *gate.Gate) gate.Result {
		return g.Admit(context.Background(), gate.Request{Action: policy.ActionPush, Repository: "prod/api", Reference: "2.0.0", Digest: dgst, Manifest: manifest})
	}
	// A gateway without a scanner searches the configuration only, and caches that.
	configOnly := gate.New(p, up, &memSink{}, gate.WithImages(up), gate.WithCache(shared))
	if res := push(configOnly); res.Verdict != policy.VerdictAllow || !strings.Contains(res.Decision.Results[0].Finding, "layer files are not searched yet") {
		t.Fatalf("config-only gateway: %s %+v", res.Verdict, res.Decision.Results)
	}
	scanner := gate.NewScanner(up, cache.NewFlight(cache.NewMemory(64<<20)), t.TempDir())
	withLayers := gate.New(p, up, &memSink{}, gate.WithImages(up), gate.WithCache(shared), gate.WithScanner(scanner))
	if res := push(withLayers); res.Verdict != policy.VerdictDeny || !strings.Contains(res.Message, "private-key in /srv/deploy.pem:1") {
		t.Fatalf("layer-scanning gateway sharing the cache: %s %q", res.Verdict, res.Message)
	}
}

func TestFirstPullWaitsForLayerSecretsAtMostThePullScanWait(t *testing.T) {
	reg := regtest.Registry(t)
	up, err := upstream.New(reg, http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse([]byte(layerSecretsPolicy))
	if err != nil {
		t.Fatal(err)
	}
	key, _ := scantest.PrivateKeyPEM(t)
	// Pushed straight to the registry: the gateway never saw it.
	dgst, manifest, _ := pushLayers(t, reg, "prod/api:3.0.0", scantest.FileLayer(t, "app/id_rsa", []byte(key)))
	held := &heldLayers{Client: up, release: make(chan struct{})}
	flight := cache.NewFlight(cache.NewMemory(64 << 20))
	scanner := gate.NewScanner(held, flight, t.TempDir())
	g := gate.New(p, up, &memSink{}, gate.WithImages(up), gate.WithScanner(scanner), gate.WithPullScanWait(100*time.Millisecond))
	pull := func() gate.Result {
		return g.Admit(context.Background(), gate.Request{Action: policy.ActionPull, Repository: "prod/api", Reference: dgst, Digest: dgst, Manifest: manifest})
	}
	res := pull()
	if !res.Unavailable || res.RetryAfter <= 0 || !strings.Contains(res.Message, "being scanned") {
		t.Fatalf("prod pull while its layers are analysed: %+v, want a retryable refusal", res)
	}
	// The analysis went on without the pull; once the layer can be read it completes, and
	// this call joins it rather than starting another.
	close(held.release)
	if _, err := scanner.Layers(context.Background(), "prod/api", manifest); err != nil {
		t.Fatal(err)
	}
	if n := flight.Computations(); n != 2 {
		t.Errorf("%d computations, want 2 (the image's layer list and its one layer, each once)", n)
	}
	if res := pull(); res.Verdict != policy.VerdictDeny || res.Unavailable || !strings.Contains(res.Message, "private-key in /app/id_rsa:1") {
		t.Fatalf("prod pull after the analysis: %s %q, want denied for the key", res.Verdict, res.Message)
	}
}
