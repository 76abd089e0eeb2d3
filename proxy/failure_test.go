package proxy_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/proxy"
)

// silentUpstream accepts connections and reads from them, but never answers.
func silentUpstream(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// newTestProxy builds a proxy in front of upstream with a transport timeout.
func newTestProxy(t *testing.T, upstream string, timeout time.Duration, opts ...proxy.Option) *proxy.Proxy {
	t.Helper()
	tr, err := proxy.NewTransport(proxy.TransportOptions{Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	px, err := proxy.New(upstream, tr, append([]proxy.Option{testLogger(t)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return px
}

func startServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestUpstreamUnavailable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		upstream func(*testing.T) string
		message  string
	}{
		{"unreachable", closedPort, "is unreachable"},
		{"never answers", silentUpstream, "did not answer in time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr := tt.upstream(t)
			// The timeout is short so the silent upstream fails the test quickly; nothing
			// asserts on how long anything took.
			px := newTestProxy(t, "http://"+addr, 200*time.Millisecond)
			gw := startServer(t, px)
			for _, req := range []struct{ method, target string }{
				{http.MethodGet, "/v2/"},
				{http.MethodGet, "/v2/team/app/manifests/v1"},
				{http.MethodHead, "/v2/team/app/manifests/v1"},
				{http.MethodGet, "/v2/team/app/blobs/" + dgst},
				{http.MethodPost, "/v2/team/app/blobs/uploads/"},
			} {
				resp, body := send(t, http.DefaultClient, req.method, gw, req.target, nil)
				msg := wantOCIError(t, resp, body, http.StatusServiceUnavailable, proxy.CodeUnavailable)
				if req.method == http.MethodHead {
					continue
				}
				if !strings.Contains(msg, tt.message) || !strings.Contains(msg, addr) {
					t.Errorf("%s %s: message %q, want it to name %s and say %q", req.method, req.target, msg, addr, tt.message)
				}
			}

			err := px.Ping(t.Context())
			var e *proxy.Error
			if !errors.As(err, &e) || e.Code != proxy.CodeUnavailable || !strings.Contains(e.Message, tt.message) {
				t.Errorf("Ping = %v, want UNAVAILABLE saying %q", err, tt.message)
			}
		})
	}
}

func TestPing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		handler http.HandlerFunc
		ok      bool
	}{
		{"200", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }, true},
		{"401 is reachable", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusUnauthorized) }, true},
		{"404 is reachable", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotFound) }, true},
		{"500", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) }, false},
		{"503", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			up := startServer(t, tt.handler)
			err := newTestProxy(t, up, 5*time.Second).Ping(t.Context())
			if (err == nil) != tt.ok {
				t.Errorf("Ping = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !strings.Contains(err.Error(), hostOf(t, up)) {
				t.Errorf("Ping error %q does not name the upstream", err)
			}
		})
	}

	t.Run("service account", func(t *testing.T) {
		t.Parallel()
		var got atomic.Value
		up := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, _ := r.BasicAuth()
			got.Store(r.URL.Path + " " + u + ":" + p)
		}))
		px := newTestProxy(t, up, 5*time.Second, proxy.WithServiceAccount(proxy.ServiceAccount{Username: "svc", Password: "pw"}))
		if err := px.Ping(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got.Load() != "/v2/ svc:pw" {
			t.Errorf("upstream saw %v, want GET /v2/ as svc:pw", got.Load())
		}
	})

	t.Run("real registry", func(t *testing.T) {
		t.Parallel()
		if err := newTestProxy(t, regtest.Registry(t), 5*time.Second).Ping(t.Context()); err != nil {
			t.Errorf("Ping a running registry: %v", err)
		}
	})
}

