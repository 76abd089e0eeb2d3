package proxy

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// WithInProcessUpstream says the upstream registry runs in this process and h is its
// handler (the embedded registry). Requests that stream bytes (blobs, uploads, tag lists,
// the catalog and the base endpoint) are then served by calling h with the client's own
// response writer, so nothing is copied between the registry and the client's connection
// but what the registry writes; the response is shaped exactly as a remote upstream's
// (see modifyResponse). Manifests and referrers, whose bodies the gateway reads before
// answering, still reach the upstream through the transport given to New, which must
// also serve the upstream's URL (embedded.NewTransport does).
func WithInProcessUpstream(h http.Handler) Option { return func(s *settings) { s.inProcess = h } }

// errReplaced fails the handler's writes once the gateway has answered instead of it.
var errReplaced = errors.New("the gateway answered this request itself")

// servedInProcess reports whether a request on route is handed to the in-process
// registry's handler rather than sent through the transport.
func (p *Proxy) servedInProcess(route Route) bool {
	if p.inProcess == nil {
		return false
	}
	switch route.Kind {
	case KindBase, KindCatalog, KindTags, KindBlob, KindUploadStart, KindUpload:
		return true
	}
	return false
}

// serveInProcess does for the in-process registry what the reverse proxy does for a
// remote one: the same outgoing request (see upstreamRequestFor), the same response rules
// applied when the registry sends its headers, the same error answers. The body goes
// from the registry's writes straight to w (ReadFrom included).
func (p *Proxy) serveInProcess(w http.ResponseWriter, r *http.Request) {
	out := p.upstreamRequestFor(r)
	info, _ := requestFrom(r.Context())
	ctx, span := p.tracer.Start(out.Context(), upstreamSpanName(out.Method, info.route), trace.WithSpanKind(trace.SpanKindClient))
	defer span.End()
	out = out.WithContext(ctx)
	iw := &inProcessWriter{p: p, rw: w, out: out, header: make(http.Header), start: time.Now()}
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v == http.ErrAbortHandler { //nolint:errorlint // a sentinel panic value, compared as net/http does
			panic(v)
		}
		err := fmt.Errorf("embedded registry: handler panicked: %v", v)
		iw.observe(0, err)
		if iw.wrote {
			panic(http.ErrAbortHandler) // the client has a partial answer: cut it
		}
		iw.wrote, iw.failed = true, true
		p.errorHandler(w, out, err)
	}()
	p.inProcess.ServeHTTP(iw, serverSide(out, p.upstream.Host, r.RemoteAddr))
	if !iw.wrote {
		iw.WriteHeader(http.StatusOK) // a handler that writes nothing answers 200, as net/http does
	}
}

// upstreamRequestFor builds the request for the upstream from the client's request r as
// httputil.ReverseProxy does before its transport sees it: a clone without hop-by-hop or
// client-supplied forwarding headers, passed through p.rewrite.
func (p *Proxy) upstreamRequestFor(r *http.Request) *http.Request {
	out := r.Clone(r.Context())
	if r.ContentLength == 0 {
		out.Body = nil
	}
	if out.Header == nil {
		out.Header = make(http.Header)
	}
	out.Close = false
	removeHopByHop(out.Header)
	if headerHasToken(r.Header["Te"], "trailers") {
		out.Header.Set("Te", "trailers")
	}
	for _, k := range []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
		out.Header.Del(k)
	}
	out.URL.RawQuery = cleanQuery(out.URL.RawQuery)
	pr := &httputil.ProxyRequest{In: r, Out: out}
	p.rewrite(pr)
	if _, ok := pr.Out.Header["User-Agent"]; !ok {
		pr.Out.Header.Set("User-Agent", "") // sent as no User-Agent at all, not Go's default
	}
	return pr.Out
}

// serverSide turns the outgoing request out into what a handler behind net/http's server
// receives from a client that sent it to host: a path-only URL, Host set, no TLS (the
// registry builds its Location URLs from these, which the rewriter then recognises).
func serverSide(out *http.Request, host, remoteAddr string) *http.Request {
	s := out.WithContext(out.Context()) // a shallow copy; out stays the response hooks' view
	s.URL = &url.URL{Path: out.URL.Path, RawPath: out.URL.RawPath, RawQuery: out.URL.RawQuery}
	s.RequestURI = s.URL.RequestURI()
	s.Host = host
	s.RemoteAddr = remoteAddr
	s.TLS = nil
	s.Proto, s.ProtoMajor, s.ProtoMinor = "HTTP/1.1", 1, 1
	if s.Header.Get("User-Agent") == "" {
		s.Header.Del("User-Agent")
	}
	if s.Body == nil {
		s.Body = http.NoBody
	}
	return s
}

