package gate_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/policy"
)

// TestQueryDecidesLikeAdmitAndActsOnNothing: a query gets the decision a pull would, is
// audited as a query, and the admission metrics do not count it.
func TestQueryDecidesLikeAdmitAndActsOnNothing(t *testing.T) {
	p, err := policy.Parse([]byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	sink := &memSink{}
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	g := gate.New(p, nil, sink, gate.WithClock(func() time.Time { return now }),
		gate.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
	dgst := "sha256:" + "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a"
	for _, tc := range []struct {
		repo, ref string
		verdict   policy.Verdict
	}{{"team/app", "latest", policy.VerdictDeny}, {"prod/app", "main", policy.VerdictWarn}, {"prod/app", "1.0.0", policy.VerdictAllow}} {
		req := gate.Request{Action: policy.ActionPull, Repository: tc.repo, Reference: tc.ref, Digest: dgst, RequestID: tc.ref}
		admitted, queried := g.Admit(context.Background(), req), g.Query(context.Background(), req)
		if queried.Verdict != tc.verdict || queried.Verdict != admitted.Verdict || queried.Message != admitted.Message ||
			!reflect.DeepEqual(queried.Decision, admitted.Decision) || !reflect.DeepEqual(queried.Warnings, admitted.Warnings) {
			t.Errorf("%s:%s: query %+v\nadmit %+v", tc.repo, tc.ref, queried, admitted)
		}
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	if got, _ := sumOf(rm, "portcullis.decisions"); got != 3 {
		t.Errorf("portcullis.decisions = %v, want 3: queries are not admissions", got)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	var types []string
	for _, e := range sink.events {
		types = append(types, e.Type)
	}
	want := []string{audit.TypeDecision, audit.TypeQuery, audit.TypeDecision, audit.TypeQuery, audit.TypeDecision, audit.TypeQuery}
	if !reflect.DeepEqual(types, want) {
		t.Errorf("audit event types %v, want %v", types, want)
	}
	if len(sink.events) == 6 && (sink.events[1].Verdict != "deny" || sink.events[1].Repository != "team/app" || len(sink.events[1].Results) == 0) {
		t.Errorf("query event %+v: it records the whole decision", sink.events[1])
	}
}
