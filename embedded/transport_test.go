package embedded_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/embedded"
)

// The handlers below exercise the transport itself; TestTransportRegistry* and the proxy
// package's tests (eachVia) run the real registry through it.

func get(t *testing.T, rt http.RoundTripper, ctx context.Context, method, path string, body io.Reader) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, embedded.InProcessURL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

func TestTransportStreamsBeforeTheHandlerFinishes(t *testing.T) {
	release, done := make(chan struct{}), make(chan struct{})
	rt := embedded.NewTransport(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write([]byte("first"))
		<-release // the caller must have the first bytes before this handler can go on
		_, _ = w.Write([]byte(" second"))
	}), nil)
	resp := get(t, rt, context.Background(), http.MethodGet, "/v2/", nil)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != -1 {
		t.Fatalf("status %d, content length %d; want 200, -1", resp.StatusCode, resp.ContentLength)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first" {
		t.Fatalf("first read: %q, %v", buf, err)
	}
	select {
	case <-done:
		t.Fatal("handler finished before the caller released it")
	default:
	}
	close(release)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != " second" {
		t.Fatalf("rest: %q, %v", rest, err)
	}
	<-done
}

func TestTransportCancelMidBody(t *testing.T) {
	handlerErr := make(chan error, 1)
	rt := embedded.NewTransport(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := bytes.Repeat([]byte("x"), 4096)
		for {
			if _, err := w.Write(chunk); err != nil {
				<-r.Context().Done() // the handler's context ends with the caller's
				handlerErr <- err
				return
			}
		}
	}), nil)
	ctx, cancel := context.WithCancel(context.Background())
	resp := get(t, rt, ctx, http.MethodGet, "/v2/big", nil)
	defer resp.Body.Close()
	if _, err := io.ReadFull(resp.Body, make([]byte, 10000)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-handlerErr; err == nil {
		t.Fatal("handler write succeeded after cancel")
	}
	if _, err := io.Copy(io.Discard, resp.Body); !errors.Is(err, context.Canceled) {
		t.Fatalf("read after cancel: %v, want context.Canceled", err)
	}
}

func TestTransportCancelBeforeHeaders(t *testing.T) {
	started, finished := make(chan struct{}), make(chan struct{})
	rt := embedded.NewTransport(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done()
		w.WriteHeader(http.StatusTeapot)
		_, err := w.Write([]byte("too late"))
		if err == nil {
			t.Error("write after the caller gave up succeeded")
		}
		close(finished)
	}), nil)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, embedded.InProcessURL+"/v2/", nil)
	resp, err := rt.RoundTrip(req)
	if !errors.Is(err, context.Canceled) || resp != nil {
		t.Fatalf("RoundTrip = %v, %v; want context.Canceled", resp, err)
	}
	<-finished
}

func TestTransportBodyCloseCancelsHandler(t *testing.T) {
	ended := make(chan error, 1)
	rt := embedded.NewTransport(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for {
			if _, err := w.Write(make([]byte, 1024)); err != nil {
				<-r.Context().Done()
				ended <- err
				return
			}
		}
	}), nil)
	resp := get(t, rt, context.Background(), http.MethodGet, "/v2/", nil)
	if _, err := io.ReadFull(resp.Body, make([]byte, 2048)); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := <-ended; err == nil {
		t.Fatal("handler kept writing after the body was closed")
	}
}

