package proxy_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/cosigntest"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/proxy"
	"github.com/portcullis-dev/portcullis/upstream"
	"github.com/portcullis-dev/portcullis/verify"
)

// doorEnv is one gateway (real gate, signature verification, hot-path cache) in front of a
// real registry, reachable through several doors.
type doorEnv struct {
	registry string // host:port of the upstream
	up       *countingTransport
	// cluster has no host; ci applies ci.registry.example; front trusts a front proxy's
	// X-Forwarded-Host; bare is the proxy served without a door.
	cluster, ci, front, bare string
}

const ciHost = "ci.registry.example"

func newDoorEnv(t *testing.T, release cosigntest.Key) doorEnv {
	t.Helper()
	reg := regtest.Registry(t)
	p, err := policy.Parse([]byte(`version: 1
authorities:
` + release.AuthorityYAML(t, "release") + `environments:
  - name: ci
    hosts: ["` + ciHost + `"]
  - name: prod
    repositories: ["prod/**"]
  - name: dev
    repositories: ["**"]
rules:
  - id: prod-signed
    type: signature
    mode: block
    environments: [prod]
    authorities: [release]
  - id: immutable-tags
    type: immutable
    mode: block
`))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := proxy.NewTransport(proxy.TransportOptions{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	client, err := upstream.New(reg, tr)
	if err != nil {
		t.Fatal(err)
	}
	g := gate.New(p, client, discardSink{}, gate.WithLogger(quietLogger), gate.WithSignatures(verify.New(client)),
		gate.WithClock(func() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) }))
	env := doorEnv{registry: strings.TrimPrefix(reg, "http://"), up: &countingTransport{next: tr}}
	px, err := proxy.New(reg, env.up, proxy.WithGate(g), proxy.WithCache(cache.NewMemory(64<<20)), proxy.WithLogger(quietLogger))
	if err != nil {
		t.Fatal(err)
	}
	serve := func(h http.Handler) string {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv.URL
	}
	env.cluster = serve(proxy.Door{Name: "cluster"}.Handler(px))
	env.ci = serve(proxy.Door{Name: "ci", Host: ciHost}.Handler(px))
	env.front = serve(proxy.Door{Name: "front", TrustForwardedHost: true}.Handler(px))
	env.bare = serve(px)
	return env
}

