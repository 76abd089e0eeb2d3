package proxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// readFromRecorder is a client response writer that records what ReadFrom was handed.
type readFromRecorder struct {
	*httptest.ResponseRecorder
	src io.Reader
}

func (w *readFromRecorder) ReadFrom(src io.Reader) (int64, error) {
	w.src = src
	return io.Copy(w.ResponseRecorder, src)
}

// TestSpliceHandsTheSocketToReadFrom: with the zero-copy path, the body reaches the client
// writer's ReadFrom as the upstream's *net.TCPConn limited to the body's length, the form
// net.TCPConn.ReadFrom splices from; with it off, ReadFrom is not used at all.
func TestSpliceHandsTheSocketToReadFrom(t *testing.T) {
	body := strings.Repeat("b", 1<<20)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1048576")
		_, _ = io.WriteString(w, body)
	}))
	defer up.Close()
	for _, on := range []bool{true, false} {
		transport, err := NewTransport(TransportOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p, err := New(up.URL, transport, WithBlobSplice(on))
		if err != nil {
			t.Fatal(err)
		}
		w := &readFromRecorder{ResponseRecorder: httptest.NewRecorder()}
		r := httptest.NewRequest(http.MethodGet, "/v2/a/b/blobs/sha256:"+strings.Repeat("0", 64), nil)
		p.ServeHTTP(w, r)
		if w.Code != http.StatusOK || w.Body.String() != body {
			t.Fatalf("splice=%v: %d, %d bytes", on, w.Code, w.Body.Len())
		}
		lr, ok := w.src.(*io.LimitedReader)
		switch {
		case on && !ok:
			t.Errorf("splice on: ReadFrom got %T, want *io.LimitedReader", w.src)
		case on:
			if _, ok := lr.R.(*net.TCPConn); !ok {
				t.Errorf("splice on: ReadFrom got a LimitedReader of %T, want *net.TCPConn", lr.R)
			}
		case w.src != nil:
			t.Errorf("splice off: ReadFrom was used (%T)", w.src)
		}
		transport.CloseIdleConnections()
	}
}

// TestSpliceSkipsInformationalAnswers: an upstream that sends 103 Early Hints before its
// answer is answered by the final response, body and all.
func TestSpliceSkipsInformationalAnswers(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</hint>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		w.Header().Set("Content-Length", "5")
		_, _ = io.WriteString(w, "hello")
	}))
	defer up.Close()
	transport, err := NewTransport(TransportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(up.URL, transport)
	if err != nil {
		t.Fatal(err)
	}
	w := &readFromRecorder{ResponseRecorder: httptest.NewRecorder()}
	p.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v2/a/b/blobs/sha256:"+strings.Repeat("0", 64), nil))
	if w.Code != http.StatusOK || w.Body.String() != "hello" {
		t.Errorf("got %d %q, want 200 \"hello\"", w.Code, w.Body.String())
	}
}
