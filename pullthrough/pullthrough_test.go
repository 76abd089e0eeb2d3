package pullthrough_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/internal/cosigntest"
	"github.com/portcullis-dev/portcullis/internal/regtest"
)

// A first pull of a mapped name fetches the signed multi-arch image from the source into
// the upstream byte for byte (index, children, blobs, the cosign signature), the gate
// judges it, and the client gets the source's digest.
func TestFirstPullFetchesJudgesServes(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	dgst := multiArch(t, w.hubHost, "library/nginx", "1.27", nil)
	cosigntest.SignLegacy(t, w.hubHost, "library/nginx", dgst, w.publisher)
	gw := w.gateway(gatewayOpts{})

	ref, err := name.ParseReference(hostOf(gw)+"/mirror/docker.io/library/nginx:1.27", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(ref)
	if err != nil {
		t.Fatalf("pull through the gateway: %v", err)
	}
	got, _ := idx.Digest()
	if got.String() != dgst {
		t.Fatalf("served digest %s, want the source's %s", got, dgst)
	}
	im, _ := idx.IndexManifest()
	for _, m := range im.Manifests {
		img, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		layers, _ := img.Layers()
		for _, l := range layers {
			rc, err := l.Compressed()
			if err != nil {
				t.Fatalf("blob through the gateway: %v", err)
			}
			rc.Close()
		}
	}
	// The upstream holds it under the mapped name, with its signature.
	up := hostOf(w.upstream)
	if _, err := remote.Head(mustRef(t, up+"/mirror/docker.io/library/nginx:1.27")); err != nil {
		t.Errorf("upstream lacks the tag: %v", err)
	}
	if _, err := remote.Head(mustRef(t, up+"/mirror/docker.io/library/nginx:"+strings.Replace(dgst, ":", "-", 1)+".sig")); err != nil {
		t.Errorf("upstream lacks the signature: %v", err)
	}
	// A second pull is served from the on-prem copy: nothing more from the source.
	before, _ := w.hub.blobGets()
	if resp, body := get(t, http.MethodGet, gw+"/v2/mirror/docker.io/library/nginx/manifests/1.27"); resp.StatusCode != 200 {
		t.Fatalf("second pull: %d %s", resp.StatusCode, body)
	}
	after, _ := w.hub.blobGets()
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("second pull reached the source: %v → %v", before, after)
	}
}

// containerd's ?ns=docker.io maps a request for library/nginx onto the source's namespace,
// for manifests, blobs and tags; an ns naming no mirrored source is the on-prem registry.
func TestNamespaceParameter(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	dgst := multiArch(t, w.hubHost, "library/nginx", "1.27", nil)
	cosigntest.SignLegacy(t, w.hubHost, "library/nginx", dgst, w.publisher)
	gw := w.gateway(gatewayOpts{})

	resp, body := get(t, http.MethodHead, gw+"/v2/library/nginx/manifests/1.27?ns=docker.io")
	if resp.StatusCode != 200 || resp.Header.Get("Docker-Content-Digest") != dgst {
		t.Fatalf("HEAD with ns: %d %s digest %q, want 200 %s", resp.StatusCode, body, resp.Header.Get("Docker-Content-Digest"), dgst)
	}
	// Docker Hub's single-component names are under library/, as clients know them.
	if resp, body := get(t, http.MethodGet, gw+"/v2/nginx/manifests/"+dgst+"?ns=docker.io"); resp.StatusCode != 200 {
		t.Fatalf("GET nginx@digest with ns: %d %s", resp.StatusCode, body)
	}
	// A ggcr client whose every request carries ns, as containerd's do: the whole pull.
	ref := mustRef(t, hostOf(gw)+"/library/nginx:1.27")
	idx, err := remote.Index(ref, remote.WithTransport(nsTransport{ns: "docker.io", next: http.DefaultTransport}))
	if err != nil {
		t.Fatalf("pull with ns: %v", err)
	}
	im, _ := idx.IndexManifest()
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	rc, err := layers[0].Compressed()
	if err != nil {
		t.Fatalf("blob with ns: %v", err)
	}
	rc.Close()
	if resp, body := get(t, http.MethodGet, gw+"/v2/library/nginx/tags/list?ns=docker.io"); resp.StatusCode != 200 || !strings.Contains(string(body), "1.27") {
		t.Fatalf("tags with ns: %d %s", resp.StatusCode, body)
	}
	// ns naming no mirrored source: the on-prem name, which does not exist.
	if resp, body := get(t, http.MethodGet, gw+"/v2/library/nginx/manifests/1.27?ns=registry.internal"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("ns of an unmirrored registry: %d %s, want 404 from the upstream", resp.StatusCode, body)
	}
}

