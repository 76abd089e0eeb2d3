package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// WithBlobSplice turns the zero-copy blob path on or off (on by default): blob GETs from
// an upstream reached over plain HTTP, for a client on plain HTTP/1.1, are fetched on a
// raw connection whose body the kernel then moves to the client's socket (splice) instead
// of being read into the gateway and written out again. See spliceFetcher.
func WithBlobSplice(on bool) Option { return func(s *settings) { s.noSplice = !on } }

// spliceFetcher fetches blobs from the upstream on connections of its own, so that the
// body can be handed to the client's connection as a *net.TCPConn (limited to the
// response's length), which net/http's ReadFrom turns into splice(2). It dials as the
// gateway's transport does (its DialContext and ResponseHeaderTimeout) and keeps a small
// pool of idle connections (kept until used again: an upstream that closed one meanwhile
// costs a retry on a new connection).
type spliceFetcher struct {
	dial          func(ctx context.Context, network, addr string) (net.Conn, error)
	addr          string // host:port of the upstream
	headerTimeout time.Duration
	// readBuffer is the SO_RCVBUF asked for on new connections; 0 (the default) leaves
	// the kernel's autotuning, which measured no worse than 4 MiB (docs/BENCHMARKS.md).
	readBuffer int

	mu   sync.Mutex
	idle []*spliceConn
}

// maxIdleSpliceConns bounds the idle connections the fetcher keeps.
const maxIdleSpliceConns = 64

// spliceConn is one upstream connection and the reader its response headers came through.
type spliceConn struct {
	tcp *net.TCPConn
	br  *bufio.Reader
}

// newSpliceFetcher returns a fetcher for upstream when the gateway reaches it over plain
// HTTP through an *http.Transport with no proxy for it, and nil otherwise (TLS, a proxy,
// another kind of transport: the reverse proxy serves those).
func newSpliceFetcher(upstream *url.URL, transport http.RoundTripper) *spliceFetcher {
	t, ok := transport.(*http.Transport)
	if !ok || upstream.Scheme != "http" {
		return nil
	}
	if t.Proxy != nil {
		if u, err := t.Proxy(&http.Request{URL: upstream}); err != nil || u != nil {
			return nil
		}
	}
	dial := t.DialContext
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	addr := upstream.Host
	if upstream.Port() == "" {
		addr = net.JoinHostPort(upstream.Hostname(), "80")
	}
	return &spliceFetcher{dial: dial, addr: addr, headerTimeout: t.ResponseHeaderTimeout}
}

// splices reports whether the blob request r from the client goes the zero-copy way.
func (p *Proxy) splices(route Route, r *http.Request) bool {
	return p.splice != nil && route.Kind == KindBlob && r.Method == http.MethodGet &&
		r.TLS == nil && r.ProtoMajor == 1
}

// get returns an idle connection unless fresh is set, or dials one; it reports whether
// the connection was idle.
func (f *spliceFetcher) get(ctx context.Context, fresh bool) (*spliceConn, bool, error) {
	f.mu.Lock()
	if n := len(f.idle); n > 0 && !fresh {
		c := f.idle[n-1]
		f.idle = f.idle[:n-1]
		f.mu.Unlock()
		return c, true, nil
	}
	f.mu.Unlock()
	conn, err := f.dial(ctx, "tcp", f.addr)
	if err != nil {
		return nil, false, err
	}
	tcp, ok := conn.(*net.TCPConn)
	if !ok {
		conn.Close()
		return nil, false, fmt.Errorf("upstream connection is a %T, not TCP", conn)
	}
	if f.readBuffer > 0 {
		_ = tcp.SetReadBuffer(f.readBuffer)
	}
	return &spliceConn{tcp: tcp, br: bufio.NewReaderSize(tcp, 16<<10)}, false, nil
}

// put keeps c for the next request, or closes it when the pool is full.
func (f *spliceFetcher) put(c *spliceConn) {
	f.mu.Lock()
	if len(f.idle) < maxIdleSpliceConns {
		f.idle = append(f.idle, c)
		f.mu.Unlock()
		return
	}
	f.mu.Unlock()
	c.tcp.Close()
}

// roundTrip sends out on a connection of its own and reads the response headers. A reused
// connection the upstream closed while idle is retried once on a fresh one (GETs are
// idempotent), as http.Transport does.
func (f *spliceFetcher) roundTrip(out *http.Request) (*http.Response, *spliceConn, error) {
	for attempt := 0; ; attempt++ {
		c, reused, err := f.get(out.Context(), attempt > 0)
		if err != nil {
			return nil, nil, err
		}
		resp, err := f.exchange(out, c)
		if err == nil {
			return resp, c, nil
		}
		c.tcp.Close()
		if !reused || attempt > 0 || out.Context().Err() != nil {
			return nil, nil, err
		}
	}
}

// exchange writes out on c and reads the response headers, within the header timeout and
// the request's context.
func (f *spliceFetcher) exchange(out *http.Request, c *spliceConn) (*http.Response, error) {
	stop := context.AfterFunc(out.Context(), func() { _ = c.tcp.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if f.headerTimeout > 0 {
		_ = c.tcp.SetDeadline(time.Now().Add(f.headerTimeout))
	}
	if err := out.Write(c.tcp); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(c.br, out)
	for err == nil && resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
		resp, err = http.ReadResponse(c.br, out) // informational answers are skipped
	}
	if err != nil {
		return nil, err
	}
	if !stop() {
		return nil, context.Cause(out.Context())
	}
	_ = c.tcp.SetDeadline(time.Time{})
	return resp, nil
}

// serveSpliced serves a blob GET as the reverse proxy would (the same outgoing request,
// response rules and errors), fetching it on a raw upstream connection so that a
// successful body of known length goes from the upstream's socket to the client's by
// splice.
func (p *Proxy) serveSpliced(w http.ResponseWriter, r *http.Request) {
	out := p.upstreamRequestFor(r)
	out.Header.Del("Expect") // a GET has no body to wait for
	info, _ := requestFrom(r.Context())
	ctx, span := p.tracer.Start(out.Context(), upstreamSpanName(out.Method, info.route), trace.WithSpanKind(trace.SpanKindClient))
	defer span.End()
	out = out.WithContext(ctx)
	start := time.Now()
	resp, c, err := p.splice.roundTrip(out)
	if err != nil {
		p.inst.observeUpstream(ctx, info.route, out.Method, start, 0, err)
		p.errorHandler(w, out, err)
		return
	}
	p.inst.observeUpstream(ctx, info.route, out.Method, start, resp.StatusCode, nil)
	reusable := false
	defer func() {
		if reusable {
			p.splice.put(c)
		} else {
			c.tcp.Close()
		}
	}()
	removeHopByHop(resp.Header)
	if err := p.modifyResponse(resp); err != nil {
		p.errorHandler(w, out, err)
		return
	}
	copyHeaders(w.Header(), resp.Header)
	w.WriteHeader(resp.StatusCode)

	// Client hang-ups and cancellation must stop a transfer blocked on the upstream.
	stop := context.AfterFunc(ctx, func() { _ = c.tcp.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	n := resp.ContentLength
	if (resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusPartialContent) &&
		n > 0 && len(resp.TransferEncoding) == 0 && resp.Body != http.NoBody {
		err = spliceBody(w, c, n)
	} else {
		err = copyBody(w, resp.Body)
	}
	if err != nil {
		// As the reverse proxy does: a body cut short must reach the client cut short.
		panic(http.ErrAbortHandler)
	}
	reusable = !resp.Close && stop()
}

// spliceBody sends the n body bytes of the response on c to w: what the header reader
// already holds, then the rest straight from the socket through w's ReadFrom.
func spliceBody(w http.ResponseWriter, c *spliceConn, n int64) error {
	if b := c.br.Buffered(); b > 0 {
		head, _ := c.br.Peek(int(min(int64(b), n)))
		if _, err := w.Write(head); err != nil {
			return err
		}
		_, _ = c.br.Discard(len(head))
		n -= int64(len(head))
	}
	if n == 0 {
		return nil
	}
	rf, ok := w.(io.ReaderFrom)
	if !ok {
		return errors.New("response writer cannot ReadFrom")
	}
	src := &io.LimitedReader{R: c.tcp, N: n}
	if _, err := rf.ReadFrom(src); err != nil {
		return err
	}
	if src.N != 0 {
		return io.ErrUnexpectedEOF
	}
	return nil
}

// copyBody copies a body that is not spliced (errors, chunked answers) through one of
// the large buffers.
func copyBody(w http.ResponseWriter, body io.ReadCloser) error {
	buf := buffers.Get().(*[]byte)
	defer buffers.Put(buf)
	_, err := io.CopyBuffer(writerOnly{w}, body, *buf)
	if cerr := body.Close(); err == nil {
		err = cerr
	}
	return err
}