func TestTransportResponseLikeAServer(t *testing.T) {
	writeErr := make(chan error, 1)
	rt := embedded.NewTransport(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/head":
			w.Header().Set("Content-Length", "5")
			_, err := w.Write([]byte("hello"))
			writeErr <- err
		case "/empty":
			w.WriteHeader(http.StatusAccepted)
		case "/sniff":
			_, _ = w.Write([]byte("<html><body>hi</body></html>"))
		case "/short":
			w.Header().Set("Content-Length", "10")
			_, _ = w.Write([]byte("12345"))
		case "/long":
			w.Header().Set("Content-Length", "3")
			_, err := w.Write([]byte("12345"))
			writeErr <- err
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
			_, err := w.Write([]byte("x"))
			writeErr <- err
		}
	}), nil)
	ctx := context.Background()

	resp := get(t, rt, ctx, http.MethodHead, "/head", nil)
	body, _ := io.ReadAll(resp.Body)
	if len(body) != 0 || resp.ContentLength != 5 || !errors.Is(<-writeErr, http.ErrBodyNotAllowed) {
		t.Errorf("HEAD: body %q, length %d; want none, 5, and ErrBodyNotAllowed for the handler", body, resp.ContentLength)
	}
	resp = get(t, rt, ctx, http.MethodPost, "/empty", nil)
	if resp.StatusCode != http.StatusAccepted || resp.ContentLength != 0 || resp.Header.Get("Content-Length") != "0" || resp.Status != "202 Accepted" {
		t.Errorf("empty 202: %q, length %d, header %q", resp.Status, resp.ContentLength, resp.Header.Get("Content-Length"))
	}
	resp = get(t, rt, ctx, http.MethodGet, "/sniff", nil)
	_, _ = io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || resp.Header.Get("Date") == "" {
		t.Errorf("sniffed Content-Type %q, Date %q", ct, resp.Header.Get("Date"))
	}
	resp = get(t, rt, ctx, http.MethodGet, "/short", nil)
	if _, err := io.ReadAll(resp.Body); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("body shorter than its Content-Length: %v, want io.ErrUnexpectedEOF", err)
	}
	resp = get(t, rt, ctx, http.MethodGet, "/long", nil)
	body, err := io.ReadAll(resp.Body)
	if string(body) != "123" || err != nil || !errors.Is(<-writeErr, http.ErrContentLength) {
		t.Errorf("body longer than its Content-Length: got %q, %v", body, err)
	}
	resp = get(t, rt, ctx, http.MethodGet, "/nocontent", nil)
	body, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusNoContent || len(body) != 0 || !errors.Is(<-writeErr, http.ErrBodyNotAllowed) {
		t.Errorf("204: status %d body %q", resp.StatusCode, body)
	}
}

func TestTransportRequestLikeAServer(t *testing.T) {
	type seen struct {
		host, uri, remote, cl, te string
		length                    int64
		body                      string
		err                       error
	}
	got := make(chan seen, 1)
	rt := embedded.NewTransport(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		te := ""
		if len(r.TransferEncoding) > 0 {
			te = r.TransferEncoding[0]
		}
		got <- seen{r.Host, r.RequestURI, r.RemoteAddr, r.Header.Get("Content-Length"), te, r.ContentLength, string(b), err}
	}), nil)
	ctx := context.Background()

	req, _ := http.NewRequestWithContext(ctx, http.MethodPatch, embedded.InProcessURL+"/v2/a%2Fb/x?q=1&r=%20", strings.NewReader("abc"))
	if resp, err := rt.RoundTrip(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	s := <-got
	want := seen{"embedded.invalid", "/v2/a%2Fb/x?q=1&r=%20", "127.0.0.1:0", "3", "", 3, "abc", nil}
	if s != want {
		t.Errorf("PATCH with a body: handler saw %+v, want %+v", s, want)
	}

	// A body that ends before its declared length is an error for the handler.
	req, _ = http.NewRequestWithContext(ctx, http.MethodPut, embedded.InProcessURL+"/v2/", io.NopCloser(strings.NewReader("ab")))
	req.ContentLength = 10
	if resp, err := rt.RoundTrip(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	if s := <-got; !errors.Is(s.err, io.ErrUnexpectedEOF) || s.cl != "10" {
		t.Errorf("short body: handler saw %+v, want io.ErrUnexpectedEOF", s)
	}

	// A body of unknown length arrives chunked; it is never read past what it holds.
	req, _ = http.NewRequestWithContext(ctx, http.MethodPut, embedded.InProcessURL+"/v2/", io.NopCloser(strings.NewReader("stream")))
	req.ContentLength = -1
	if resp, err := rt.RoundTrip(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	if s := <-got; s.length != -1 || s.te != "chunked" || s.body != "stream" || s.err != nil {
		t.Errorf("chunked body: handler saw %+v", s)
	}

	// An empty PUT says Content-Length: 0, as a client's transport sends it.
	req, _ = http.NewRequestWithContext(ctx, http.MethodPut, embedded.InProcessURL+"/v2/", nil)
	if resp, err := rt.RoundTrip(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	if s := <-got; s.cl != "0" || s.length != 0 {
		t.Errorf("empty PUT: handler saw %+v", s)
	}
}

func TestTransportPanics(t *testing.T) {
	rt := embedded.NewTransport(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/late" {
			w.Header().Set("Content-Length", "100")
			_, _ = w.Write([]byte("partial"))
		}
		panic("boom")
	}), nil)
	req, _ := http.NewRequest(http.MethodGet, embedded.InProcessURL+"/early", nil)
	if _, err := rt.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("panic before headers: %v, want an error naming it", err)
	}
	resp := get(t, rt, context.Background(), http.MethodGet, "/late", nil)
	if _, err := io.ReadAll(resp.Body); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("panic mid-body: %v, want a read error naming it", err)
	}
}

