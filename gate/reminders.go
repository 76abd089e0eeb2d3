package gate

import (
	"context"
	"log/slog"
	"time"

	"github.com/portcullis-dev/portcullis/audit"
)

// RemindExceptions records one exception.expiring event for each exception of the policy
// in force that is inside its reminder window today. Replicas sharing the cache take a
// mark per exception and day in the records store, so a fleet sharing it records each
// reminder once a day.
func (g *Gate) RemindExceptions(ctx context.Context) int {
	now := g.now().UTC()
	p := g.policy.Load()
	day := now.Format(time.DateOnly)
	sent := 0
	if g.inst.reminders != nil {
		g.inst.reminders.Add(ctx, 1)
	}
	for _, e := range p.ReminderDue(now) {
		first, err := g.records.MarkReminder(ctx, e.ID, day, now)
		if err != nil {
			g.log.Warn("exception reminder postponed: the records store is unavailable", slog.String("exception", e.ID), slog.String("error", err.Error()))
			continue // the next run tries again
		}
		if !first {
			continue // another replica (or an earlier run today) sent it
		}
		st := e.Status(now)
		ev := audit.Event{
			Time:           now,
			Type:           audit.TypeExceptionExpiring,
			Repository:     e.Scope.Repository,
			PolicyRevision: p.Revision(),
			Exception:      &audit.Exception{ID: e.ID, Owner: e.Owner, Expires: e.Expires.Format(time.DateOnly), Ticket: e.Ticket},
			DaysLeft:       st.DaysLeft,
		}
		if len(e.Services) == 1 {
			sv := e.Services[0]
			ev.Service = &audit.Service{Name: sv.Name, Team: sv.Team, Tier: sv.Tier}
		}
		if err := g.audit.Record(ctx, ev); err != nil {
			g.log.Error("exception reminder not sent; the next run tries again", slog.String("exception", e.ID), slog.String("error", err.Error()))
			if err := g.records.UnmarkReminder(context.WithoutCancel(ctx), e.ID, day); err != nil {
				g.log.Error("exception reminder lost", slog.String("exception", e.ID), slog.String("error", err.Error()))
			}
			continue
		}
		sent++
	}
	return sent
}

// RunReminders calls RemindExceptions now and then every interval until ctx ends.
func (g *Gate) RunReminders(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		g.RemindExceptions(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
