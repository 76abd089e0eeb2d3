package gate

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/portcullis-dev/portcullis/policy"
)

// WithMeterProvider sets where the gate's metrics go: decisions by verdict, and the health
// of exceptions (active per owner and repository, average age, extensions, and how often
// an expired exception still matches what is pulled).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(g *Gate) { g.meter = mp }
}

// instruments are the gate's counters; gauges are observed from the policy in force.
type instruments struct {
	decisions metric.Int64Counter
	excepted  metric.Int64Counter
	overdue   metric.Int64Counter
}

// newInstruments registers the gate's metrics with mp.
func (g *Gate) newInstruments(mp metric.MeterProvider) error {
	m := mp.Meter("github.com/portcullis-dev/portcullis/gate")
	var err error
	if g.inst.decisions, err = m.Int64Counter("portcullis.decisions", metric.WithDescription("Admission decisions, by action, environment and verdict.")); err != nil {
		return err
	}
	if g.inst.excepted, err = m.Int64Counter("portcullis.exceptions.applied", metric.WithDescription("Failing results covered by an exception in force, by exception and owner.")); err != nil {
		return err
	}
	if g.inst.overdue, err = m.Int64Counter("portcullis.exceptions.overdue.matches", metric.WithDescription("Failing results an expired exception would have covered, by exception and owner: overdue exceptions still matching what is pulled or pushed.")); err != nil {
		return err
	}
	active, err := m.Int64ObservableGauge("portcullis.exceptions.active", metric.WithDescription("Exceptions in force, by owner and repository scope."))
	if err != nil {
		return err
	}
	expired, err := m.Int64ObservableGauge("portcullis.exceptions.expired", metric.WithDescription("Exceptions still in the policy but expired, by owner."))
	if err != nil {
		return err
	}
	age, err := m.Float64ObservableGauge("portcullis.exceptions.age.average", metric.WithUnit("d"), metric.WithDescription("Average age in days of the exceptions in force."))
	if err != nil {
		return err
	}
	extended, err := m.Int64ObservableGauge("portcullis.exceptions.extensions", metric.WithDescription("Exceptions that extend an earlier one."))
	if err != nil {
		return err
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		now := g.now()
		type key struct{ owner, repo string }
		act, exp := map[key]int64{}, map[string]int64{}
		var ages, n, ext int64
		for _, e := range g.policy.Load().Exceptions() {
			st := e.Status(now)
			switch st.State {
			case policy.ExceptionActive:
				act[key{e.Owner, e.Scope.Repository}]++
				ages += int64(st.AgeDays)
				n++
			case policy.ExceptionExpired:
				exp[e.Owner]++
			}
			if e.Extends != "" {
				ext++
			}
		}
		for k, v := range act {
			o.ObserveInt64(active, v, metric.WithAttributes(attribute.String("owner", k.owner), attribute.String("repository", k.repo)))
		}
		for owner, v := range exp {
			o.ObserveInt64(expired, v, metric.WithAttributes(attribute.String("owner", owner)))
		}
		if n > 0 {
			o.ObserveFloat64(age, float64(ages)/float64(n))
		}
		o.ObserveInt64(extended, ext)
		return nil
	}, active, expired, age, extended)
	return err
}

// count records a decision in the metrics.
func (g *Gate) count(ctx context.Context, action policy.Action, res Result) {
	if g.inst.decisions == nil {
		return
	}
	g.inst.decisions.Add(ctx, 1, metric.WithAttributes(attribute.String("action", string(action)),
		attribute.String("environment", res.Decision.Environment), attribute.String("verdict", string(res.Verdict))))
	for _, r := range res.Decision.Results {
		if a := r.AppliedException; a != nil {
			g.inst.excepted.Add(ctx, 1, metric.WithAttributes(attribute.String("exception", a.ID), attribute.String("owner", a.Owner)))
		}
		if a := r.ExpiredException; a != nil {
			g.inst.overdue.Add(ctx, 1, metric.WithAttributes(attribute.String("exception", a.ID), attribute.String("owner", a.Owner)))
		}
	}
}
