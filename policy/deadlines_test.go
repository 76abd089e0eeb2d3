package policy

import (
	"testing"
	"time"
)

func TestDeadlines(t *testing.T) {
	p := vulnPolicy(t, "severity: high, new: true, remediation: {critical: 7d, high: 30d}")
	first := time.Date(2026, 5, 28, 23, 0, 0, 0, time.UTC) // the window counts from its day
	ev := &VulnerabilityEvidence{Baseline: baseImage, Findings: []VulnerabilityFinding{
		inheritedSince(openssl, first), // critical: 7 days from 2026-05-28
		goText,                         // new: blocks now, no deadline
		inheritedSince(medium, first),  // below the rule's severity: not counted
	}}
	d := p.Evaluate(Input{Action: ActionPush, Repository: "team/app", Tag: "1.1.0", Digest: digestA, Vulnerabilities: ev}, today)
	got := p.Deadlines(d, ev, today)
	want := Deadline{Rule: "r", ID: "CVE-2024-5535", Package: "openssl", Version: openssl.Version, Severity: "critical",
		FirstSeen: time.Date(2026, 5, 28, 0, 0, 0, 0, time.UTC), WindowDays: 7,
		Due: time.Date(2026, 6, 4, 0, 0, 0, 0, time.UTC), DaysLeft: 3}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("deadlines = %+v\nwant [%+v]", got, want)
	}

	// Overdue: no days left; unknown first sighting counts from today.
	later := time.Date(2026, 6, 10, 0, 0, 0, 0, time.UTC)
	if got := p.Deadlines(d, ev, later); len(got) != 1 || got[0].DaysLeft != -6 {
		t.Errorf("overdue: %+v", got)
	}
	unknown := &VulnerabilityEvidence{Baseline: baseImage, Findings: []VulnerabilityFinding{inheritedSince(openssl, time.Time{})}}
	if got := p.Deadlines(d, unknown, today); len(got) != 1 || !got[0].FirstSeen.IsZero() || got[0].DaysLeft != 7 {
		t.Errorf("unknown first sighting: %+v", got)
	}

	// No baseline (every finding is new), no window, no evidence: no deadlines.
	for name, tc := range map[string]struct {
		p  *Policy
		ev *VulnerabilityEvidence
	}{
		"no baseline": {p, &VulnerabilityEvidence{Findings: ev.Findings}},
		"no window":   {vulnPolicy(t, "severity: high, new: true"), ev},
		"no evidence": {p, nil},
	} {
		d := tc.p.Evaluate(Input{Action: ActionPush, Repository: "team/app", Tag: "1.1.0", Digest: digestA, Vulnerabilities: tc.ev}, today)
		if got := tc.p.Deadlines(d, tc.ev, today); len(got) != 0 {
			t.Errorf("%s: deadlines %+v", name, got)
		}
	}
}