// An unsigned public image is refused in prod, naming the publisher authority it lacks;
// it came from a source behind token auth, with the gateway's credentials.
func TestUnsignedRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	multiArch(t, w.ghcrHost, "acme/tool", "v1", w.ghcrAuth)
	gw := w.gateway(gatewayOpts{})
	resp, body := get(t, http.MethodGet, gw+"/v2/mirror/ghcr.io/acme/tool/manifests/v1")
	code, msg := ociError(body)
	if resp.StatusCode != http.StatusForbidden || code != "DENIED" {
		t.Fatalf("unsigned image: %d %s, want 403 DENIED", resp.StatusCode, body)
	}
	if !strings.Contains(msg, "docker-official") {
		t.Errorf("denial does not name the authority: %s", msg)
	}
	// It was fetched (with the gateway's token-auth credentials) and judged, not served.
	if _, err := remote.Head(mustRef(t, hostOf(w.upstream)+"/mirror/ghcr.io/acme/tool:v1")); err != nil {
		t.Errorf("the image was not fetched into the upstream: %v", err)
	}
}

// A repository no glob of its source allows is never fetched.
func TestRepositoryNotAllowed(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	multiArch(t, w.hubHost, "bitnami/redis", "7", nil)
	gw := w.gateway(gatewayOpts{})
	resp, body := get(t, http.MethodGet, gw+"/v2/mirror/docker.io/bitnami/redis/manifests/7")
	code, msg := ociError(body)
	if resp.StatusCode != http.StatusNotFound || code != "NAME_UNKNOWN" || !strings.Contains(msg, "not mirrored") {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
	if n, _ := w.hub.blobGets(); len(n) != 0 {
		t.Errorf("source was read: %v", n)
	}
}

// Twenty concurrent first pulls across two replicas sharing Redis fetch each blob once,
// counted at the source.
func TestConcurrentFirstPullsFetchOnce(t *testing.T) {
	t.Parallel()
	rc := regtest.Redis(t, "pullthrough:*")
	locker := cache.NewRedis(rc)
	w := newWorld(t, locker)
	dgst := multiArch(t, w.hubHost, "library/nginx", "1.27", nil)
	cosigntest.SignLegacy(t, w.hubHost, "library/nginx", dgst, w.publisher)
	w.hub.delay.Store(int64(50 * time.Millisecond)) // the fetch takes a while: the pulls overlap
	gws := []string{w.gateway(gatewayOpts{}), w.gateway(gatewayOpts{})}

	var wg sync.WaitGroup
	errs := make(chan string, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, body := get(t, http.MethodGet, gws[i%2]+"/v2/mirror/docker.io/library/nginx/manifests/1.27")
			if resp.StatusCode != 200 || resp.Header.Get("Docker-Content-Digest") != dgst {
				errs <- fmt.Sprintf("pull %d: %d %s", i, resp.StatusCode, body)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	counts, most := w.hub.blobGets()
	if len(counts) == 0 {
		t.Fatal("no blob was fetched from the source")
	}
	if most != 1 {
		t.Errorf("a blob was fetched from the source more than once: %v", counts)
	}
}

// When the source answers 429 or is down, the copy judged earlier is served with a
// warning saying so; a name never fetched is refused with 503 and Retry-After.
func TestSourceOutageServesJudgedCopy(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	dgst := multiArch(t, w.hubHost, "library/nginx", "1.27", nil)
	cosigntest.SignLegacy(t, w.hubHost, "library/nginx", dgst, w.publisher)
	gw := w.gateway(gatewayOpts{freshness: time.Nanosecond}) // every pull asks the source
	if resp, body := get(t, http.MethodGet, gw+"/v2/mirror/docker.io/library/nginx/manifests/1.27"); resp.StatusCode != 200 {
		t.Fatalf("first pull: %d %s", resp.StatusCode, body)
	}
	for _, c := range []struct {
		mode int32
		want string
	}{{mode429, "429"}, {modeDown, "could not be asked"}} {
		w.hub.mode.Store(c.mode)
		time.Sleep(time.Millisecond)
		resp, body := get(t, http.MethodGet, gw+"/v2/mirror/docker.io/library/nginx/manifests/1.27")
		if resp.StatusCode != 200 || resp.Header.Get("Docker-Content-Digest") != dgst {
			t.Fatalf("mode %d: %d %s, want the judged copy %s", c.mode, resp.StatusCode, body, dgst)
		}
		warn := strings.Join(resp.Header.Values("Warning"), " | ")
		if !strings.Contains(warn, c.want) || !strings.Contains(warn, "serving the copy judged earlier") {
			t.Errorf("mode %d: Warning %q, want it to say %q and that the judged copy is served", c.mode, warn, c.want)
		}
		// Never fetched: nothing to serve.
		resp, body = get(t, http.MethodGet, gw+"/v2/mirror/docker.io/library/redis/manifests/7")
		if code, _ := ociError(body); resp.StatusCode != http.StatusServiceUnavailable || code != "UNAVAILABLE" || resp.Header.Get("Retry-After") == "" {
			t.Errorf("mode %d, unfetched image: %d %s, want 503 UNAVAILABLE with Retry-After", c.mode, resp.StatusCode, body)
		}
	}
}

// A public tag that moved: the new digest is fetched and judged; the on-prem tag follows
// only when it is allowed, and either way the event is recorded.
func TestMovedTag(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	first := multiArch(t, w.hubHost, "library/nginx", "1.27", nil)
	cosigntest.SignLegacy(t, w.hubHost, "library/nginx", first, w.publisher)
	gw := w.gateway(gatewayOpts{freshness: time.Nanosecond})
	pull := func() (string, string) {
		t.Helper()
		resp, body := get(t, http.MethodGet, gw+"/v2/mirror/docker.io/library/nginx/manifests/1.27")
		if resp.StatusCode != 200 {
			t.Fatalf("pull: %d %s", resp.StatusCode, body)
		}
		return resp.Header.Get("Docker-Content-Digest"), strings.Join(resp.Header.Values("Warning"), " | ")
	}
	if d, _ := pull(); d != first {
		t.Fatalf("first pull served %s, want %s", d, first)
	}
	// Moved to a signed digest: allowed, the tag follows.
	second := multiArch(t, w.hubHost, "library/nginx", "1.27", nil)
	cosigntest.SignLegacy(t, w.hubHost, "library/nginx", second, w.publisher)
	if d, warn := pull(); d != second {
		t.Fatalf("after an allowed move served %s (warning %q), want %s", d, warn, second)
	}
	if ev := w.events.ofType(audit.TypeMirrorTagMoved); len(ev) != 1 || ev[0].Digest != second || ev[0].PreviousDigest != first {
		t.Errorf("moved events = %+v, want one from %s to %s", ev, first, second)
	}
	// Moved to an unsigned digest: refused, the tag stays, the client is told.
	third := multiArch(t, w.hubHost, "library/nginx", "1.27", nil)
	d, warn := pull()
	if d != second {
		t.Fatalf("after a refused move served %s, want the judged %s", d, second)
	}
	if !strings.Contains(warn, third) || !strings.Contains(warn, "not served") {
		t.Errorf("Warning %q does not say the move to %s was refused", warn, third)
	}
	if ev := w.events.ofType(audit.TypeMirrorTagKept); len(ev) != 1 || ev[0].Digest != third || !strings.Contains(ev[0].Message, "docker-official") {
		t.Errorf("kept events = %+v", ev)
	}
	if cur, err := remote.Head(mustRef(t, hostOf(w.upstream)+"/mirror/docker.io/library/nginx:1.27")); err != nil || cur.Digest.String() != second {
		t.Errorf("upstream tag = %v %v, want %s", cur, err, second)
	}
}

// A pull waits for its fetch no longer than the pull wait, then gets "still being
// fetched" with Retry-After; the fetch goes on and a later pull is served.
func TestPullWait(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	dgst := multiArch(t, w.hubHost, "library/nginx", "1.27", nil)
	cosigntest.SignLegacy(t, w.hubHost, "library/nginx", dgst, w.publisher)
	w.hub.delay.Store(int64(300 * time.Millisecond))
	gw := w.gateway(gatewayOpts{wait: time.Millisecond})
	resp, body := get(t, http.MethodGet, gw+"/v2/mirror/docker.io/library/nginx/manifests/1.27")
	code, msg := ociError(body)
	if resp.StatusCode != http.StatusServiceUnavailable || code != "UNAVAILABLE" || resp.Header.Get("Retry-After") == "" || !strings.Contains(msg, "still being fetched") {
		t.Fatalf("first pull: %d %s, want 503 still being fetched with Retry-After", resp.StatusCode, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for ctx.Err() == nil {
		resp, _ = get(t, http.MethodGet, gw+"/v2/mirror/docker.io/library/nginx/manifests/1.27")
		if resp.StatusCode == 200 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the fetch never completed: last answer %d", resp.StatusCode)
}

func mustRef(t testing.TB, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// The replica's request budget: once spent, a tag's re-check does not reach the source and
// the judged copy is served with a warning saying why.
func TestRateBudgetServesJudgedCopy(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	w.sources[0].RequestsPerMinute = 60
	dgst := multiArch(t, w.hubHost, "library/nginx", "1.27", nil)
	cosigntest.SignLegacy(t, w.hubHost, "library/nginx", dgst, w.publisher)
	gw := w.gateway(gatewayOpts{freshness: time.Nanosecond})
	for i := range 200 {
		resp, body := get(t, http.MethodGet, gw+"/v2/mirror/docker.io/library/nginx/manifests/1.27")
		if resp.StatusCode != 200 || resp.Header.Get("Docker-Content-Digest") != dgst {
			t.Fatalf("pull %d: %d %s", i, resp.StatusCode, body)
		}
		if warn := strings.Join(resp.Header.Values("Warning"), " | "); strings.Contains(warn, "request budget") {
			if !strings.Contains(warn, "serving the copy judged earlier") {
				t.Errorf("warning %q", warn)
			}
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("200 pulls within seconds never exhausted a budget of 60 requests a minute")
}

// Below Docker Hub's remaining-pulls floor nothing new is fetched: a name never fetched is
// refused with 503 naming the floor; the source's HEAD is still asked.
func TestRemainingPullsFloor(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	w.sources[0].MinRemainingPulls = 10
	multiArch(t, w.hubHost, "library/nginx", "1.27", nil)
	w.hub.remaining.Store(5)
	gw := w.gateway(gatewayOpts{})
	// The first HEAD teaches the gateway the remaining count.
	get(t, http.MethodGet, gw+"/v2/mirror/docker.io/library/nginx/manifests/1.27")
	resp, body := get(t, http.MethodGet, gw+"/v2/mirror/docker.io/library/nginx/manifests/1.27")
	code, msg := ociError(body)
	if resp.StatusCode != http.StatusServiceUnavailable || code != "UNAVAILABLE" || !strings.Contains(msg, "minRemainingPulls") {
		t.Fatalf("below the floor: %d %s, want 503 naming rateLimit.minRemainingPulls", resp.StatusCode, body)
	}
	if n, _ := w.hub.blobGets(); len(n) != 0 {
		t.Errorf("blobs were fetched below the floor: %v", n)
	}
}

// Only the fetcher writes under a pull-through namespace: a client's push or delete there
// is refused, so what is served under docker.io's name is what docker.io published.
func TestWritesUnderMirroredNamespaceRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	gw := w.gateway(gatewayOpts{})
	for _, c := range []struct{ method, path string }{
		{http.MethodPost, "/v2/mirror/docker.io/library/nginx/blobs/uploads/"},
		{http.MethodPut, "/v2/mirror/docker.io/library/nginx/manifests/1.27"},
		{http.MethodDelete, "/v2/mirror/ghcr.io/acme/tool/manifests/v1"},
	} {
		resp, body := get(t, c.method, gw+c.path)
		if code, msg := ociError(body); resp.StatusCode != http.StatusForbidden || code != "DENIED" || !strings.Contains(msg, "pull-through") {
			t.Errorf("%s %s: %d %s, want 403 DENIED", c.method, c.path, resp.StatusCode, body)
		}
	}
	// Elsewhere pushes go on as before.
	img := multiArch(t, hostOf(gw), "team/app", "1.0", nil)
	if img == "" {
		t.Fatal("push outside the mirrored namespaces failed")
	}
}
