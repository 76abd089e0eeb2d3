package gate_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
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
	g.RemindExceptions(context.Background())
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		want float64
	}{
		{"portcullis.exceptions.reminder.checks", 1},
		{"portcullis.decisions", 3},
		{"portcullis.exceptions.applied", 2},
		{"portcullis.exceptions.overdue.matches", 1},
		{"portcullis.exceptions.active", 1},
		{"portcullis.exceptions.expired", 2},
		{"portcullis.exceptions.age.average", 4},
		{"portcullis.exceptions.extensions", 1},
		// EXC-3, expired, matched a pull: overdue; over it and EXC-2 in force, 1 of 2 (EXC-1, expired but matching nothing, does not count).
		{"portcullis.exceptions.overdue.share", 0.5},
	} {
		got, ok := sumOf(rm, c.name)
		if !ok || got != c.want {
			t.Errorf("%s = %v (present %v), want %v", c.name, got, ok, c.want)
		}
	}
}

// attrsOf returns, for each data point of the named metric, its attributes as
// "key=value" joined by commas (keys sorted) and the point's value.
func attrsOf(rm metricdata.ResourceMetrics, name string) map[string]float64 {
	out := map[string]float64{}
	add := func(set attribute.Set, v float64) {
		var kv []string
		for _, a := range set.ToSlice() {
			kv = append(kv, string(a.Key)+"="+a.Value.Emit())
		}
		out[strings.Join(kv, ",")] += v
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					add(p.Attributes, float64(p.Value))
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					add(p.Attributes, float64(p.Value))
				}
			}
		}
	}
	return out
}

func TestExceptionMetricsByServiceAndTeam(t *testing.T) {
	p, err := policy.Parse([]byte(servicesPolicy + `  - id: EXC-3
    scope: {repository: payments/ledger, tag: latest, rules: [no-latest]}
    reason: r
    owner: carol@example.com
    approvedBy: security@example.com
    created: 2026-11-01
    expires: 2026-11-15
    closure: c
  - id: EXC-4
    scope: {repository: team/app, tag: latest, rules: [no-latest]}
    reason: r
    owner: dave@example.com
    approvedBy: security@example.com
    created: 2026-11-20
    expires: 2026-12-04
    closure: c
`))
	if err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) // EXC-1, 2 and 4 active, EXC-3 expired
	g := gate.New(p, nil, &memSink{}, gate.WithClock(func() time.Time { return now }), gate.WithMeterProvider(mp))
	for _, repo := range []string{"payments/api-worker", "payments/api", "team/app"} {
		g.Admit(context.Background(), gate.Request{Action: policy.ActionPull, Repository: repo, Reference: "latest", Digest: digestA})
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		want map[string]float64
	}{
		{"portcullis.exceptions.active", map[string]float64{
			"owner=alice@example.com,repository=payments/api-worker,service=payments-api,team=payments,tier=critical": 1,
			"owner=bob@example.com,repository=payments/**,service=,team=payments,tier=":                               1, // two services of one team
			"owner=dave@example.com,repository=team/app,service=,team=,tier=":                                         1,
		}},
		{"portcullis.exceptions.expired", map[string]float64{"owner=carol@example.com,team=payments": 1}},
		{"portcullis.decisions", map[string]float64{
			"action=pull,environment=dev,team=payments,verdict=allow": 1, // payments/api-worker, excepted
			"action=pull,environment=dev,team=payments,verdict=deny":  1, // payments/api
			"action=pull,environment=dev,team=,verdict=allow":         1, // team/app, excepted
		}},
		{"portcullis.exceptions.applied", map[string]float64{
			"exception=EXC-1,owner=alice@example.com,service=payments-api,team=payments": 1,
			"exception=EXC-4,owner=dave@example.com,service=,team=":                      1,
		}},
	} {
		if got := attrsOf(rm, c.name); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got %v\nwant %v", c.name, got, c.want)
		}
	}
}
