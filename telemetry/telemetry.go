package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// Telemetry holds the providers the gateway's packages record to.
type Telemetry struct {
	// Tracer receives spans; a no-op unless an OTLP endpoint is configured.
	Tracer trace.TracerProvider
	// Meter receives metrics, exported at Metrics.
	Meter metric.MeterProvider
	// Metrics serves the Prometheus text format.
	Metrics  http.Handler
	shutdown []func(context.Context) error
}

// Setup builds the providers. otlpEndpoint (or OTEL_EXPORTER_OTLP_ENDPOINT) enables trace
// export over OTLP/HTTP; metrics are always served for Prometheus.
func Setup(ctx context.Context, version, otlpEndpoint string) (*Telemetry, error) {
	res := resource.NewSchemaless(semconv.ServiceName("portcullis"), semconv.ServiceVersion(version))
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res))
	t := &Telemetry{
		Meter:    mp,
		Metrics:  promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		Tracer:   tracenoop.NewTracerProvider(),
		shutdown: []func(context.Context) error{mp.Shutdown},
	}
	if otlpEndpoint == "" {
		otlpEndpoint = os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	}
	if otlpEndpoint != "" {
		te, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(otlpEndpoint))
		if err != nil {
			return nil, fmt.Errorf("otlp trace exporter: %w", err)
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(te), sdktrace.WithResource(res))
		t.Tracer = tp
		t.shutdown = append(t.shutdown, tp.Shutdown)
	}
	return t, nil
}

// Shutdown flushes and stops the providers.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	for _, f := range t.shutdown {
		errs = append(errs, f(ctx))
	}
	return errors.Join(errs...)
}