func TestTransportRoutesOnlyItsHost(t *testing.T) {
	served := false
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served = true })
	req, _ := http.NewRequest(http.MethodGet, "http://registry.example:5000/v2/", nil)
	if _, err := embedded.NewTransport(h, nil).RoundTrip(req); err == nil || served {
		t.Errorf("another host without a fallback: %v (served %v), want an error", err, served)
	}
	var fellBack bool
	fallback := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		fellBack = true
		return nil, fmt.Errorf("offline")
	})
	if _, err := embedded.NewTransport(h, fallback).RoundTrip(req); err == nil || !fellBack || served {
		t.Errorf("another host: fallback used %v, served %v", fellBack, served)
	}
	req, _ = http.NewRequest(http.MethodGet, "https://embedded.invalid/v2/", nil)
	if _, err := embedded.NewTransport(h, nil).RoundTrip(req); err == nil || served {
		t.Errorf("https to the in-process host: %v, want an error", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestTransportRegistryBlobBoundedMemory pushes and pulls a 64 MiB blob to a real
// registry through the transport and checks that neither direction holds it in memory:
// the bytes allocated while each runs stay far below the blob's size.
func TestTransportRegistryBlobBoundedMemory(t *testing.T) {
	const size = 64 << 20
	cfg, err := embedded.Config(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg, err := embedded.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close(context.Background())
	rt := reg.Transport(nil)
	ctx := context.Background()
	data := func() io.Reader { return io.LimitReader(rand.NewChaCha8([32]byte{7}), size) }
	h := sha256.New()
	if _, err := io.Copy(h, data()); err != nil {
		t.Fatal(err)
	}
	d := digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil))

	resp := get(t, rt, ctx, http.MethodPost, "/v2/team/big/blobs/uploads/", nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("start upload: %s", resp.Status)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, embedded.InProcessURL+"/v2/") {
		t.Fatalf("upload Location %q does not name the in-process host", loc)
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	allocated := allocatedBy(func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, loc+sep+"digest="+d.String(), data())
		req.ContentLength = size
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT blob: %s", resp.Status)
		}
	})
	if allocated > size/4 {
		t.Errorf("pushing %d bytes allocated %d bytes: the request body is buffered", size, allocated)
	}

	var n int64
	allocated = allocatedBy(func() {
		resp := get(t, rt, ctx, http.MethodGet, "/v2/team/big/blobs/"+d.String(), nil)
		defer resp.Body.Close()
		v := d.Verifier()
		if n, err = io.CopyBuffer(v, resp.Body, make([]byte, 1<<20)); err != nil || !v.Verified() {
			t.Fatalf("GET blob: %d bytes, %v, verified %v", n, err, v.Verified())
		}
		if resp.ContentLength != size {
			t.Errorf("Content-Length %d, want %d", resp.ContentLength, size)
		}
	})
	if n != size {
		t.Fatalf("GET blob: %d bytes, want %d", n, size)
	}
	if allocated > size/4 {
		t.Errorf("pulling %d bytes allocated %d bytes: the response body is buffered", size, allocated)
	}
	t.Logf("pulling %d MiB allocated %d KiB", size>>20, allocated>>10)
}

// allocatedBy returns the bytes allocated on the heap while f runs.
func allocatedBy(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestTransportQuickAnswersAreNotCancelled: a handler that answers and returns at once
// ends the request's inner context as it returns; the answer must still be delivered,
// every time (a select between "answered" and "context done" once picked either).
func TestTransportQuickAnswersAreNotCancelled(t *testing.T) {
	tr := embedded.NewTransport(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("{}"))
	}), nil)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 { // concurrent callers, so the handler often returns before the caller waits
		wg.Go(func() {
			for i := range 500 {
				req, err := http.NewRequest(http.MethodGet, embedded.InProcessURL+"/v2/", nil)
				if err != nil {
					errs <- err
					return
				}
				resp, err := tr.RoundTrip(req)
				if err != nil {
					errs <- fmt.Errorf("request %d: %w", i, err)
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || string(body) != "{}" {
					errs <- fmt.Errorf("request %d: body %q, %v", i, body, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
