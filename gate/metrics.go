package gate

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/portcullis-dev/portcullis/policy"
)

// WithMeterProvider sets where the gate's metrics go: decisions by verdict and team, and
// the health of exceptions (active per owner, repository, service and team, average age,
// extensions, and how often an expired exception still matches what is pulled).
//
// Service, team and tier labels come from the policy's services, so their values are
// bounded by the policy file; they are "" for repositories no service owns.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(g *Gate) { g.meter = mp }
}

// instruments are the gate's counters; gauges are observed from the policy in force.
type instruments struct {
	decisions metric.Int64Counter
	excepted  metric.Int64Counter
	overdue   metric.Int64Counter
	reminders metric.Int64Counter
	// overdueSeen records, by exception id, when an expired exception last matched a
	// failing result (a time.Time): what the overdue share counts.
	overdueSeen sync.Map
}

// overdueWindow is how recently an expired exception must have matched a request to count
// as overdue in the overdue share.
const overdueWindow = 7 * 24 * time.Hour

// newInstruments registers the gate's metrics with mp.
func (g *Gate) newInstruments(mp metric.MeterProvider) error {
	m := mp.Meter("github.com/portcullis-dev/portcullis/gate")
	var err error
	if g.inst.decisions, err = m.Int64Counter("portcullis.decisions", metric.WithDescription("Admission decisions, by action, environment, verdict and owning team.")); err != nil {
		return err
	}
	if g.inst.excepted, err = m.Int64Counter("portcullis.exceptions.applied", metric.WithDescription("Failing results covered by an exception in force, by exception, owner, and the service and team owning the repository.")); err != nil {
		return err
	}
	if g.inst.overdue, err = m.Int64Counter("portcullis.exceptions.overdue.matches", metric.WithDescription("Failing results an expired exception would have covered, by exception, owner, and the service and team owning the repository: overdue exceptions still matching what is pulled or pushed.")); err != nil {
		return err
	}
	if g.inst.reminders, err = m.Int64Counter("portcullis.exceptions.reminder.checks", metric.WithDescription("Checks for exceptions inside their reminder window (each sends the day's exception.expiring events not sent yet).")); err != nil {
		return err
	}
	share, err := m.Float64ObservableGauge("portcullis.exceptions.overdue.share", metric.WithDescription("Share of exceptions that are overdue: expired but matched by a request in the last 7 days on this replica, over those plus the exceptions in force."))
	if err != nil {
		return err
	}
	active, err := m.Int64ObservableGauge("portcullis.exceptions.active", metric.WithDescription("Exceptions in force, by owner, repository scope, and the service, team and tier owning that scope."))
	if err != nil {
		return err
	}
	expired, err := m.Int64ObservableGauge("portcullis.exceptions.expired", metric.WithDescription("Exceptions still in the policy but expired, by owner and the team owning their scope."))
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
		type key struct{ owner, repo, service, team, tier string }
		type expKey struct{ owner, team string }
		act, exp := map[key]int64{}, map[expKey]int64{}
		var ages, n, ext, overdue int64
		for _, e := range g.policy.Load().Exceptions() {
			st := e.Status(now)
			if st.State == policy.ExceptionExpired {
				if seen, ok := g.inst.overdueSeen.Load(e.ID); ok && now.Sub(seen.(time.Time)) < overdueWindow {
					overdue++
				}
			}
			service, team, tier := scopeLabels(e)
			switch st.State {
			case policy.ExceptionActive:
				act[key{e.Owner, e.Scope.Repository, service, team, tier}]++
				ages += int64(st.AgeDays)
				n++
			case policy.ExceptionExpired:
				exp[expKey{e.Owner, team}]++
			}
			if e.Extends != "" {
				ext++
			}
		}
		for k, v := range act {
			o.ObserveInt64(active, v, metric.WithAttributes(attribute.String("owner", k.owner), attribute.String("repository", k.repo),
				attribute.String("service", k.service), attribute.String("team", k.team), attribute.String("tier", k.tier)))
		}
		for k, v := range exp {
			o.ObserveInt64(expired, v, metric.WithAttributes(attribute.String("owner", k.owner), attribute.String("team", k.team)))
		}
		if n > 0 {
			o.ObserveFloat64(age, float64(ages)/float64(n))
		}
		o.ObserveInt64(extended, ext)
		if n+overdue > 0 {
			o.ObserveFloat64(share, float64(overdue)/float64(n+overdue))
		}
		return nil
	}, active, expired, age, extended, share)
	return err
}

// count records a decision in the metrics.
func (g *Gate) count(ctx context.Context, action policy.Action, res Result) {
	if g.inst.decisions == nil {
		return
	}
	var service, team string
	if sv := res.Decision.Service; sv != nil {
		service, team = sv.Name, sv.Team
	}
	g.inst.decisions.Add(ctx, 1, metric.WithAttributes(attribute.String("action", string(action)),
		attribute.String("environment", res.Decision.Environment), attribute.String("verdict", string(res.Verdict)),
		attribute.String("team", team)))
	for _, r := range res.Decision.Results {
		if a := r.AppliedException; a != nil {
			g.inst.excepted.Add(ctx, 1, metric.WithAttributes(attribute.String("exception", a.ID), attribute.String("owner", a.Owner),
				attribute.String("service", service), attribute.String("team", team)))
		}
		if a := r.ExpiredException; a != nil {
			g.inst.overdueSeen.Store(a.ID, g.now())
			g.inst.overdue.Add(ctx, 1, metric.WithAttributes(attribute.String("exception", a.ID), attribute.String("owner", a.Owner),
				attribute.String("service", service), attribute.String("team", team)))
		}
	}
}

// scopeLabels are the service, team and tier labels of an exception: those of the one
// service that owns its scope; for a glob reaching several services, only the team, when
// they share one; "" for what no service owns.
func scopeLabels(e policy.Exception) (service, team, tier string) {
	switch len(e.Services) {
	case 0:
		return "", "", ""
	case 1:
		s := e.Services[0]
		return s.Name, s.Team, s.Tier
	}
	team = e.Services[0].Team
	for _, s := range e.Services[1:] {
		if s.Team != team {
			return "", "", ""
		}
	}
	return "", team, ""
}
