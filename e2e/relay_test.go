package e2e

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// relay is a reverse proxy a test puts on the wire between a real client and a real
// server: it records what each response carried (to prove what a client received, and
// then did or did not print), and can hold the reads of a blob until released (to keep a
// scan running for as long as a test needs). It decides nothing and changes no byte.
type relay struct {
	addr string
	srv  *httptest.Server

	mu    sync.Mutex
	seen  []relayed
	hold  string        // the blob digest whose GETs wait, while held is not nil
	held  chan struct{} // closed on release
	count int           // GETs that waited
}

// relayed is one response that went through a relay.
type relayed struct {
	Method, Path string
	Status       int
	Warnings     []string
}

// startRelay relays to target (a base URL) on a free loopback port until the test ends.
// Requests keep their Host, so the server builds its URLs for the relay's address.
func startRelay(t *testing.T, target string) *relay {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host
		},
		ModifyResponse: func(resp *http.Response) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.seen = append(r.seen, relayed{Method: resp.Request.Method, Path: resp.Request.URL.Path,
				Status: resp.StatusCode, Warnings: resp.Header.Values("Warning")})
			return nil
		},
	}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/") {
			r.mu.Lock()
			held := r.held
			if held != nil && strings.HasSuffix(req.URL.Path, "/blobs/"+r.hold) {
				r.count++
			} else {
				held = nil
			}
			r.mu.Unlock()
			if held != nil {
				select {
				case <-held:
				case <-req.Context().Done():
					return
				}
			}
		}
		rp.ServeHTTP(w, req)
	}))
	r.addr = r.srv.Listener.Addr().String()
	t.Cleanup(r.down)
	return r
}

// down stops relaying: the server behind it is unreachable from then on.
func (r *relay) down() {
	r.release()
	r.srv.Close()
}

// holdBlob makes the GETs of the blob digest wait until release.
func (r *relay) holdBlob(digest string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.held == nil {
		r.held = make(chan struct{})
	}
	r.hold = digest
}

// release lets the held GETs go, and the later ones through at once; it returns how
// many were held.
func (r *relay) release() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.held != nil {
		close(r.held)
		r.held = nil
	}
	return r.count
}

// responses returns the responses relayed so far for which keep is true.
func (r *relay) responses(keep func(relayed) bool) []relayed {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []relayed
	for _, s := range r.seen {
		if keep(s) {
			out = append(out, s)
		}
	}
	return out
}
