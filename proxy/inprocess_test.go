package proxy_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/embedded"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/proxy"
)

// inProcessGateway serves a gateway in front of reg reached in process, with h as the
// in-process handler; the transport serves only manifests and referrers (through reg's
// Transport) and counts any other request it is asked for in *other.
func inProcessGateway(t *testing.T, reg *embedded.Registry, h http.Handler, other *atomic.Int64, tlsServer bool) *httptest.Server {
	t.Helper()
	rt := reg.Transport(nil)
	transport := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if !strings.Contains(r.URL.Path, "/manifests/") && !strings.Contains(r.URL.Path, "/referrers/") {
			other.Add(1)
		}
		return rt.RoundTrip(r)
	})
	px, err := proxy.New(embedded.InProcessURL, transport, proxy.WithInProcessUpstream(h), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	var srv *httptest.Server
	if tlsServer {
		srv = httptest.NewTLSServer(px)
	} else {
		srv = httptest.NewServer(px)
	}
	t.Cleanup(srv.Close)
	return srv
}

// TestInProcessStreamsWithoutTransport pushes and pulls a blob through a gateway whose
// in-process registry is reached by its handler: uploads, GET, HEAD and Range never touch
// the transport, and the answers are shaped as for a remote upstream (relative Location,
// blobs as application/octet-stream, registry errors passed through). It runs with the
// client on plain HTTP and on TLS: the registry must not build https URLs the rewriter
// does not recognise as its own.
func TestInProcessStreamsWithoutTransport(t *testing.T) {
	for _, tlsServer := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", tlsServer), func(t *testing.T) {
			reg := regtest.StartRegistry(t)
			var other atomic.Int64
			srv := inProcessGateway(t, reg, reg.Handler(), &other, tlsServer)
			c := srv.Client()
			c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

			resp, body := send(t, c, http.MethodPost, srv.URL, "/v2/in/process/blobs/uploads/", nil)
			wantStatus(t, resp, body, http.StatusAccepted)
			loc := resp.Header.Get("Location")
			if !strings.HasPrefix(loc, "/v2/in/process/blobs/uploads/") {
				t.Fatalf("upload Location %q, want a gateway-relative path", loc)
			}
			data := bytes.Repeat([]byte("portcullis in process "), 40000)
			d := digest.FromBytes(data)
			resp, body = send(t, c, http.MethodPatch, srv.URL, loc, bytes.NewReader(data), "Content-Type", "application/octet-stream")
			wantStatus(t, resp, body, http.StatusAccepted)
			loc = resp.Header.Get("Location")
			sep := "?"
			if strings.Contains(loc, "?") {
				sep = "&"
			}
			resp, body = send(t, c, http.MethodPut, srv.URL, loc+sep+"digest="+d.String(), nil)
			wantStatus(t, resp, body, http.StatusCreated)
			if got := resp.Header.Get("Location"); !strings.HasPrefix(got, "/v2/in/process/blobs/") {
				t.Errorf("blob Location %q, want a gateway-relative path", got)
			}

			blob := "/v2/in/process/blobs/" + d.String()
			resp, body = send(t, c, http.MethodGet, srv.URL, blob, nil)
			wantStatus(t, resp, body, http.StatusOK)
			if !bytes.Equal(body, data) {
				t.Fatalf("GET %s: %d bytes, not the %d pushed", blob, len(body), len(data))
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/octet-stream" {
				t.Errorf("GET %s: Content-Type %q, want application/octet-stream", blob, ct)
			}
			if resp.Header.Get("X-Request-Id") == "" {
				t.Errorf("GET %s: no X-Request-Id from the gateway", blob)
			}
			resp, body = send(t, c, http.MethodHead, srv.URL, blob, nil)
			wantStatus(t, resp, body, http.StatusOK)
			if resp.ContentLength != int64(len(data)) || len(body) != 0 {
				t.Errorf("HEAD %s: Content-Length %d and %d body bytes, want %d and none", blob, resp.ContentLength, len(body), len(data))
			}
			resp, body = send(t, c, http.MethodGet, srv.URL, blob, nil, "Range", "bytes=100-199")
			wantStatus(t, resp, body, http.StatusPartialContent)
			if !bytes.Equal(body, data[100:200]) {
				t.Errorf("Range GET %s: got %q", blob, body)
			}
			missing := "/v2/in/process/blobs/" + digest.FromString("absent").String()
			resp, body = send(t, c, http.MethodGet, srv.URL, missing, nil)
			wantOCIError(t, resp, body, http.StatusNotFound, proxy.CodeBlobUnknown)

			if n := other.Load(); n != 0 {
				t.Errorf("the transport was asked for %d blob or upload requests; they must go to the handler", n)
			}
		})
	}
}

