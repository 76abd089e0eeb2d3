package policy

import "time"

// Deadline is the last chance to fix a vulnerability finding an image inherited from its
// baseline: a rule with new: true and a remediation window for its severity warns about it
// until Due, and blocks from that day.
type Deadline struct {
	// Rule is the vulnerability rule whose window it is.
	Rule string `json:"rule"`
	// ID, Package, Version and Severity name the finding.
	ID       string `json:"id"`
	Package  string `json:"package"`
	Version  string `json:"version,omitempty"`
	Severity string `json:"severity"`
	// FirstSeen is the day the repository first showed it; the window counts from it.
	// Zero when unknown (the window then counts from today).
	FirstSeen time.Time `json:"firstSeen,omitzero"`
	// WindowDays is the rule's remediation window for the severity.
	WindowDays int `json:"windowDays"`
	// Due is the first day the finding blocks (midnight UTC).
	Due time.Time `json:"due"`
	// DaysLeft is how many days are left before Due; 0 or less once it blocks.
	DaysLeft int `json:"daysLeft"`
}

// Deadlines lists, for the vulnerability rules of dec that judge new findings and have
// remediation windows, the deadline of each inherited finding of ev they count, at now.
// Findings an exception covers are listed too: the exception ends, the window does not.
func (p *Policy) Deadlines(dec Decision, ev *VulnerabilityEvidence, now time.Time) []Deadline {
	if ev == nil || ev.Index || ev.Baseline == nil {
		return nil
	}
	var out []Deadline
	seen := map[string]bool{} // a rule may have two results: its findings and those in their window
	for _, r := range dec.Results {
		if r.Type != TypeVulnerability || r.Outcome == OutcomeExempt || r.Outcome == OutcomeInert || seen[r.Rule] {
			continue
		}
		seen[r.Rule] = true
		ru := p.ruleByID(r.Rule)
		if ru == nil || !ru.New || len(ru.Remediation) == 0 {
			continue
		}
		for _, f := range ev.Findings {
			if !f.Inherited || !ru.counts(f) {
				continue
			}
			sev := f.Severity
			if vulnLevel(sev) < 2 {
				sev = SeverityUnknown
			}
			days, ok := ru.Remediation[sev]
			if !ok {
				continue
			}
			first := f.FirstSeen
			if first.IsZero() {
				first = now
			}
			due := dayOf(first).AddDate(0, 0, days)
			d := Deadline{Rule: r.Rule, ID: f.ID, Package: f.Package, Version: f.Version, Severity: sev,
				WindowDays: days, Due: due, DaysLeft: daysBetween(dayOf(now), due)}
			if !f.FirstSeen.IsZero() {
				d.FirstSeen = dayOf(f.FirstSeen)
			}
			out = append(out, d)
		}
	}
	return out
}

// ruleByID returns the rule with id, nil when there is none.
func (p *Policy) ruleByID(id string) *rule {
	for i := range p.rules {
		if p.rules[i].ID == id {
			return &p.rules[i]
		}
	}
	return nil
}
