package policy

import (
	"strings"
	"testing"
	"time"
)

func TestEnforceFromBoundary(t *testing.T) {
	p := mustParse(t, `
version: 1
exceptionProcess: ask the platform team
rules:
  - {id: no-latest, type: tag, mode: block, enforceFrom: 2026-12-15, forbidden: [latest]}
`)
	in := Input{Action: ActionPush, Repository: "app", Tag: "latest"}
	enforce := time.Date(2026, 12, 15, 0, 0, 0, 0, time.UTC)

	before := p.Evaluate(in, time.Date(2026, 12, 14, 23, 59, 0, 0, time.UTC))
	if before.Verdict != VerdictWarn {
		t.Fatalf("day before: verdict %s, want warn", before.Verdict)
	}
	r := before.Results[0]
	if r.Mode != ModeWarn || r.EnforceFrom == nil || !r.EnforceFrom.Equal(enforce) {
		t.Errorf("day before: %+v", r)
	}
	if !strings.Contains(r.Message(), "(blocking from 2026-12-15)") {
		t.Errorf("day before: message lacks the date: %s", r.Message())
	}

	on := p.Evaluate(in, enforce)
	if on.Verdict != VerdictDeny {
		t.Fatalf("day of: verdict %s, want deny", on.Verdict)
	}
	if r := on.Results[0]; r.Mode != ModeBlock || r.EnforceFrom != nil || strings.Contains(r.Message(), "blocking from") {
		t.Errorf("day of: %+v", r)
	}
	// A time zone does not shift the day: 2026-12-15 01:00 in UTC+2 is
	// still 2026-12-14 in UTC.
	east := time.FixedZone("UTC+2", 2*3600)
	if d := p.Evaluate(in, time.Date(2026, 12, 15, 1, 0, 0, 0, east)); d.Verdict != VerdictWarn {
		t.Errorf("2026-12-15T01:00+02:00: verdict %s, want warn", d.Verdict)
	}
}

func TestObserveUntilBoundary(t *testing.T) {
	p := mustParse(t, `
version: 1
rules:
  - {id: staged, type: tag, mode: block, observeUntil: 2026-12-01, enforceFrom: 2026-12-15, forbidden: [latest]}
  - {id: watched, type: tag, mode: warn, observeUntil: 2026-12-01, forbidden: [latest]}
`)
	in := Input{Action: ActionPush, Repository: "app", Tag: "latest"}
	tests := []struct {
		now            time.Time
		staged, warned Mode
		verdict        Verdict
	}{
		{time.Date(2026, 11, 30, 23, 59, 0, 0, time.UTC), ModeObserve, ModeObserve, VerdictAllow},
		{time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), ModeWarn, ModeWarn, VerdictWarn},
		{time.Date(2026, 12, 14, 23, 59, 0, 0, time.UTC), ModeWarn, ModeWarn, VerdictWarn},
		{time.Date(2026, 12, 15, 0, 0, 0, 0, time.UTC), ModeBlock, ModeWarn, VerdictDeny},
	}
	for _, tt := range tests {
		d := p.Evaluate(in, tt.now)
		if d.Results[0].Mode != tt.staged || d.Results[1].Mode != tt.warned || d.Verdict != tt.verdict {
			t.Errorf("%s: modes %s %s verdict %s, want %s %s %s", tt.now.Format(time.RFC3339),
				d.Results[0].Mode, d.Results[1].Mode, d.Verdict, tt.staged, tt.warned, tt.verdict)
		}
		if d.Verdict == VerdictAllow && len(d.Results) != 2 {
			t.Errorf("observed failures must still be recorded: %+v", d.Results)
		}
	}
}

func TestEffectiveMode(t *testing.T) {
	obs := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	enf := time.Date(2026, 12, 15, 0, 0, 0, 0, time.UTC)
	early, mid, late := obs.Add(-time.Hour), obs.Add(time.Hour), enf.Add(time.Hour)
	var none time.Time
	tests := []struct {
		mode        Mode
		obs, enf    time.Time
		now         time.Time
		want        Mode
		wantPending bool
	}{
		{ModeOff, obs, enf, early, ModeOff, false},
		{ModeOff, none, none, late, ModeOff, false},
		{ModeBlock, none, none, early, ModeBlock, false},
		{ModeBlock, obs, enf, early, ModeObserve, true},
		{ModeBlock, obs, enf, mid, ModeWarn, true},
		{ModeBlock, obs, enf, late, ModeBlock, false},
		{ModeBlock, none, enf, mid, ModeWarn, true},
		{ModeWarn, obs, none, early, ModeObserve, false},
		{ModeWarn, obs, none, mid, ModeWarn, false},
		{ModeObserve, none, none, late, ModeObserve, false},
	}
	for _, tt := range tests {
		got, pending := effectiveMode(tt.mode, tt.obs, tt.enf, tt.now)
		if got != tt.want || (pending != nil) != tt.wantPending {
			t.Errorf("effectiveMode(%s, obs %v, enf %v, %v) = %s, %v", tt.mode, tt.obs, tt.enf, tt.now, got, pending)
		}
	}
}
