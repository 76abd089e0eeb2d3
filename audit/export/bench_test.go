package export

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/audit/spool"
)

// BenchmarkRecordVsJSONLog measures what a SIEM sink adds to the request that records a
// decision, against the JSON audit log every decision is written to already (to
// io.Discard). The receiver never answers, so nothing is delivered: the cost is the
// hand-off alone. Reports "x-jsonlog", the ratio of the two per event.
func BenchmarkRecordVsJSONLog(b *testing.B) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer srv.Close()
	defer close(block)
	ctx := context.Background()
	e := event(1, "deny")
	e.Results = []audit.Result{{Rule: "no-critical", Type: "vulnerability", Mode: "block", Outcome: "fail", Finding: "CVE-2024-6119 in openssl 3.0.13"}}

	log := audit.NewJSONSink(io.Discard)
	start := time.Now()
	for range b.N {
		_ = log.Record(ctx, e)
	}
	base := time.Since(start)

	ce, _ := NewCloudEvents(CloudEventsConfig{URL: srv.URL, Secret: secret, Timeout: time.Hour})
	sp, err := spool.Open(b.TempDir(), 1<<30)
	if err != nil {
		b.Fatal(err)
	}
	sk, err := New("bench", "cloudevents", sp, ce, WithQueue(b.N+1))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start = time.Now()
	for range b.N {
		if err := sk.Record(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
	sinkTime := time.Since(start)
	b.StopTimer()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	sk.Close(cctx)
	b.ReportMetric(float64(sinkTime)/float64(base), "x-jsonlog")
}
