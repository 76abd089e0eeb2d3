package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/portcullis-dev/portcullis/policy"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// DefaultMaxManifestBytes is the manifest size cap when none is configured.
const DefaultMaxManifestBytes = 4 << 20

// copyBufferSize is the size of the buffers bodies stream through. One is held per body
// in flight, so it bounds memory in a rollout: 200 nodes pulling 3 layers each are 600
// buffers (scripts/bench --large measured a peak RSS of 282 MB with 256 KiB, 134 MB with
// 64 KiB and the upstream read buffer at its default; docs/BENCHMARKS.md).
const copyBufferSize = 64 << 10

// Proxy serves the OCI /v2/ API by streaming every request through to the upstream
// registry, checking the integrity of the manifests it serves.
type Proxy struct {
	upstream    *url.URL
	rp          *httputil.ReverseProxy
	rw          rewriter
	maxManifest int64
	log         *slog.Logger
	tracer      trace.Tracer
	inst        *instruments
	service     ServiceAccount
	gate        Gate
	refs        referrers
	cache       Cache
	tee         UploadTee
	pull        PullThrough
	inProcess   http.Handler
	splice      *spliceFetcher // nil: blob GETs go through the reverse proxy
	// scanCreds and scanTransport serve scanner adapters' pulls (see WithScanCredentials).
	scanCreds     ScanCredentials
	scanTransport http.RoundTripper
	// tagLocks serialise the pushes of one tag in this process (see lockTag).
	tagLocks keyedMutex
}

// ServiceAccount is the gateway's own upstream identity, used for its reads and never for
// a client's request.
type ServiceAccount struct {
	Username string
	Password string
}

// Option sets an optional Proxy setting.
type Option func(*settings)

type settings struct {
	log         *slog.Logger
	maxManifest int64
	tp          trace.TracerProvider
	mp          metric.MeterProvider
	service     ServiceAccount
	gate        Gate
	cache       Cache
	tee         UploadTee
	pull        PullThrough
	inProcess   http.Handler
	noSplice    bool
	// scanCreds and scanTransport: see WithScanCredentials.
	scanCreds     ScanCredentials
	scanTransport http.RoundTripper
	// spliceReadBuffer sets the zero-copy path's receive buffer (benchmarks only; 0
	// leaves the kernel's).
	spliceReadBuffer int
}

// WithServiceAccount sets the gateway's own upstream credential.
func WithServiceAccount(sa ServiceAccount) Option { return func(s *settings) { s.service = sa } }

// WithLogger sets the logger for access and error logs.
func WithLogger(l *slog.Logger) Option { return func(s *settings) { s.log = l } }

// WithMaxManifestBytes caps manifest bodies in both directions.
func WithMaxManifestBytes(n int64) Option { return func(s *settings) { s.maxManifest = n } }

// WithTracerProvider sets where request and upstream spans go.
func WithTracerProvider(tp trace.TracerProvider) Option { return func(s *settings) { s.tp = tp } }

// WithMeterProvider sets where request metrics go.
func WithMeterProvider(mp metric.MeterProvider) Option { return func(s *settings) { s.mp = mp } }

