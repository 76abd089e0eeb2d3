package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"regexp"
)

type ctxKey struct{}

// requestInfo travels in the request context from ServeHTTP to the upstream round trip.
type requestInfo struct {
	id    string
	route Route
	// host is the Host the client used, for messages only (see clientHost). The request
	// to the upstream, which is what the response hooks see, has an empty Host field.
	host string
	// method is the client's method: a manifest HEAD reaches the upstream as a GET.
	method string
	// ifNoneMatch is the client's If-None-Match, answered by the gateway after its
	// decision (never passed to the upstream for manifests).
	ifNoneMatch string
}

func withRequest(ctx context.Context, info requestInfo) context.Context {
	return context.WithValue(ctx, ctxKey{}, info)
}

func requestFrom(ctx context.Context) (requestInfo, bool) {
	info, ok := ctx.Value(ctxKey{}).(requestInfo)
	return info, ok
}

// clientHost returns the Host the client used for r (which may be the request to the
// upstream made on its behalf). It is for messages only, such as the address in a denial's
// cosign command; what is decided uses doorHost.
func clientHost(r *http.Request) string {
	if info, ok := requestFrom(r.Context()); ok && info.host != "" {
		return info.host
	}
	return r.Host
}

func requestIDFrom(ctx context.Context) string {
	info, _ := requestFrom(ctx)
	return info.id
}

var safeRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// requestID makes the request's id, which is also the id of any decision it leads to, so
// it is unique: a well-formed X-Request-Id from the client is kept as its prefix, for
// correlation, and the gateway adds random hex a client cannot choose.
func requestID(r *http.Request) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	if client := r.Header.Get("X-Request-Id"); safeRequestID.MatchString(client) {
		return client + "-" + id
	}
	return id
}

// recorder remembers the status and body size written through it.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

// ReadFrom copies src to the client through the underlying writer's ReadFrom when it has
// one (large writes, sendfile or splice to the socket), counting the bytes.
func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := r.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(writerOnly{r.ResponseWriter}, src)
	}
	r.bytes += n
	return n, err
}

// hijacked records the status and body size of a response written on the connection
// after it was taken over (see writeWithReason).
func (r *recorder) hijacked(status int, bytes int64) {
	if r.status == 0 {
		r.status = status
	}
	r.bytes += bytes
}

// Unwrap lets http.ResponseController reach Flush and deadlines underneath.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

type pushedKey struct{}

// pushed is a manifest the client is pushing, carried to the response hook.
type pushed struct {
	body   []byte
	digest string
}

func withPushed(ctx context.Context, body []byte, dgst string) context.Context {
	return context.WithValue(ctx, pushedKey{}, pushed{body: body, digest: dgst})
}

func pushedFrom(ctx context.Context) (pushed, bool) {
	p, ok := ctx.Value(pushedKey{}).(pushed)
	return p, ok
}