// TestInProcessHandlerPanic: a registry handler that panics before answering gives the
// client the same 503 UNAVAILABLE as an upstream that cannot be reached; one that panics
// halfway through a body cuts the client's connection, so the client sees a short body
// rather than a complete-looking one.
func TestInProcessHandlerPanic(t *testing.T) {
	reg := regtest.StartRegistry(t)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/tags/list"):
			panic("registry bug before the answer")
		case strings.Contains(r.URL.Path, "/blobs/"):
			w.Header().Set("Content-Length", "1000")
			_, _ = w.Write(make([]byte, 100))
			panic("registry bug mid-body")
		}
		reg.Handler().ServeHTTP(w, r)
	})
	var other atomic.Int64
	srv := inProcessGateway(t, reg, h, &other, false)

	resp, body := send(t, srv.Client(), http.MethodGet, srv.URL, "/v2/some/repo/tags/list", nil)
	msg := wantOCIError(t, resp, body, http.StatusServiceUnavailable, proxy.CodeUnavailable)
	if !strings.Contains(msg, "panicked") {
		t.Errorf("message %q does not say the registry failed", msg)
	}

	// The connection is cut: before the headers (they sit in the server's buffer with the
	// first bytes) or after; either way the client must not see a complete answer.
	resp, err := srv.Client().Get(srv.URL + "/v2/some/repo/blobs/" + digest.FromString("x").String())
	if err == nil {
		defer resp.Body.Close()
		if n, err := io.Copy(io.Discard, resp.Body); err == nil {
			t.Errorf("a body cut by a panic read as complete (%d bytes)", n)
		}
	}
}

// TestInProcessClientHangUp: a client that goes away mid-blob ends the registry's
// handler (its writes fail on the closed connection) instead of leaving it running.
func TestInProcessClientHangUp(t *testing.T) {
	reg := regtest.StartRegistry(t)
	data := bytes.Repeat([]byte{7}, 64<<20)
	d, err := perfPushBlob(http.DefaultClient, reg.URL, "hang/up", data)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reg.Handler().ServeHTTP(w, r)
		if strings.Contains(r.URL.Path, "/blobs/") {
			done <- struct{}{}
		}
	})
	var other atomic.Int64
	srv := inProcessGateway(t, reg, h, &other, false)
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v2/hang/up/blobs/"+d.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	select {
	case <-done:
	case <-time.After(30 * time.Second): // a hang guard, not a performance limit
		t.Fatal("the registry handler still runs 30 s after its client went away")
	}
}

// TestInProcessRequestAsTheUpstreamSeesIt checks the request the registry sees: the
// gateway's client used TLS, the registry (reached in process, as over plain HTTP) must
// not think so, nor see the client's forwarding headers.
func TestInProcessRequestAsTheUpstreamSeesIt(t *testing.T) {
	reg := regtest.StartRegistry(t)
	type seen struct {
		tls                bool
		host, fwdHost, xff string
		conn               string
	}
	got := make(chan seen, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/tags/list") {
			got <- seen{r.TLS != nil, r.Host, r.Header.Get("X-Forwarded-Host"), r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Custom-Hop")}
		}
		reg.Handler().ServeHTTP(w, r)
	})
	var other atomic.Int64
	srv := inProcessGateway(t, reg, h, &other, true)
	resp, body := send(t, srv.Client(), http.MethodGet, srv.URL, "/v2/some/repo/tags/list", nil,
		"X-Forwarded-Host", "evil.example", "Connection", "X-Custom-Hop", "X-Custom-Hop", "1")
	wantOCIError(t, resp, body, http.StatusNotFound, proxy.CodeNameUnknown)
	s := <-got
	if s.tls || s.host != "embedded.invalid" || s.fwdHost != "" || s.xff != "127.0.0.1" || s.conn != "" {
		t.Errorf("the registry saw TLS=%v Host=%q X-Forwarded-Host=%q X-Forwarded-For=%q X-Custom-Hop=%q; want false, embedded.invalid, none, 127.0.0.1, none",
			s.tls, s.host, s.fwdHost, s.xff, s.conn)
	}
}