// push writes a random image (real image config and layers) to the upstream, around the
// gateway, and returns its digest.
func (e doorEnv) push(t *testing.T, repoTag string) string {
	t.Helper()
	img := randomImage(t, 512, 1)
	if err := remote.Write(ref(t, e.registry, repoTag), img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// pull asks base for a manifest with method, adding header pairs, and returns the response
// (body read and closed).
func pullManifest(t *testing.T, method, base, repo, reference string, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, base+"/v2/"+repo+"/manifests/"+reference, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "Host") {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestEnvironmentIsTheDoorsNotTheClientsHost: a client naming the CI door's host name on
// the cluster door is still judged by prod's rules; the same request on the CI door is
// judged by the CI environment. GET and HEAD, by tag and by digest, fresh and from the hot
// path.
func TestEnvironmentIsTheDoorsNotTheClientsHost(t *testing.T) {
	release := cosigntest.NewKey(t)
	env := newDoorEnv(t, release)
	unsigned := env.push(t, "prod/app:1.0.0")
	signed := env.push(t, "prod/app:1.1.0")
	cosigntest.SignLegacy(t, env.registry, "prod/app", signed, release)

	type pullCase struct {
		method, reference string
	}
	var cases []pullCase
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		cases = append(cases, pullCase{m, "1.0.0"}, pullCase{m, unsigned})
	}
	denied := func(t *testing.T, label string, resp *http.Response) {
		t.Helper()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %s, want 403: prod's signature rule applies on this door", label, resp.Status)
		}
	}
	served := func(t *testing.T, label string, resp *http.Response) {
		t.Helper()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %s, want 200: the CI environment has no signature rule", label, resp.Status)
		}
	}
	spoofs := [][]string{
		{"Host", ciHost},
		{"Host", ciHost + ":443"},
		{"Host", "CI.Registry.Example."},
		{"X-Forwarded-Host", ciHost},
		{"Host", ciHost, "X-Forwarded-Host", ciHost, "Forwarded", "host=" + ciHost},
	}
	check := func(t *testing.T, when string) {
		for _, c := range cases {
			label := when + " " + c.method + " prod/app:" + c.reference
			for _, spoof := range spoofs {
				denied(t, label+" on the cluster door with "+strings.Join(spoof, ": "), pullManifest(t, c.method, env.cluster, "prod/app", c.reference, spoof...))
				denied(t, label+" without a door with "+strings.Join(spoof, ": "), pullManifest(t, c.method, env.bare, "prod/app", c.reference, spoof...))
			}
			served(t, label+" on the CI door", pullManifest(t, c.method, env.ci, "prod/app", c.reference))
			// The CI door applies its host whatever the client says.
			served(t, label+" on the CI door with another Host", pullManifest(t, c.method, env.ci, "prod/app", c.reference, "Host", "registry.example"))
			// A door behind a trusted front proxy takes the host the proxy forwards.
			served(t, label+" on the trusting door via "+ciHost, pullManifest(t, c.method, env.front, "prod/app", c.reference, "X-Forwarded-Host", ciHost))
			served(t, label+" on the trusting door, Host only", pullManifest(t, c.method, env.front, "prod/app", c.reference, "Host", ciHost))
			denied(t, label+" on the trusting door, proxy appended its own host", pullManifest(t, c.method, env.front, "prod/app", c.reference,
				"X-Forwarded-Host", ciHost+", registry.example"))
		}
		// prod does serve what is signed, on every door: the doors choose rules, not access.
		for _, base := range []string{env.cluster, env.ci, env.bare} {
			if resp := pullManifest(t, http.MethodGet, base, "prod/app", "1.1.0", "Host", ciHost); resp.StatusCode != http.StatusOK {
				t.Errorf("%s: signed prod/app:1.1.0: %s, want 200", when, resp.Status)
			}
		}
	}
	check(t, "fresh")

	// The denial's cosign command names the address the client used, though that address
	// chose nothing.
	req, _ := http.NewRequest(http.MethodGet, env.cluster+"/v2/prod/app/manifests/1.0.0", nil)
	req.Host = "registry.example:5000"
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "registry.example:5000/prod/app@" + unsigned; resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), want) {
		t.Errorf("denial on the cluster door: %s %s, want 403 naming %s", resp.Status, body, want)
	}

	// The CI door's GETs taught the hot path prod/app:1.0.0; it now answers by tag without
	// asking the upstream, and must still decide by the door.
	if resp := pullManifest(t, http.MethodGet, env.ci, "prod/app", "1.0.0"); resp.Header.Get("Portcullis-Cache") != "hit" {
		t.Fatalf("the hot path does not serve prod/app:1.0.0 (Portcullis-Cache %q): the test would not exercise it", resp.Header.Get("Portcullis-Cache"))
	}
	before := env.up.manifests.Load()
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		for _, spoof := range spoofs {
			denied(t, "hot path "+m+" prod/app:1.0.0 on the cluster door with "+strings.Join(spoof, ": "),
				pullManifest(t, m, env.cluster, "prod/app", "1.0.0", spoof...))
		}
		resp := pullManifest(t, m, env.ci, "prod/app", "1.0.0", "Host", "registry.example")
		served(t, "hot path "+m+" prod/app:1.0.0 on the CI door", resp)
		if resp.Header.Get("Portcullis-Cache") != "hit" {
			t.Errorf("hot path %s on the CI door: not served from the cache", m)
		}
	}
	if n := env.up.manifests.Load() - before; n != 0 {
		t.Errorf("%d manifest requests reached the upstream: the hot-path decisions were not made from the cache", n)
	}
	check(t, "warm")
}
