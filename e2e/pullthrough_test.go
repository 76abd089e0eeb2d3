package e2e

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/portcullis-dev/portcullis/internal/cosigntest"
	"github.com/portcullis-dev/portcullis/internal/regtest"
)

// pullSources are two local registries standing in for docker.io (behind a fault proxy
// that can answer 429) and ghcr.io (behind token auth).
type pullSources struct {
	hub, ghcr     string // registry hosts, for setting up directly
	hubProxy      string // the fault proxy's URL: the gateway's docker.io endpoint
	ghcrURL       string
	tooMany       atomic.Bool
	mu            sync.Mutex
	blobGets      map[string]int // GETs of each blob path at the docker.io stand-in
	publisher     cosigntest.Key
	signed        string // digest of docker.io/library/nginx:1.27 (signed, two platforms)
	unsigned      string // digest of ghcr.io/acme/tool:v1 (unsigned, two platforms)
	ghcrAuth      authn.Authenticator
	configFile    string
	policyFile    string
	gatewayEnvVar []string
}

func newPullSources(t *testing.T) *pullSources {
	t.Helper()
	hub := regtest.Registry(t)
	tokenOpt, _ := regtest.TokenAuth(t, "bot", "s3cret")
	ghcr := regtest.Registry(t, tokenOpt)
	s := &pullSources{hub: strings.TrimPrefix(hub, "http://"), ghcr: strings.TrimPrefix(ghcr, "http://"), ghcrURL: ghcr,
		publisher: cosigntest.NewKey(t), ghcrAuth: &authn.Basic{Username: "bot", Password: "s3cret"}, blobGets: map[string]int{}}
	u, _ := url.Parse(hub)
	rp := httputil.NewSingleHostReverseProxy(u)
	fault := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.tooMany.Load() {
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"errors":[{"code":"TOOMANYREQUESTS","message":"pull rate limit"}]}`)
			return
		}
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			s.mu.Lock()
			s.blobGets[r.URL.Path]++
			s.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(fault.Close)
	s.hubProxy = fault.URL
	s.signed = pushPublicIndex(t, s.hub, "library/nginx:1.27", nil)
	cosigntest.SignLegacy(t, s.hub, "library/nginx", s.signed, s.publisher)
	s.unsigned = pushPublicIndex(t, s.ghcr, "acme/tool:v1", s.ghcrAuth)

	dir := t.TempDir()
	s.policyFile = filepath.Join(dir, "policy.yaml")
	writeFile(t, s.policyFile, []byte(`version: 1
authorities:
`+s.publisher.AuthorityYAML(t, "docker-official")+`environments:
  - name: prod
    repositories: ["**"]
    failMode: closed
rules:
  - id: publisher-signed
    type: signature
    mode: block
    repositories: ["mirror/**"]
    authorities: [docker-official]
`))
	s.configFile = filepath.Join(dir, "config.yaml")
	writeFile(t, s.configFile, []byte(`mirrors:
  - registry: docker.io
    endpoint: `+s.hubProxy+`
    repositories: ["library/*"]
    authorities: [docker-official]
    tagFreshness: 1ms
  - registry: ghcr.io
    endpoint: `+ghcr+`
    repositories: ["acme/**"]
    credentials: {username: bot, passwordEnv: GHCR_TOKEN}
`))
	s.gatewayEnvVar = []string{"GHCR_TOKEN=s3cret"}
	return s
}

// pushPublicIndex pushes a two-platform OCI index of random images to host/repoTag.
func pushPublicIndex(t *testing.T, host, repoTag string, auth authn.Authenticator) string {
	t.Helper()
	var adds []mutate.IndexAddendum
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(2048, 2)
		if err != nil {
			t.Fatal(err)
		}
		img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	idx := mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), types.OCIImageIndex)
	ref, err := name.ParseReference(host+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	var opts []remote.Option
	if auth != nil {
		opts = append(opts, remote.WithAuth(auth))
	}
	if err := remote.WriteIndex(ref, idx, opts...); err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	return d.String()
}

// TestPullThroughWithCrane: the real binary with a mirrors section. crane pulls a signed
// public image by its mapped name (fetched, judged, served with the source's digest); an
// unsigned one from a token-auth source is refused naming the authority it lacks; with
// containerd's ns the same image is served under its public name; while the source answers
// 429 the judged copy is served with a warning.
func TestPullThroughWithCrane(t *testing.T) {
	crane := requireTool(t, "crane")
	s := newPullSources(t)
	gw := startGatewayEnv(t, s.gatewayEnvVar, "--config", s.configFile, "--policy", s.policyFile)

	got := strings.TrimSpace(craneOut(t, crane, "digest", "--insecure", gw.addr+"/mirror/docker.io/library/nginx:1.27"))
	if got != s.signed {
		t.Fatalf("crane digest through the gateway = %s, want the source's %s", got, s.signed)
	}
	dir := t.TempDir()
	craneOut(t, crane, "pull", "--insecure", "--format", "oci", "--platform", "linux/arm64", gw.addr+"/mirror/docker.io/library/nginx:1.27", dir)

	out, err := exec.Command(crane, "digest", "--insecure", gw.addr+"/mirror/ghcr.io/acme/tool:v1").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "DENIED") || !strings.Contains(string(out), "docker-official") {
		t.Errorf("unsigned public image: %v\n%s\nwant DENIED naming docker-official", err, out)
	}

	req, _ := http.NewRequest(http.MethodHead, gw.url("/v2/library/nginx/manifests/1.27?ns=docker.io"), nil)
	req.Header.Set("Accept", string(types.OCIImageIndex))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Docker-Content-Digest") != s.signed {
		t.Errorf("HEAD with ns=docker.io: %d %q, want 200 %s", resp.StatusCode, resp.Header.Get("Docker-Content-Digest"), s.signed)
	}

	s.tooMany.Store(true)
	time.Sleep(20 * time.Millisecond) // past tagFreshness (1ms): the source is asked again
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	warn := strings.Join(resp.Header.Values("Warning"), " | ")
	if resp.StatusCode != 200 || resp.Header.Get("Docker-Content-Digest") != s.signed || !strings.Contains(warn, "429") {
		t.Errorf("source answering 429: %d %q warning %q, want the judged copy with a warning naming 429", resp.StatusCode, resp.Header.Get("Docker-Content-Digest"), warn)
	}
}

// TestPullThroughContainerd: containerd with the files "portcullis deploy containerd
// --pull-through" writes pulls docker.io/library/nginx:1.27 through the gateway (ctr sends
// ns=docker.io itself), and a pull of the unsigned ghcr.io image fails with the denial.
func TestPullThroughContainerd(t *testing.T) {
	c := newContainerdClient(t)
	s := newPullSources(t)
	gw := startGatewayEnv(t, s.gatewayEnvVar, "--config", s.configFile, "--policy", s.policyFile)
	hosts := filepath.Join(t.TempDir(), "certs.d")
	runTool(t, gatewayBin, "deploy", "containerd", "--pull-through", "--config", s.configFile, "--gateway", gw.url(""), "--out", hosts)

	if stderr, err := c.pull(hosts, "docker.io/library/nginx:1.27"); err != nil {
		t.Fatalf("ctr pull docker.io/library/nginx:1.27: %v\n%s", err, stderr)
	}
	if got := manifestRequests(t, gw, "mirror/docker.io/library/nginx"); len(got) == 0 {
		t.Errorf("the pull did not reach the gateway under the mirrored name")
	}
	stderr, err := c.pull(hosts, "ghcr.io/acme/tool:v1")
	if err == nil || !strings.Contains(stderr, "403") {
		t.Errorf("unsigned ghcr.io image: %v\n%s\nwant a 403", err, stderr)
	}
}

// TestPullThroughTwoReplicas: two gateway processes sharing Redis and one upstream; twenty
// concurrent first pulls of a public image spread over both are all served the source's
// digest, and the docker.io stand-in sees each blob fetched once.
func TestPullThroughTwoReplicas(t *testing.T) {
	regtest.Redis(t) // skips loudly, or fails on CI, without Redis
	s := newPullSources(t)
	up := regtest.Registry(t)
	cfg, err := os.ReadFile(s.configFile)
	if err != nil {
		t.Fatal(err)
	}
	shared := filepath.Join(t.TempDir(), "replicas.yaml")
	writeFile(t, shared, append(cfg, []byte("cache:\n  redis:\n    addrs: [\""+regtest.RedisAddr()+"\"]\n")...))
	gws := []*gateway{
		startGatewayEnv(t, s.gatewayEnvVar, "--config", shared, "--policy", s.policyFile, "--upstream", up),
		startGatewayEnv(t, s.gatewayEnvVar, "--config", shared, "--policy", s.policyFile, "--upstream", up),
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, gws[i%2].url("/v2/mirror/docker.io/library/nginx/manifests/1.27"), nil)
			req.Header.Set("Accept", string(types.OCIImageIndex))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Errorf("pull %d: %v", i, err)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Docker-Content-Digest") != s.signed {
				t.Errorf("pull %d via replica %d: %d %s", i, i%2, resp.StatusCode, body)
			}
		}()
	}
	wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.blobGets) == 0 {
		t.Fatal("no blob was fetched from the source")
	}
	for p, n := range s.blobGets {
		if n != 1 {
			t.Errorf("%s fetched %d times from the source, want once", p, n)
		}
	}
}

// TestPullThroughMovedTag: the real binary with tagFreshness 1ms. The public tag moves to
// a signed digest: the next pull gets it and the audit log records mirror.tag.moved; it
// moves again to an unsigned digest: the judged copy stays, the pull says so in a Warning
// and the audit log records mirror.tag.kept.
func TestPullThroughMovedTag(t *testing.T) {
	s := newPullSources(t)
	auditLog := filepath.Join(t.TempDir(), "audit.log")
	cfg, err := os.ReadFile(s.configFile)
	if err != nil {
		t.Fatal(err)
	}
	withAudit := filepath.Join(t.TempDir(), "config.yaml")
	writeFile(t, withAudit, append(cfg, []byte("audit:\n  path: "+auditLog+"\n")...))
	gw := startGatewayEnv(t, s.gatewayEnvVar, "--config", withAudit, "--policy", s.policyFile)
	pull := func() (string, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, gw.url("/v2/mirror/docker.io/library/nginx/manifests/1.27"), nil)
		req.Header.Set("Accept", string(types.OCIImageIndex))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("pull: %d %s", resp.StatusCode, body)
		}
		return resp.Header.Get("Docker-Content-Digest"), strings.Join(resp.Header.Values("Warning"), " | ")
	}
	if d, _ := pull(); d != s.signed {
		t.Fatalf("first pull: %s, want %s", d, s.signed)
	}
	second := pushPublicIndex(t, s.hub, "library/nginx:1.27", nil)
	cosigntest.SignLegacy(t, s.hub, "library/nginx", second, s.publisher)
	if d, warn := pull(); d != second {
		t.Fatalf("after a move to a signed digest: %s (%s), want %s", d, warn, second)
	}
	third := pushPublicIndex(t, s.hub, "library/nginx:1.27", nil)
	d, warn := pull()
	if d != second || !strings.Contains(warn, third) {
		t.Fatalf("after a move to an unsigned digest: %s, warning %q; want %s and a warning naming %s", d, warn, second, third)
	}
	events := string(readFile(t, auditLog))
	for _, want := range []string{`"type":"mirror.tag.moved"`, `"previousDigest":"` + s.signed + `"`, `"type":"mirror.tag.kept"`, `"digest":"` + third + `"`} {
		if !strings.Contains(events, want) {
			t.Errorf("audit log lacks %s", want)
		}
	}
}

// TestPullThroughAuthorityWithoutRuleRefusesToStart: a mirror naming a publisher authority
// that no signature rule requires would look enforced and protect nothing, so serve stops
// at start with the field path and the rule to add.
func TestPullThroughAuthorityWithoutRuleRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	key := cosigntest.NewKey(t)
	policyFile, configFile := filepath.Join(dir, "policy.yaml"), filepath.Join(dir, "config.yaml")
	writeFile(t, policyFile, []byte(`version: 1
authorities:
`+key.AuthorityYAML(t, "docker-official")+`environments:
  - name: prod
    repositories: ["**"]
rules:
  - {id: no-latest, type: tag, mode: block, forbidden: [latest]}
`))
	writeFile(t, configFile, []byte(`mirrors:
  - registry: docker.io
    endpoint: http://127.0.0.1:1
    repositories: ["library/*"]
    authorities: [docker-official]
`))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gatewayBin, "serve", "--config", configFile, "--policy", policyFile,
		"--data-dir", filepath.Join(dir, "data"), "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0")
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("serve started with an authority no rule requires:\n%s", out)
	}
	if err == nil {
		t.Fatalf("serve exited 0:\n%s", out)
	}
	want := `mirrors[0].authorities[0]: no signature rule of the policy names authority \"docker-official\"` // as the JSON log writes it
	if !strings.Contains(string(out), want) || !strings.Contains(string(out), "mirror/docker.io/**") {
		t.Fatalf("serve's error (%v) does not say %q and name the prefix:\n%s", err, want, out)
	}
}
