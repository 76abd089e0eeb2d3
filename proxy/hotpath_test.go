package proxy_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/proxy"
	"github.com/portcullis-dev/portcullis/upstream"
)

// countingTransport counts the manifest requests that reach the upstream.
type countingTransport struct {
	next      http.RoundTripper
	manifests atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.Contains(r.URL.Path, "/manifests/") {
		c.manifests.Add(1)
	}
	return c.next.RoundTrip(r)
}

const hotPolicy = `version: 1
environments:
  - name: prod
    repositories: ["prod/**"]
  - name: scratch
    repositories: ["**"]
rules:
  - id: immutable-prod
    type: immutable
    mode: block
    environments: [prod]
    actions: [push] # deletes allowed: the hot path must follow them
`

// hotEnv is a real registry and, in front of it, a gateway with the real gate (hotPolicy)
// and an in-memory cache, reaching the upstream through a counting transport.
type hotEnv struct {
	upstream, gateway string
	up                *countingTransport
	store             *cache.Memory
}

func newHotEnv(tb testing.TB, opts ...proxy.Option) hotEnv {
	tb.Helper()
	return newHotEnvOn(tb, regtest.Registry(tb), opts...)
}

// newHotEnvOn is newHotEnv in front of the registry at reg: several gateways (replicas)
// may share one.
func newHotEnvOn(tb testing.TB, reg string, opts ...proxy.Option) hotEnv {
	tb.Helper()
	p, err := policy.Parse([]byte(hotPolicy))
	if err != nil {
		tb.Fatal(err)
	}
	tr, err := proxy.NewTransport(proxy.TransportOptions{Timeout: 10 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	client, err := upstream.New(reg, tr)
	if err != nil {
		tb.Fatal(err)
	}
	env := hotEnv{upstream: reg, up: &countingTransport{next: tr}, store: cache.NewMemory(64 << 20)}
	g := gate.New(p, client, discardSink{}, gate.WithLogger(quietLogger))
	px, err := proxy.New(reg, env.up, append([]proxy.Option{proxy.WithGate(g), proxy.WithCache(env.store)}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(px)
	tb.Cleanup(srv.Close)
	env.gateway = srv.URL
	return env
}

var quietLogger = slog.New(slog.NewJSONHandler(io.Discard, nil))

func hotGateway(t *testing.T) (base string, up *countingTransport, store *cache.Memory) {
	t.Helper()
	env := newHotEnv(t)
	return env.gateway, env.up, env.store
}

func getManifest(t *testing.T, url, authorization string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func TestImmutableTagPullServedFromCacheWithoutUpstream(t *testing.T) {
	base, up, _ := hotGateway(t)
	if resp := putManifest(t, base, "prod/api", "1.0.0"); resp.StatusCode != http.StatusCreated {
		t.Fatalf("push: %s", resp.Status)
	}
	first, body := getManifest(t, base+"/v2/prod/api/manifests/1.0.0", "")
	if first.StatusCode != http.StatusOK || first.Header.Get("Portcullis-Cache") != "" {
		t.Fatalf("first pull: %s cache %q, want 200 from the upstream", first.Status, first.Header.Get("Portcullis-Cache"))
	}
	before := up.manifests.Load()
	second, again := getManifest(t, base+"/v2/prod/api/manifests/1.0.0", "")
	if second.StatusCode != http.StatusOK || second.Header.Get("Portcullis-Cache") != "hit" {
		t.Fatalf("second pull: %s cache %q, want a cache hit", second.Status, second.Header.Get("Portcullis-Cache"))
	}
	if n := up.manifests.Load() - before; n != 0 {
		t.Fatalf("the cached pull asked the upstream %d times, want 0", n)
	}
	if string(again) != string(body) || second.Header.Get("Docker-Content-Digest") != first.Header.Get("Docker-Content-Digest") {
		t.Fatal("the cached pull served other bytes or another digest")
	}

	// Another credential has not been vouched for by the upstream: it goes upstream.
	other, _ := getManifest(t, base+"/v2/prod/api/manifests/1.0.0", "Basic b3RoZXI6cHc=")
	if other.Header.Get("Portcullis-Cache") == "hit" {
		t.Fatal("a credential the upstream never saw was served from the cache")
	}
}

func TestMutableTagsAndTamperedEntriesGoUpstream(t *testing.T) {
	base, up, store := hotGateway(t)
	// scratch/** has no immutability rule: its tags may move, so they are never cached.
	putManifest(t, base, "scratch/tool", "dev").Body.Close()
	getManifest(t, base+"/v2/scratch/tool/manifests/dev", "")
	before := up.manifests.Load()
	if resp, _ := getManifest(t, base+"/v2/scratch/tool/manifests/dev", ""); resp.Header.Get("Portcullis-Cache") == "hit" || up.manifests.Load() == before {
		t.Fatal("a mutable tag was answered from the cache")
	}

	// A cache entry whose bytes no longer match their digest is never served.
	putManifest(t, base, "prod/api", "2.0.0").Body.Close()
	first, _ := getManifest(t, base+"/v2/prod/api/manifests/2.0.0", "")
	dgst := first.Header.Get("Docker-Content-Digest")
	bad, _ := cache.Encode(cache.KindManifest, 1, map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "body": []byte(`{"tampered":true}`)})
	if err := store.Set(context.Background(), cache.ManifestKey(dgst), bad, time.Hour); err != nil {
		t.Fatal(err)
	}
	resp, body := getManifest(t, base+"/v2/prod/api/manifests/2.0.0", "")
	if resp.Header.Get("Portcullis-Cache") == "hit" || strings.Contains(string(body), "tampered") {
		t.Fatal("tampered cached bytes were served")
	}
}

func TestHotPathFollowsRepositoryAndDeletes(t *testing.T) {
	base, _, _ := hotGateway(t)
	putManifest(t, base, "prod/api", "3.0.0").Body.Close()
	getManifest(t, base+"/v2/prod/api/manifests/3.0.0", "")
	warm, _ := getManifest(t, base+"/v2/prod/api/manifests/3.0.0", "")
	dgst := warm.Header.Get("Docker-Content-Digest")
	if warm.Header.Get("Portcullis-Cache") != "hit" {
		t.Fatal("the warm pull was not a cache hit; the rest of this test would prove nothing")
	}
	// By digest, in a repository that never held it: the upstream's answer.
	getManifest(t, base+"/v2/prod/other/manifests/3.0.0", "") // gives the credential access to prod/other
	if resp, _ := getManifest(t, base+"/v2/prod/other/manifests/"+dgst, ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("digest of prod/api pulled from prod/other: %s, want 404", resp.Status)
	}
	// Deleted through the gateway: the tag is no longer served from the cache.
	req, _ := http.NewRequest(http.MethodDelete, base+"/v2/prod/api/manifests/"+dgst, nil)
	del, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	del.Body.Close()
	if del.StatusCode != http.StatusAccepted {
		t.Fatalf("delete: %s", del.Status)
	}
	if resp, _ := getManifest(t, base+"/v2/prod/api/manifests/3.0.0", ""); resp.StatusCode != http.StatusNotFound || resp.Header.Get("Portcullis-Cache") == "hit" {
		t.Fatalf("tag of a deleted manifest: %s (cache %q), want the upstream's 404", resp.Status, resp.Header.Get("Portcullis-Cache"))
	}
}

// TestDigestPullServedFromCacheOnceUpstreamServedIt: a pull by digest is answered from the
// cache once the upstream has served that digest from that repository, even where tags
// are mutable (the bytes behind a digest never change), but never for a credential the
// upstream has not vouched for, never from a repository that does not hold the digest,
// and not after the manifest is deleted through the gateway.
func TestDigestPullServedFromCacheOnceUpstreamServedIt(t *testing.T) {
	base, up, _ := hotGateway(t)
	putManifest(t, base, "scratch/tool", "dev").Body.Close() // scratch/**: no immutability rule
	byTag, _ := getManifest(t, base+"/v2/scratch/tool/manifests/dev", "")
	dgst := byTag.Header.Get("Docker-Content-Digest")
	if dgst == "" {
		t.Fatalf("pull by tag: %s, no digest", byTag.Status)
	}
	url := base + "/v2/scratch/tool/manifests/" + dgst
	first, body := getManifest(t, url, "")
	if first.StatusCode != http.StatusOK || first.Header.Get("Portcullis-Cache") == "hit" {
		t.Fatalf("first pull by digest: %s cache %q, want 200 from the upstream", first.Status, first.Header.Get("Portcullis-Cache"))
	}
	before := up.manifests.Load()
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		req, _ := http.NewRequest(method, url, nil)
		req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Portcullis-Cache") != "hit" || resp.Header.Get("Docker-Content-Digest") != dgst {
			t.Fatalf("%s by digest again: %s cache %q digest %q, want a hit for %s", method, resp.Status, resp.Header.Get("Portcullis-Cache"), resp.Header.Get("Docker-Content-Digest"), dgst)
		}
		if method == http.MethodGet && string(again) != string(body) {
			t.Fatal("the cached pull by digest served other bytes")
		}
	}
	if n := up.manifests.Load() - before; n != 0 {
		t.Fatalf("cached pulls by digest asked the upstream %d times, want 0", n)
	}
	if other, _ := getManifest(t, url, "Basic b3RoZXI6cHc="); other.Header.Get("Portcullis-Cache") == "hit" {
		t.Fatal("a credential the upstream never saw was served a digest from the cache")
	}
	// The same digest in a repository that never held it: the upstream answers (404),
	// even though the upstream has just let the credential pull from that repository.
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(strings.TrimPrefix(base, "http://")+"/scratch/other:1.0.0", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	if resp, _ := getManifest(t, base+"/v2/scratch/other/manifests/1.0.0", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("pull of scratch/other: %s", resp.Status)
	}
	if resp, _ := getManifest(t, base+"/v2/scratch/other/manifests/"+dgst, ""); resp.StatusCode != http.StatusNotFound || resp.Header.Get("Portcullis-Cache") == "hit" {
		t.Fatalf("digest of scratch/tool pulled from scratch/other: %s (cache %q), want the upstream's 404", resp.Status, resp.Header.Get("Portcullis-Cache"))
	}
	req, _ := http.NewRequest(http.MethodDelete, url, nil)
	del, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	del.Body.Close()
	if del.StatusCode != http.StatusAccepted {
		t.Fatalf("delete: %s", del.Status)
	}
	if resp, _ := getManifest(t, url, ""); resp.StatusCode != http.StatusNotFound || resp.Header.Get("Portcullis-Cache") == "hit" {
		t.Fatalf("deleted digest: %s (cache %q), want the upstream's 404", resp.Status, resp.Header.Get("Portcullis-Cache"))
	}
}
