package proxy_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/proxy"
)

// spliceEnv is a registry served by an httptest server that counts its connections (and
// lets a test cut them or break a blob), and a gateway in front of it over loopback.
type spliceEnv struct {
	up    *httptest.Server
	gw    string
	conns atomic.Int64
	data  []byte
	blob  string // the blob's path
}

// newSpliceEnv pushes a 3 MiB blob and starts the gateway; h, when not nil, wraps the
// registry's handler.
func newSpliceEnv(t *testing.T, wrap func(http.Handler) http.Handler, opts ...proxy.Option) *spliceEnv {
	t.Helper()
	reg := regtest.StartRegistry(t)
	e := &spliceEnv{data: bytes.Repeat([]byte("splice me "), 300<<10)}
	d, err := perfPushBlob(http.DefaultClient, reg.URL, "splice/blob", e.data)
	if err != nil {
		t.Fatal(err)
	}
	e.blob = "/v2/splice/blob/blobs/" + d.String()
	var h http.Handler = reg.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	e.up = httptest.NewUnstartedServer(h)
	e.up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			e.conns.Add(1)
		}
	}
	e.up.Start()
	t.Cleanup(e.up.Close)
	e.gw = regtest.Gateway(t, e.up.URL, append([]proxy.Option{testLogger(t)}, opts...)...).URL
	return e
}

// TestSpliceBlobGet pulls a blob through the zero-copy path: whole, by range, HEAD (not
// spliced), and an unknown blob's OCI error, with the same bytes and headers as the
// registry's; sequential GETs share one upstream connection.
func TestSpliceBlobGet(t *testing.T) {
	e := newSpliceEnv(t, nil)
	c := http.DefaultClient
	for range 3 {
		resp, body := send(t, c, http.MethodGet, e.gw, e.blob, nil)
		wantStatus(t, resp, body, http.StatusOK)
		if !bytes.Equal(body, e.data) {
			t.Fatalf("GET %s: %d bytes, not the %d pushed", e.blob, len(body), len(e.data))
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/octet-stream" {
			t.Errorf("Content-Type %q, want application/octet-stream", ct)
		}
		if resp.Header.Get("Docker-Content-Digest") == "" || resp.Header.Get("X-Request-Id") == "" {
			t.Errorf("headers lost: %v", resp.Header)
		}
	}
	if n := e.conns.Load(); n != 1 {
		t.Errorf("3 sequential blob GETs opened %d upstream connections, want 1 reused", n)
	}
	resp, body := send(t, c, http.MethodGet, e.gw, e.blob, nil, "Range", "bytes=1000-2999")
	wantStatus(t, resp, body, http.StatusPartialContent)
	if !bytes.Equal(body, e.data[1000:3000]) || resp.Header.Get("Content-Range") == "" {
		t.Errorf("Range: %d bytes, Content-Range %q", len(body), resp.Header.Get("Content-Range"))
	}
	resp, body = send(t, c, http.MethodHead, e.gw, e.blob, nil)
	wantStatus(t, resp, body, http.StatusOK)
	if resp.ContentLength != int64(len(e.data)) {
		t.Errorf("HEAD: Content-Length %d, want %d", resp.ContentLength, len(e.data))
	}
	resp, body = send(t, c, http.MethodGet, e.gw, "/v2/splice/blob/blobs/"+digest.FromString("none").String(), nil)
	wantOCIError(t, resp, body, http.StatusNotFound, proxy.CodeBlobUnknown)
	// After all of that, a GET still gets the whole blob (the connection was left clean).
	resp, body = send(t, c, http.MethodGet, e.gw, e.blob, nil)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, e.data) {
		t.Errorf("GET after range, HEAD and error: %s, %d bytes", resp.Status, len(body))
	}
}

// TestSpliceUpstreamClosedIdle: the upstream closing the idle connection the gateway
// kept does not fail the next GET (it is retried on a new connection).
func TestSpliceUpstreamClosedIdle(t *testing.T) {
	e := newSpliceEnv(t, nil)
	resp, body := send(t, http.DefaultClient, http.MethodGet, e.gw, e.blob, nil)
	wantStatus(t, resp, body, http.StatusOK)
	e.up.CloseClientConnections()
	resp, body = send(t, http.DefaultClient, http.MethodGet, e.gw, e.blob, nil)
	wantStatus(t, resp, body, http.StatusOK)
	if !bytes.Equal(body, e.data) {
		t.Errorf("GET after the upstream closed its connections: %d bytes", len(body))
	}
}

// TestSpliceUpstreamCutsBody: an upstream that dies halfway through a blob leaves the
// client with a short body and an error, never a complete-looking answer, and the broken
// connection is not reused.
func TestSpliceUpstreamCutsBody(t *testing.T) {
	var cut atomic.Bool
	e := newSpliceEnv(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !cut.Load() || !strings.Contains(r.URL.Path, "/blobs/") {
				h.ServeHTTP(w, r)
				return
			}
			w.Header().Set("Content-Length", "1000000")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(make([]byte, 100000))
			panic(http.ErrAbortHandler)
		})
	})
	cut.Store(true)
	resp, err := http.Get(e.gw + e.blob)
	if err == nil {
		n, rerr := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if rerr == nil {
			t.Errorf("a blob cut by the upstream read as complete (%d bytes)", n)
		}
	}
	cut.Store(false)
	resp, body := send(t, http.DefaultClient, http.MethodGet, e.gw, e.blob, nil)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, e.data) {
		t.Errorf("GET after a cut body: %s, %d bytes", resp.Status, len(body))
	}
}

// TestSpliceClientHangUp: a client that leaves mid-blob frees the upstream connection
// (closed, not returned dirty to the pool): the next GET gets the whole blob.
func TestSpliceClientHangUp(t *testing.T) {
	e := newSpliceEnv(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.gw+e.blob, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	for range 3 {
		resp, body := send(t, http.DefaultClient, http.MethodGet, e.gw, e.blob, nil)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, e.data) {
			t.Fatalf("GET after a client hung up: %s, %d bytes", resp.Status, len(body))
		}
	}
}

// TestSpliceOffSameAnswers: with the zero-copy path turned off, the same GETs give the
// same bytes (the reverse proxy serves them).
func TestSpliceOffSameAnswers(t *testing.T) {
	e := newSpliceEnv(t, nil, proxy.WithBlobSplice(false))
	resp, body := send(t, http.DefaultClient, http.MethodGet, e.gw, e.blob, nil, "Range", "bytes=5-9")
	wantStatus(t, resp, body, http.StatusPartialContent)
	if !bytes.Equal(body, e.data[5:10]) {
		t.Errorf("Range: %q", body)
	}
}
