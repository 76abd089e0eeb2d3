package proxy_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/portcullis-dev/portcullis/embedded"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/proxy"
)

// gwEnv is a real distribution registry with the gateway in front of it.
type gwEnv struct {
	upstream string // upstream base URL
	gateway  string // gateway base URL
	upHost   string // upstream host:port, which clients of the gateway must never see
	viaHost  string // the host the gateway reaches the upstream at, when not upHost
	gwHost   string // gateway host:port, for ggcr references
	client   *http.Client
}

// newEnv starts a registry (with regOpts) and a gateway (with opts) in front of it.
func newEnv(t *testing.T, regOpts []func(*configuration.Configuration), opts ...proxy.Option) gwEnv {
	t.Helper()
	return newEnvVia(t, viaNetwork, regOpts, opts...)
}

// upstreamVia is how the gateway reaches the registry.
type upstreamVia string

const (
	// viaNetwork: over loopback HTTP, as for any remote upstream.
	viaNetwork upstreamVia = "network"
	// viaInProcess: through the registry's handler with no socket, as "portcullis serve"
	// reaches its embedded registry.
	viaInProcess upstreamVia = "inprocess"
)

// eachVia runs test once per way of reaching the upstream, as subtests.
func eachVia(t *testing.T, test func(t *testing.T, via upstreamVia)) {
	for _, via := range []upstreamVia{viaNetwork, viaInProcess} {
		t.Run(string(via), func(t *testing.T) { test(t, via) })
	}
}

// newEnvVia is newEnv with the gateway reaching the registry via via. The registry also
// listens on loopback either way, so tests can look at it directly (e.upstream).
func newEnvVia(t *testing.T, via upstreamVia, regOpts []func(*configuration.Configuration), opts ...proxy.Option) gwEnv {
	t.Helper()
	reg := regtest.StartRegistry(t, regOpts...)
	opts = append([]proxy.Option{testLogger(t)}, opts...)
	if via == viaInProcess {
		gw := regtest.GatewayInProcess(t, reg, opts...)
		e := newEnvFor(t, reg.URL, gw.URL)
		e.viaHost = hostOf(t, embedded.InProcessURL)
		return e
	}
	gw := regtest.Gateway(t, reg.URL, opts...)
	return newEnvFor(t, reg.URL, gw.URL)
}

func newEnvFor(t *testing.T, upstream, gateway string) gwEnv {
	t.Helper()
	e := gwEnv{upstream: upstream, gateway: gateway, upHost: hostOf(t, upstream), gwHost: hostOf(t, gateway)}
	e.client = &http.Client{
		Transport: e.checked(t, http.DefaultTransport),
		// Redirects are the client's business; tests look at Location themselves.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return e
}

func hostOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// checked wraps a client transport so that every gateway response whose Location,
// Content-Location or Link names the upstream fails the test. Each such URL must be
// relative to the gateway or name the gateway itself.
func (e gwEnv) checked(t *testing.T, next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(r)
		if err != nil || r.URL.Host != e.gwHost {
			return resp, err
		}
		for _, k := range []string{"Location", "Content-Location", "Link"} {
			for _, v := range resp.Header.Values(k) {
				for _, h := range []string{e.upHost, e.viaHost} {
					if h != "" && strings.Contains(v, h) {
						t.Errorf("%s %s: %s header %q names the upstream %s", r.Method, r.URL, k, v, h)
					}
				}
				if k != "Link" && !strings.HasPrefix(v, "/v2/") && !strings.HasPrefix(v, e.gateway+"/v2/") {
					t.Errorf("%s %s: %s header %q does not point at the gateway", r.Method, r.URL, k, v)
				}
			}
		}
		return resp, nil
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// send sends one request to base+target (target is a path with query, or a Location the
// gateway returned) and returns the response with its whole body. Headers come in pairs.
func send(t *testing.T, c *http.Client, method, base, target string, body io.Reader, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	u := target
	if strings.HasPrefix(target, "/") {
		u = base + target
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, u, err)
	}
	return resp, data
}

// gw sends a request to the gateway.
func (e gwEnv) gw(t *testing.T, method, target string, body []byte, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	return send(t, e.client, method, e.gateway, target, r, hdr...)
}

// up sends a request straight to the upstream, bypassing the gateway.
func (e gwEnv) up(t *testing.T, method, target string, body []byte, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	return send(t, http.DefaultClient, method, e.upstream, target, r, hdr...)
}

// wantStatus fails the test unless resp has status want.
func wantStatus(t *testing.T, resp *http.Response, body []byte, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d; body: %s", resp.Request.Method, resp.Request.URL, resp.StatusCode, want, body)
	}
}

// ociErrorDoc is the OCI distribution error document, decoded strictly.
type ociErrorDoc struct {
	Errors []struct {
		Code    proxy.Code      `json:"code"`
		Message string          `json:"message"`
		Detail  json.RawMessage `json:"detail"`
	} `json:"errors"`
}

// wantOCIError checks that resp is an OCI error document with one error of code, sent
// with status and Content-Type application/json, and returns its message.
func wantOCIError(t *testing.T, resp *http.Response, body []byte, status int, code proxy.Code) string {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("%s %s: status %d, want %d; body: %s", resp.Request.Method, resp.Request.URL, resp.StatusCode, status, body)
	}
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		t.Errorf("%s %s: Content-Type %q, want application/json", resp.Request.Method, resp.Request.URL, resp.Header.Get("Content-Type"))
	}
	if resp.Request.Method == http.MethodHead {
		return ""
	}
	var doc ociErrorDoc
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("%s %s: body is not OCI error JSON: %v: %s", resp.Request.Method, resp.Request.URL, err, body)
	}
	if dec.More() {
		t.Errorf("%s %s: trailing data after the error document: %s", resp.Request.Method, resp.Request.URL, body)
	}
	if len(doc.Errors) != 1 {
		t.Fatalf("%s %s: %d errors, want 1: %s", resp.Request.Method, resp.Request.URL, len(doc.Errors), body)
	}
	got := doc.Errors[0]
	if got.Code != code {
		t.Errorf("%s %s: code %s, want %s: %s", resp.Request.Method, resp.Request.URL, got.Code, code, body)
	}
	if got.Message == "" {
		t.Errorf("%s %s: error without a message: %s", resp.Request.Method, resp.Request.URL, body)
	}
	return got.Message
}

// ref parses a ggcr reference on host (the gateway or the upstream), which is plain HTTP.
func ref(t *testing.T, host, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(host+"/"+s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// remoteOpts are the ggcr options for talking to the gateway as auth.
func (e gwEnv) remoteOpts(t *testing.T, auth authn.Authenticator) []remote.Option {
	if auth == nil {
		auth = authn.Anonymous
	}
	return []remote.Option{remote.WithAuth(auth), remote.WithTransport(e.checked(t, http.DefaultTransport))}
}

// randomImage makes an image with layers random layers of size bytes each.
func randomImage(t *testing.T, size, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(size, layers)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// testLogger sends the gateway's log to t.Log, so it shows with the failing test. Lines
// logged after the test ended are dropped: a handler whose connection it hijacked (to
// write a reason phrase) is not waited for by httptest.Server.Close, and may still log.
func testLogger(t *testing.T) proxy.Option {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.ended = true
		w.mu.Unlock()
	})
	return proxy.WithLogger(slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})))
}

// testWriter writes log lines to its test until the test's cleanup runs.
type testWriter struct {
	t     *testing.T
	mu    sync.Mutex
	ended bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.ended {
		w.t.Helper()
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}
