package gate_test

import (
	"context"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/policy"
)

func sumOf(rm metricdata.ResourceMetrics, name string) (float64, bool) {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			var total float64
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					total += float64(p.Value)
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					total += float64(p.Value)
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					total += p.Value
				}
			}
			return total, true
		}
	}
	return 0, false
}

func TestExceptionHealthMetrics(t *testing.T) {
	p, err := policy.Parse([]byte(testPolicy + `exceptions:
  - id: EXC-1
    scope: {repository: team/app, tag: latest, rules: [no-latest]}
    reason: r
    owner: team-a@example.com
    approvedBy: security@example.com
    created: 2026-11-20
    expires: 2026-11-30
    closure: c
  - id: EXC-2
    extends: EXC-1
    scope: {repository: team/app, tag: latest, rules: [no-latest]}
    reason: r
    owner: team-a@example.com
    approvedBy: security@example.com
    created: 2026-11-28
    expires: 2026-12-10
    closure: c
  - id: EXC-3
    scope: {repository: team/old, tag: latest, rules: [no-latest]}
    reason: r
    owner: team-b@example.com
    approvedBy: security@example.com
    created: 2026-11-01
    expires: 2026-11-15
    closure: c
`))
	if err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC) // EXC-2 active (age 4 days), EXC-1 and EXC-3 expired
	g := gate.New(p, nil, &memSink{}, gate.WithClock(func() time.Time { return now }), gate.WithMeterProvider(mp))
	pullLatest := func(repo string) {
		g.Admit(context.Background(), gate.Request{Action: policy.ActionPull, Repository: repo, Reference: "latest", Digest: "sha256:" + "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a"})
	}
	pullLatest("team/app") // covered by EXC-2
	pullLatest("team/app")
	pullLatest("team/old") // EXC-3 expired: overdue but still matching
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		want float64
	}{
		{"portcullis.decisions", 3},
		{"portcullis.exceptions.applied", 2},
		{"portcullis.exceptions.overdue.matches", 1},
		{"portcullis.exceptions.active", 1},
		{"portcullis.exceptions.expired", 2},
		{"portcullis.exceptions.age.average", 4},
		{"portcullis.exceptions.extensions", 1},
	} {
		got, ok := sumOf(rm, c.name)
		if !ok || got != c.want {
			t.Errorf("%s = %v (present %v), want %v", c.name, got, ok, c.want)
		}
	}
}
