package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

func noopTracerProvider() trace.TracerProvider { return tracenoop.NewTracerProvider() }
func noopMeterProvider() metric.MeterProvider  { return metricnoop.NewMeterProvider() }

// secondsBuckets suit latencies from a millisecond to a minute.
var secondsBuckets = metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

// instruments are the proxy's metrics.
type instruments struct {
	requests      metric.Int64Counter
	duration      metric.Float64Histogram
	bytesOut      metric.Int64Counter
	bytesIn       metric.Int64Counter
	upstreamDur   metric.Float64Histogram
	upstreamError metric.Int64Counter
	hotHits       metric.Int64Counter
}

func newInstruments(mp metric.MeterProvider) (*instruments, error) {
	m := mp.Meter("github.com/portcullis-dev/portcullis/proxy")
	var i instruments
	var err error
	must := func(e error) {
		if err == nil {
			err = e
		}
	}
	var e error
	i.requests, e = m.Int64Counter("portcullis.http.requests", metric.WithDescription("Requests served, by route, method and status."))
	must(e)
	i.duration, e = m.Float64Histogram("portcullis.http.request.duration", metric.WithUnit("s"), metric.WithDescription("Time to serve a request."), secondsBuckets)
	must(e)
	i.bytesOut, e = m.Int64Counter("portcullis.http.response.body.size", metric.WithUnit("By"), metric.WithDescription("Response body bytes sent to clients."))
	must(e)
	i.bytesIn, e = m.Int64Counter("portcullis.http.request.body.size", metric.WithUnit("By"), metric.WithDescription("Request body bytes received from clients (declared length)."))
	must(e)
	i.upstreamDur, e = m.Float64Histogram("portcullis.upstream.duration", metric.WithUnit("s"), metric.WithDescription("Time from sending a request upstream to its response headers."), secondsBuckets)
	must(e)
	i.upstreamError, e = m.Int64Counter("portcullis.upstream.errors", metric.WithDescription("Upstream exchanges that failed without a response."))
	must(e)
	i.hotHits, e = m.Int64Counter("portcullis.manifest.cache.served", metric.WithDescription("Manifest pulls answered from the cache without asking the upstream."))
	must(e)
	return &i, err
}

// finish records the access log line, metrics and span status of one request.
func (p *Proxy) finish(rec *recorder, r *http.Request, route Route, start time.Time, rid string, span trace.Span) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	elapsed := time.Since(start)
	attrs := metric.WithAttributes(
		attribute.String("route", route.Kind.String()),
		attribute.String("method", r.Method),
		attribute.String("status", strconv.Itoa(rec.status)),
	)
	ctx := r.Context()
	p.inst.requests.Add(ctx, 1, attrs)
	p.inst.duration.Record(ctx, elapsed.Seconds(), attrs)
	p.inst.bytesOut.Add(ctx, rec.bytes, attrs)
	if r.ContentLength > 0 {
		p.inst.bytesIn.Add(ctx, r.ContentLength, attrs)
	}
	span.SetAttributes(
		attribute.String("http.request.method", r.Method),
		attribute.Int("http.response.status_code", rec.status),
		attribute.String("oci.repository", route.Name),
		attribute.String("oci.reference", route.Reference),
	)
	if rec.status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(rec.status))
	}
	level := slog.LevelInfo
	if rec.status >= 500 {
		level = slog.LevelWarn
	}
	p.log.LogAttrs(ctx, level, "request",
		slog.String("request_id", rid),
		slog.String("method", r.Method),
		slog.String("proto", r.Proto),
		slog.String("path", r.URL.Path),
		slog.String("route", route.Kind.String()),
		slog.String("repository", route.Name),
		slog.Int("status", rec.status),
		slog.Int64("bytes", rec.bytes),
		slog.Duration("duration", elapsed),
		slog.String("client", r.RemoteAddr),
	)
}

// tracingTransport opens a child span and records latency for every upstream call.
type tracingTransport struct {
	next   http.RoundTripper
	tracer trace.Tracer
	inst   *instruments
}

func (t *tracingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	info, _ := requestFrom(req.Context())
	ctx, span := t.tracer.Start(req.Context(), upstreamSpanName(req.Method, info.route), trace.WithSpanKind(trace.SpanKindClient))
	defer span.End()
	start := time.Now()
	resp, err := t.next.RoundTrip(req.WithContext(ctx))
	status := 0
	if err == nil {
		status = resp.StatusCode
	}
	t.inst.observeUpstream(ctx, info.route, req.Method, start, status, err)
	return resp, err
}

// upstreamSpanName names the span of one upstream call.
func upstreamSpanName(method string, route Route) string {
	return "upstream " + method + " " + route.Kind.String()
}

// observeUpstream records one upstream call that started at start on the span in ctx and
// in the metrics: its status, or err when it failed without an answer (status 0).
func (i *instruments) observeUpstream(ctx context.Context, route Route, method string, start time.Time, status int, err error) {
	span := trace.SpanFromContext(ctx)
	label := "error"
	if err == nil {
		label = strconv.Itoa(status)
		span.SetAttributes(attribute.Int("http.response.status_code", status))
	} else {
		span.SetStatus(codes.Error, err.Error())
		i.upstreamError.Add(ctx, 1, metric.WithAttributes(attribute.String("route", route.Kind.String())))
	}
	i.upstreamDur.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(
		attribute.String("route", route.Kind.String()),
		attribute.String("method", method),
		attribute.String("status", label),
	))
}