// New returns a Proxy in front of the registry at upstream (a base URL), reaching it
// through transport (see NewTransport).
func New(upstream string, transport http.RoundTripper, opts ...Option) (*Proxy, error) {
	u, err := url.Parse(upstream)
	if err != nil {
		return nil, fmt.Errorf("upstream URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("upstream URL %q: want http(s)://host[:port][/path]", upstream)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	s := settings{log: slog.Default(), maxManifest: DefaultMaxManifestBytes, tp: noopTracerProvider(), mp: noopMeterProvider()}
	for _, o := range opts {
		o(&s)
	}
	inst, err := newInstruments(s.mp)
	if err != nil {
		return nil, err
	}
	p := &Proxy{
		upstream:    u,
		rw:          rewriter{upstream: u},
		maxManifest: s.maxManifest,
		log:         s.log,
		tracer:      s.tp.Tracer("github.com/portcullis-dev/portcullis/proxy"),
		inst:        inst,
		service:     s.service,
		gate:        s.gate,
		cache:       s.cache,
		tee:         s.tee,
		pull:        s.pull,
		inProcess:   s.inProcess,
	}
	if s.scanCreds != nil && s.scanTransport != nil {
		p.scanCreds = s.scanCreds
		p.scanTransport = &tracingTransport{next: s.scanTransport, tracer: p.tracer, inst: inst}
	}
	if !s.noSplice && s.inProcess == nil {
		p.splice = newSpliceFetcher(u, transport)
		if p.splice != nil {
			p.splice.readBuffer = s.spliceReadBuffer
		}
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      &tracingTransport{next: transport, tracer: p.tracer, inst: inst},
		BufferPool:     bufferPool{},
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.errorHandler,
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	return p, nil
}

// ServeHTTP routes one /v2/ request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rid := requestID(r)
	w.Header().Set("X-Request-Id", rid)
	r = p.mapNamespace(r)
	route, perr := ParseRoute(r.URL.Path)
	ctx, span := p.tracer.Start(r.Context(), "portcullis "+r.Method+" "+route.Kind.String(), trace.WithSpanKind(trace.SpanKindServer))
	defer span.End()
	ctx = withRequest(ctx, requestInfo{id: rid, route: route, host: r.Host, method: r.Method, ifNoneMatch: r.Header.Get("If-None-Match")})
	r = r.WithContext(ctx)
	rec := &recorder{ResponseWriter: w}
	defer func() { p.finish(rec, r, route, start, rid, span) }()

	if perr != nil {
		writeError(rec, r, perr)
		return
	}
	if p.serveScanPull(rec, r, route) {
		return
	}
	if p.pull != nil && (p.refuseWrite(rec, r, route) ||
		route.Kind == KindManifest && (r.Method == http.MethodGet || r.Method == http.MethodHead) && !p.ensurePulled(rec, r, route)) {
		return
	}
	switch {
	case route.Kind == KindManifest && (r.Method == http.MethodGet || r.Method == http.MethodHead) && p.serveCached(rec, r, route):
		return
	case route.Kind == KindReferrers && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		p.serveReferrers(rec, r, route)
		return
	case route.Kind == KindManifest && r.Method == http.MethodPut:
		// Check-and-forward of a tag is one step across replicas: the lock is held until
		// the upstream has answered and the tag's first digest is recorded.
		unlock, err := p.lockTag(r, route)
		if err != nil {
			writeError(rec, r, err)
			return
		}
		defer unlock()
		body, dgst, err := p.bufferManifest(r, route)
		if err == nil {
			err = p.admit(r, policy.ActionPush, route, dgst, body, rec.Header())
		}
		if err != nil {
			writeError(rec, r, err)
			return
		}
		r = r.WithContext(withPushed(r.Context(), body, dgst))
		if head, subject := subjectOf(body); subject != "" {
			r = r.WithContext(withReferrer(r.Context(), &referrerState{repo: route.Name, digest: dgst,
				contentType: r.Header.Get("Content-Type"), subject: subject, body: body, head: head}))
		}
	case route.Kind == KindManifest && r.Method == http.MethodDelete:
		// Deletes are decisions: audited always, refused where tags are immutable.
		dgst := ""
		if route.IsDigest() {
			dgst = route.Reference
		}
		if err := p.admit(r, policy.ActionDelete, route, dgst, nil, rec.Header()); err != nil {
			writeError(rec, r, err)
			return
		}
		if route.IsDigest() && !p.refs.native() {
			if st := p.prepareReferrerChange(r, route); st != nil {
				r = r.WithContext(withReferrer(r.Context(), st))
			}
		}
	}
	if p.tee != nil {
		r = p.teeUpload(r, route)
	}
	if p.servedInProcess(route) {
		p.serveInProcess(rec, r)
		return
	}
	if p.splices(route, r) {
		p.serveSpliced(rec, r)
		return
	}
	p.rp.ServeHTTP(rec, r)
}

// rewrite points the outgoing request at the upstream, keeping the path's escaping and
// the query string byte for byte. The client's Authorization travels with it.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	in, out := pr.In, pr.Out
	out.URL.Scheme = p.upstream.Scheme
	out.URL.Host = p.upstream.Host
	out.URL.Path = p.upstream.Path + in.URL.Path
	out.URL.RawPath = ""
	if in.URL.RawPath != "" {
		out.URL.RawPath = p.upstream.EscapedPath() + in.URL.RawPath
	}
	out.URL.RawQuery = in.URL.RawQuery
	out.Host = ""
	if info, ok := requestFrom(in.Context()); ok && info.route.Kind == KindManifest && (in.Method == http.MethodGet || in.Method == http.MethodHead) {
		// The gateway decides on the bytes themselves: a HEAD is asked as a GET, and no
		// conditional or partial request may let the upstream answer without them.
		out.Method = http.MethodGet
		stripConditional(out.Header)
	}
	if host, _, err := net.SplitHostPort(in.RemoteAddr); err == nil {
		out.Header.Set("X-Forwarded-For", host)
	}
	if info, ok := requestFrom(in.Context()); ok {
		out.Header.Set("X-Request-Id", info.id)
	}
}

// modifyResponse rewrites upstream URLs and checks manifests before they are served.
func (p *Proxy) modifyResponse(resp *http.Response) error {
	p.rw.headers(resp.Header, resp.Request.URL)
	info, _ := requestFrom(resp.Request.Context())
	if p.tee != nil && (info.route.Kind == KindUpload || info.route.Kind == KindUploadStart) {
		p.teeEnd(resp, info.route, doorHost(resp.Request))
	}
	if info.route.Kind == KindBlob && resp.StatusCode >= 200 && resp.StatusCode < 300 {
		// Blobs stream unjudged, so one must never pass for a manifest: containerd resolves
		// a reference by digest through /blobs/ when /manifests/ refuses, and takes the
		// Content-Type as the media type of what it fetched.
		resp.Header.Set("Content-Type", "application/octet-stream")
	}
	if info.route.Kind == KindManifest && resp.Request.Method == http.MethodDelete && resp.StatusCode == http.StatusAccepted {
		p.forget(resp.Request, info.route.Name)
	}
	if pushed, ok := pushedFrom(resp.Request.Context()); ok && resp.StatusCode == http.StatusCreated {
		p.remember(resp.Request, info.route, pushed.digest, resp.Request.Header.Get("Content-Type"), pushed.body, false)
		if p.gate != nil && !info.route.IsDigest() {
			p.gate.TagStored(resp.Request.Context(), info.route.Name, info.route.Reference, pushed.digest)
		}
	}
	if st := referrerFrom(resp.Request.Context()); st != nil &&
		(resp.StatusCode == http.StatusCreated && !st.remove || resp.StatusCode == http.StatusAccepted && st.remove) {
		p.afterReferrerChange(resp, st)
	}
	if info.route.Kind == KindManifest && resp.StatusCode == http.StatusOK && resp.Request.Method == http.MethodGet {
		// A GET, or a client's HEAD asked as a GET: the same bytes, the same decision.
		body, err := p.verifyManifest(resp, info.route)
		if err != nil {
			return err
		}
		dgst := resp.Header.Get("Docker-Content-Digest")
		if err := p.admit(resp.Request, policy.ActionPull, info.route, dgst, body, resp.Header); err != nil {
			return err
		}
		p.remember(resp.Request, info.route, dgst, resp.Header.Get("Content-Type"), body, true)
		switch {
		case etagMatches(info.ifNoneMatch, dgst):
			notModified(resp)
		case info.method == http.MethodHead:
			resp.Body = http.NoBody // Content-Length stays: a HEAD says how long the GET would be
		}
		return nil
	}
	return nil
}

// errorHandler turns a failed upstream exchange into an OCI error: 503 for an upstream
// that cannot be reached or does not answer in time, the error's own status for *Error.
func (p *Proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	teeFailed(r)
	var e *Error
	switch {
	case errors.As(err, &e):
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody is listening for an answer.
		w.WriteHeader(499)
		return
	default:
		e = upstreamError(p.upstream.Host, err)
	}
	var refused *gateRefusal
	if e.Status >= 500 && !errors.As(err, &refused) {
		// Refusals (a policy denial, an auth challenge) are in the access log already, and
		// the gate's "could not decide" where it was made: neither is the upstream's fault.
		p.log.LogAttrs(r.Context(), slog.LevelWarn, "upstream error",
			slog.String("request_id", requestIDFrom(r.Context())), slog.String("error", err.Error()))
	}
	writeError(w, r, e)
}

// upstreamError describes a transport failure to the client, with a reason phrase for
// clients that print only the status line (docker and containerd do for a 503).
func upstreamError(host string, err error) *Error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		e := errorf(http.StatusServiceUnavailable, CodeUnavailable,
			"upstream registry %s did not answer in time; retry later", host)
		e.Reason = "upstream registry did not answer in time; retry later"
		return e
	}
	e := errorf(http.StatusServiceUnavailable, CodeUnavailable,
		"upstream registry %s is unreachable: %v", host, err)
	e.Reason = "upstream registry unreachable; retry later"
	return e
}

// bufferPool lends large copy buffers to the reverse proxy.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}

func (bufferPool) Get() []byte  { return *(buffers.Get().(*[]byte)) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }
