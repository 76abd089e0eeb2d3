package pullthrough_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
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

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/cosigntest"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/proxy"
	"github.com/portcullis-dev/portcullis/pullthrough"
	"github.com/portcullis-dev/portcullis/upstream"
	"github.com/portcullis-dev/portcullis/verify"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// faultProxy stands in front of a source registry: it counts blob and manifest GETs per
// path and can answer 429, drop connections (the source is down) or slow blobs.
type faultProxy struct {
	srv   *httptest.Server
	mode  atomic.Int32 // 0 pass, 1 answer 429, 2 down
	delay atomic.Int64 // nanoseconds added to each blob GET
	// remaining, when positive, is sent as Docker Hub's ratelimit-remaining header.
	remaining atomic.Int64
	mu        sync.Mutex
	counts    map[string]int
}

const (
	modePass = iota
	mode429
	modeDown
)

func newFaultProxy(t testing.TB, target string) *faultProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	fp := &faultProxy{counts: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	fp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch fp.mode.Load() {
		case mode429:
			w.Header().Set("Retry-After", "60")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"errors":[{"code":"TOOMANYREQUESTS","message":"pull rate limit"}]}`)
			return
		case modeDown:
			if hj, ok := w.(http.Hijacker); ok {
				c, _, _ := hj.Hijack()
				_ = c.Close()
				return
			}
		}
		if n := fp.remaining.Load(); n > 0 {
			w.Header().Set("Ratelimit-Remaining", fmt.Sprintf("%d;w=21600", n))
		}
		if r.Method == http.MethodGet && (strings.Contains(r.URL.Path, "/blobs/") || strings.Contains(r.URL.Path, "/manifests/")) {
			fp.mu.Lock()
			fp.counts[r.URL.Path]++
			fp.mu.Unlock()
			if d := fp.delay.Load(); d > 0 && strings.Contains(r.URL.Path, "/blobs/") {
				time.Sleep(time.Duration(d))
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(fp.srv.Close)
	return fp
}

// blobGets returns the GET count of every blob path, and the largest.
func (fp *faultProxy) blobGets() (map[string]int, int) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	out, most := map[string]int{}, 0
	for p, n := range fp.counts {
		if strings.Contains(p, "/blobs/") {
			out[p] = n
			most = max(most, n)
		}
	}
	return out, most
}

// world is an on-prem upstream, two sources (docker.io plain behind a fault proxy,
// ghcr.io behind token auth) and gateways with pull-through in front of the upstream.
type world struct {
	t         testing.TB
	upstream  string // on-prem registry URL
	hub       *faultProxy
	hubHost   string // the docker.io stand-in's registry host (direct, for setting up)
	ghcrHost  string
	ghcrAuth  authn.Authenticator
	publisher cosigntest.Key
	events    *eventLog
	sources   []pullthrough.Source
	locker    cache.Locker
	pol       *policy.Policy
}

type eventLog struct {
	mu     sync.Mutex
	events []audit.Event
}

func (l *eventLog) Record(_ context.Context, e audit.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
	return nil
}

func (l *eventLog) ofType(typ string) []audit.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []audit.Event
	for _, e := range l.events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

func newWorld(t testing.TB, locker cache.Locker) *world {
	t.Helper()
	hubReg := regtest.Registry(t)
	tokenOpt, _ := regtest.TokenAuth(t, "bot", "s3cret")
	ghcrReg := regtest.Registry(t, tokenOpt)
	w := &world{
		t:         t,
		upstream:  regtest.Registry(t),
		hub:       newFaultProxy(t, hubReg),
		hubHost:   strings.TrimPrefix(hubReg, "http://"),
		ghcrHost:  strings.TrimPrefix(ghcrReg, "http://"),
		ghcrAuth:  &authn.Basic{Username: "bot", Password: "s3cret"},
		publisher: cosigntest.NewKey(t),
		events:    &eventLog{},
		locker:    locker,
	}
	if w.locker == nil {
		w.locker = cache.NewMemory(64 << 20)
	}
	w.sources = []pullthrough.Source{
		{Registry: "docker.io", Endpoint: w.hub.srv.URL, Repositories: []string{"library/*"}, Freshness: time.Hour},
		{Registry: "ghcr.io", Endpoint: ghcrReg, Auth: w.ghcrAuth, Repositories: []string{"acme/**"}, Freshness: time.Hour},
	}
	p, err := policy.Parse([]byte(`version: 1
authorities:
` + w.publisher.AuthorityYAML(t, "docker-official") + `environments:
  - name: prod
    repositories: ["**"]
rules:
  - id: publisher-signed
    type: signature
    mode: block
    repositories: ["mirror/**"]
    authorities: [docker-official]
  - id: immutable-tags
    type: immutable
    mode: block
`))
	if err != nil {
		t.Fatal(err)
	}
	w.pol = p
	return w
}

// judge is the gate's decision on a moved tag's new digest, as portcullis serve wires it.
type judge struct{ g *gate.Gate }

func (j judge) Judge(ctx context.Context, repo, digest, host string, manifest []byte) pullthrough.Verdict {
	res := j.g.Query(ctx, gate.Request{Action: policy.ActionPull, Host: host, Repository: repo, Reference: digest, Digest: digest, Manifest: manifest})
	return pullthrough.Verdict{Allowed: res.Verdict != policy.VerdictDeny, Pending: res.Unavailable, Message: res.Message}
}

// gatewayOpts tune one gateway replica.
type gatewayOpts struct {
	wait      time.Duration
	freshness time.Duration
	hotCache  cache.Store
}

// gateway starts one replica: gate, fetcher and proxy in front of the upstream.
func (w *world) gateway(o gatewayOpts) string {
	t := w.t
	t.Helper()
	tr, err := proxy.NewTransport(proxy.TransportOptions{Timeout: 30 * time.Second, MaxIdleConnsPerHost: 64})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	client, err := upstream.New(w.upstream, tr)
	if err != nil {
		t.Fatal(err)
	}
	g := gate.New(w.pol, client, discard{}, gate.WithLogger(quiet), gate.WithSignatures(verify.New(client)))
	srcs := append([]pullthrough.Source(nil), w.sources...)
	if o.freshness != 0 {
		for i := range srcs {
			srcs[i].Freshness = o.freshness
		}
	}
	var px *proxy.Proxy
	wait := o.wait
	if wait == 0 {
		wait = 30 * time.Second
	}
	f, err := pullthrough.New(w.upstream, tr, w.locker, srcs,
		pullthrough.WithJudge(judge{g}), pullthrough.WithRecorder(w.events), pullthrough.WithLogger(quiet),
		pullthrough.WithPullWait(func(string, string) time.Duration { return wait }),
		pullthrough.WithTagMoved(func(ctx context.Context, repo, tag string) { px.TagMoved(ctx, repo, tag) }))
	if err != nil {
		t.Fatal(err)
	}
	hot := o.hotCache
	if hot == nil {
		hot = cache.NewMemory(64 << 20)
	}
	px, err = proxy.New(w.upstream, tr, proxy.WithGate(g), proxy.WithCache(hot), proxy.WithPullThrough(f), proxy.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(px)
	t.Cleanup(srv.Close)
	return srv.URL
}

type discard struct{}

func (discard) Record(context.Context, audit.Event) error { return nil }

// multiArch pushes a two-platform index under repo:tag at host (auth may be nil) and
// returns its digest.
func multiArch(t testing.TB, host, repo, tag string, auth authn.Authenticator) string {
	t.Helper()
	return multiArchSized(t, host, repo, tag, auth, 2048)
}

// multiArchSized is multiArch with two layers of layerBytes in each image.
func multiArchSized(t testing.TB, host, repo, tag string, auth authn.Authenticator, layerBytes int64) string {
	t.Helper()
	var adds []mutate.IndexAddendum
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(layerBytes, 2)
		if err != nil {
			t.Fatal(err)
		}
		img = mutate.MediaType(img, types.OCIManifestSchema1)
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	idx := mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), types.OCIImageIndex)
	ref, err := name.ParseReference(host+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	opts := []remote.Option{}
	if auth != nil {
		opts = append(opts, remote.WithAuth(auth))
	}
	if err := remote.WriteIndex(ref, idx, opts...); err != nil {
		t.Fatal(err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// get fetches a manifest through a gateway with raw HTTP.
func get(t testing.TB, method, u string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", strings.Join([]string{string(types.OCIImageIndex), string(types.OCIManifestSchema1), string(types.DockerManifestList), string(types.DockerManifestSchema2)}, ","))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// ociError is the first error of an OCI error body.
func ociError(body []byte) (code, message string) {
	var b struct {
		Errors []struct{ Code, Message string }
	}
	if json.Unmarshal(body, &b) != nil || len(b.Errors) == 0 {
		return "", string(body)
	}
	return b.Errors[0].Code, b.Errors[0].Message
}

func hostOf(u string) string { return strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "https://") }

// nsTransport adds containerd's ns query parameter to every request, as containerd does
// for a mirror host.
type nsTransport struct {
	ns   string
	next http.RoundTripper
}

func (n nsTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	q := r.URL.Query()
	if r.URL.Path != "/v2/" {
		q.Set("ns", n.ns)
	}
	r.URL.RawQuery = q.Encode()
	return n.next.RoundTrip(r)
}