// TestGatewayErrorsAreOCIJSON walks through every error the gateway makes itself and checks
// that each is an OCI error document sent as application/json, and that none of the bad
// requests reach the upstream.
func TestGatewayErrorsAreOCIJSON(t *testing.T) {
	t.Parallel()
	var reached atomic.Int64
	up := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		t.Errorf("the upstream was reached: %s %s", r.Method, r.URL)
		w.WriteHeader(http.StatusTeapot)
	}))
	gw := startServer(t, newTestProxy(t, up, 5*time.Second, proxy.WithMaxManifestBytes(1024)))
	tests := []struct {
		method, target string
		body           []byte
		status         int
		code           proxy.Code
	}{
		{http.MethodGet, "/", nil, http.StatusNotFound, proxy.CodeUnsupported},
		{http.MethodGet, "/healthz", nil, http.StatusNotFound, proxy.CodeUnsupported},
		{http.MethodGet, "/v1/_ping", nil, http.StatusNotFound, proxy.CodeUnsupported},
		{http.MethodGet, "/v2/app/whatever", nil, http.StatusNotFound, proxy.CodeUnsupported},
		{http.MethodHead, "/v2/app/whatever", nil, http.StatusNotFound, proxy.CodeUnsupported},
		{http.MethodGet, "/v2/App/tags/list", nil, http.StatusBadRequest, proxy.CodeNameInvalid},
		{http.MethodGet, "/v2/a/../b/tags/list", nil, http.StatusBadRequest, proxy.CodeNameInvalid},
		{http.MethodGet, "/v2/" + strings.Repeat("a", 256) + "/tags/list", nil, http.StatusBadRequest, proxy.CodeNameInvalid},
		{http.MethodGet, "/v2/a/manifests/-bad", nil, http.StatusBadRequest, proxy.CodeTagInvalid},
		{http.MethodPut, "/v2/a/manifests/.bad", []byte("{}"), http.StatusBadRequest, proxy.CodeTagInvalid},
		{http.MethodGet, "/v2/a/blobs/sha256:123", nil, http.StatusBadRequest, proxy.CodeDigestInvalid},
		{http.MethodDelete, "/v2/a/blobs/latest", nil, http.StatusBadRequest, proxy.CodeDigestInvalid},
		{http.MethodGet, "/v2/a/referrers/v1", nil, http.StatusBadRequest, proxy.CodeDigestInvalid},
		{http.MethodPut, "/v2/a/manifests/" + dgst, []byte("{}"), http.StatusBadRequest, proxy.CodeDigestInvalid},
		{http.MethodPut, "/v2/a/manifests/v1", bytes.Repeat([]byte("x"), 1025), http.StatusRequestEntityTooLarge, proxy.CodeSizeInvalid},
	}
	for _, tt := range tests {
		var body io.Reader
		if tt.body != nil {
			body = bytes.NewReader(tt.body)
		}
		resp, rb := send(t, http.DefaultClient, tt.method, gw, tt.target, body)
		wantOCIError(t, resp, rb, tt.status, tt.code)
		if got := resp.Header.Get("Docker-Distribution-Api-Version"); got != "registry/2.0" {
			t.Errorf("%s %s: Docker-Distribution-Api-Version %q", tt.method, tt.target, got)
		}
		if resp.Header.Get("X-Request-Id") == "" {
			t.Errorf("%s %s: no X-Request-Id", tt.method, tt.target)
		}
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("%d bad requests reached the upstream", n)
	}
}

// TestUpstreamKilledMidBlob: an upstream that sends half a blob and drops the connection
// makes the client's read fail (it must not see a short body as complete), and the gateway
// goes on serving.
func TestUpstreamKilledMidBlob(t *testing.T) {
	t.Parallel()
	blob := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	var calls atomic.Int64
	up := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(blob)))
		w.Header().Set("Content-Type", "application/octet-stream")
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(blob[:len(blob)/2])
			hangUp(t, w)
			return
		}
		_, _ = w.Write(blob)
	}))
	gw := regtest.Gateway(t, up, testLogger(t))
	target := gw.URL + "/v2/app/blobs/" + dgst

	resp, err := http.Get(target)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("read of a cut-off blob: %d bytes, error %v; want io.ErrUnexpectedEOF", len(got), err)
	}
	if len(got) >= len(blob) {
		t.Errorf("read %d bytes of a %d-byte blob cut in half", len(got), len(blob))
	}
	if !bytes.Equal(got, blob[:len(got)]) {
		t.Error("the bytes that did arrive are not the blob's")
	}

	// The next request, on a fresh connection or a pooled one, is served whole.
	for range 2 {
		resp, err = http.Get(target)
		if err != nil {
			t.Fatal(err)
		}
		got, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(got, blob) {
			t.Errorf("after the failure: status %d, %d bytes, error %v", resp.StatusCode, len(got), err)
		}
	}
}
