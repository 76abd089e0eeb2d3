package embedded

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// InProcessURL is the base URL of a registry reached through its Transport, with no
// socket: the host is reserved (RFC 2606), so no request for it can leave the process.
const InProcessURL = "http://" + inProcessHost

const inProcessHost = "embedded.invalid"

// remoteAddr is the client address the registry sees for in-process requests.
const remoteAddr = "127.0.0.1:0"

// NewTransport returns an http.RoundTripper that serves requests for InProcessURL's host
// through h in this process, as an HTTP server would (request fields, status defaults,
// Content-Length and Content-Type, HEAD and 204/304 without a body), streaming the
// response body as h writes it: nothing is buffered whole. Cancelling a request's context
// or closing its response body cancels the handler's context and fails its next write.
// Requests for any other host go to fallback; with a nil fallback they fail.
func NewTransport(h http.Handler, fallback http.RoundTripper) http.RoundTripper {
	return &handlerTransport{h: h, fallback: fallback}
}

type handlerTransport struct {
	h        http.Handler
	fallback http.RoundTripper
}

// RoundTrip serves req through the handler (or the fallback for other hosts).
func (t *handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil || !strings.EqualFold(req.URL.Host, inProcessHost) {
		if t.fallback != nil {
			return t.fallback.RoundTrip(req)
		}
		closeBody(req)
		host := ""
		if req.URL != nil {
			host = req.URL.Host
		}
		return nil, fmt.Errorf("embedded registry transport: no route to host %q", host)
	}
	if req.URL.Scheme != "http" {
		closeBody(req)
		return nil, fmt.Errorf("embedded registry transport: unsupported scheme %q", req.URL.Scheme)
	}
	if err := req.Context().Err(); err != nil {
		closeBody(req)
		return nil, err
	}
	ctx, cancel := context.WithCancel(req.Context())
	sreq, err := serverRequest(ctx, req)
	if err != nil {
		cancel()
		closeBody(req)
		return nil, err
	}
	pipe := newBufPipe()
	w := &responseWriter{
		req:      req,
		ended:    ctx.Err,
		header:   make(http.Header),
		pipe:     pipe,
		body:     &pipeBody{pipe: pipe, cancel: cancel},
		ready:    make(chan struct{}),
		declared: -1,
	}
	// A cancelled request fails the handler's next write and the caller's next read.
	stop := context.AfterFunc(ctx, func() { pipe.CloseWrite(context.Cause(ctx)) })
	go func() {
		defer cancel()
		defer stop()
		defer closeBody(req)
		w.serve(t.h, sreq)
	}()
	select {
	case <-w.ready:
	case <-ctx.Done():
		if req.Context().Err() != nil {
			// The caller gave up. The handler may answer after this; its writes fail on
			// the closed pipe.
			return nil, context.Cause(req.Context())
		}
		// ctx also ends when the handler returns (its goroutine cancels it), by which
		// time the answer is ready: select picks at random among ready cases, so this
		// case can win the race against it.
		<-w.ready
	}
	if w.err != nil {
		return nil, w.err
	}
	return w.resp, nil
}

// closeBody closes a request body as a RoundTripper must, whatever happens.
func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// serverRequest turns an outgoing request into what a handler behind net/http's server
// receives.
func serverRequest(ctx context.Context, req *http.Request) (*http.Request, error) {
	r := req.Clone(ctx)
	r.RequestURI = req.URL.RequestURI()
	u, err := url.ParseRequestURI(r.RequestURI)
	if err != nil {
		return nil, fmt.Errorf("embedded registry transport: %w", err)
	}
	r.URL = u
	r.Host = req.Host
	if r.Host == "" {
		r.Host = req.URL.Host
	}
	r.RemoteAddr = remoteAddr
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	r.Close = false
	r.TLS = nil
	r.GetBody = nil
	r.Trailer = nil
	r.TransferEncoding = nil
	r.Header.Del("Host")
	r.Header.Del("Expect")
	r.Header.Del("Content-Length")
	r.Header.Del("Transfer-Encoding")
	noBody := req.Body == nil || req.Body == http.NoBody
	switch {
	case noBody && req.ContentLength > 0:
		return nil, fmt.Errorf("embedded registry transport: ContentLength=%d with no body", req.ContentLength)
	case noBody:
		r.Body, r.ContentLength = http.NoBody, 0
	case req.ContentLength > 0:
		r.Body = &exactBody{r: req.Body, left: req.ContentLength}
		r.Header.Set("Content-Length", strconv.FormatInt(req.ContentLength, 10))
	default: // a body of unknown length travels chunked
		r.Body = &exactBody{r: req.Body, left: -1}
		r.ContentLength = -1
		r.TransferEncoding = []string{"chunked"}
	}
	if r.ContentLength == 0 && (r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch) {
		r.Header.Set("Content-Length", "0")
	}
	return r, nil
}

// exactBody hands the handler exactly left bytes of r (all of it when left < 0), failing
// with io.ErrUnexpectedEOF when r ends early, as a server reading a short body does.
// Closing it does not close r: the transport closes the caller's body once the handler
// has returned.
type exactBody struct {
	r    io.Reader
	left int64
}

func (b *exactBody) Read(p []byte) (int, error) {
	if b.left == 0 {
		return 0, io.EOF
	}
	if b.left > 0 && int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	if b.left > 0 {
		b.left -= int64(n)
		if errors.Is(err, io.EOF) && b.left > 0 {
			err = io.ErrUnexpectedEOF
		}
		if b.left == 0 && err == nil {
			err = io.EOF
		}
	}
	return n, err
}

func (b *exactBody) Close() error { return nil }

// pipeBody is the response body the caller reads; closing it early cancels the handler.
type pipeBody struct {
	pipe   *bufPipe
	cancel context.CancelFunc
}

func (b *pipeBody) Read(p []byte) (int, error) { return b.pipe.Read(p) }

func (b *pipeBody) Close() error {
	b.cancel()
	b.pipe.CloseRead()
	return nil
}