// inProcessWriter is the response writer the in-process registry writes to. Its headers
// collect in a map of their own; when the registry sends them, the response rules run
// on them (modifyResponse, as for a remote upstream's response) and what they leave goes
// to the client's writer. The body then passes straight through.
type inProcessWriter struct {
	p      *Proxy
	rw     http.ResponseWriter // the client's
	out    *http.Request       // the request as the upstream would have received it
	header http.Header
	start  time.Time
	wrote  bool // headers sent (or an error answered instead)
	failed bool // the gateway answered instead of the registry
}

// Header returns the registry's header map, shaped and copied to the client at WriteHeader.
func (w *inProcessWriter) Header() http.Header { return w.header }

// WriteHeader applies the response rules and sends the client the result. Informational
// answers are relayed as the reverse proxy relays them; later calls are ignored.
func (w *inProcessWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		h := w.rw.Header()
		copyHeaders(h, w.header)
		w.rw.WriteHeader(code)
		clear(h)
		clear(w.header)
		return
	}
	w.wrote = true
	w.observe(code, nil)
	removeHopByHop(w.header)
	resp := &http.Response{
		Status:        strconv.Itoa(code) + " " + http.StatusText(code),
		StatusCode:    code,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        w.header,
		Body:          http.NoBody,
		ContentLength: -1,
		Request:       w.out,
	}
	if n, err := strconv.ParseInt(w.header.Get("Content-Length"), 10, 64); err == nil {
		resp.ContentLength = n
	}
	if err := w.p.modifyResponse(resp); err != nil {
		w.failed = true
		w.p.errorHandler(w.rw, w.out, err)
		return
	}
	copyHeaders(w.rw.Header(), resp.Header)
	w.rw.WriteHeader(resp.StatusCode)
}

// Write sends p to the client, with the headers first when they have not gone yet.
func (w *inProcessWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.failed {
		return 0, errReplaced
	}
	return w.rw.Write(p)
}

// ReadFrom copies src to the client through the client's writer's own ReadFrom, so large
// copies and sendfile or splice to the client's socket still apply.
func (w *inProcessWriter) ReadFrom(src io.Reader) (int64, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.failed {
		return 0, errReplaced
	}
	if rf, ok := w.rw.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(writerOnly{w.rw}, src)
}

// Flush sends the headers if needed and flushes the client's writer.
func (w *inProcessWriter) Flush() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if !w.failed {
		_ = http.NewResponseController(w.rw).Flush()
	}
}

// Unwrap lets http.ResponseController reach the client's writer (deadlines).
func (w *inProcessWriter) Unwrap() http.ResponseWriter { return w.rw }

// observe records the upstream metrics the tracing transport records for a remote call:
// status 0 with err for an exchange that failed without an answer.
func (w *inProcessWriter) observe(status int, err error) {
	info, _ := requestFrom(w.out.Context())
	w.p.inst.observeUpstream(w.out.Context(), info.route, w.out.Method, w.start, status, err)
}

// writerOnly hides a writer's ReadFrom, so io.Copy does not recurse into it.
type writerOnly struct{ io.Writer }

// hopHeaders are the hop-by-hop headers a proxy drops (as httputil.ReverseProxy does).
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// removeHopByHop drops the headers Connection names and the known hop-by-hop ones.
func removeHopByHop(h http.Header) {
	for _, f := range h["Connection"] {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = textproto.TrimString(sf); sf != "" {
				h.Del(sf)
			}
		}
	}
	for _, f := range hopHeaders {
		h.Del(f)
	}
}

// headerHasToken reports whether any comma-separated element of values is token
// (case-insensitive).
func headerHasToken(values []string, token string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(textproto.TrimString(t), token) {
				return true
			}
		}
	}
	return false
}

// cleanQuery re-encodes a query string that would not parse (a ';' or a bad escape), as
// httputil.ReverseProxy does, so the upstream sees only parameters the gateway could read.
func cleanQuery(s string) string {
	for i := 0; i < len(s); {
		switch s[i] {
		case ';':
			v, _ := url.ParseQuery(s)
			return v.Encode()
		case '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				v, _ := url.ParseQuery(s)
				return v.Encode()
			}
			i += 3
		default:
			i++
		}
	}
	return s
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// copyHeaders adds every value of src to dst.
func copyHeaders(dst, src http.Header) {
	for k, vv := range src {
		for _, v := range vv {
			dst.Add(k, v)
		}
	}
}
