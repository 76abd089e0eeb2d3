package proxy_test

import (
	"net/http"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/proxy"
)

func TestSpanPerRequestWithChildPerUpstreamCall(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	base := regtest.Gateway(t, regtest.Registry(t), proxy.WithTracerProvider(tp)).URL
	resp, err := http.Get(base + "/v2/team/app/tags/list")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var server, client []string
	var serverSpan trace.SpanContext
	for _, s := range rec.Ended() {
		switch s.SpanKind() {
		case trace.SpanKindServer:
			server = append(server, s.Name())
			serverSpan = s.SpanContext()
		case trace.SpanKindClient:
			client = append(client, s.Name())
		}
	}
	if len(server) != 1 || !strings.Contains(server[0], "tags") {
		t.Fatalf("server spans %q, want one for the tags request", server)
	}
	if len(client) != 1 || !strings.Contains(client[0], "upstream GET") {
		t.Fatalf("client spans %q, want one upstream call", client)
	}
	for _, s := range rec.Ended() {
		if s.SpanKind() == trace.SpanKindClient && s.Parent().SpanID() != serverSpan.SpanID() {
			t.Fatalf("upstream span's parent %s, want the request span %s", s.Parent().SpanID(), serverSpan.SpanID())
		}
	}
}
