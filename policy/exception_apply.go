package policy

import (
	"fmt"
	"time"
)

// finding identifies one vulnerability finding for exception matching: its
// id and aliases, and the package it is in. Rule-level results (tag,
// immutable and signature rules) have none.
type finding struct {
	ids []string
	pkg string
}

// covers reports whether the exception's scope covers a failure of rule
// ruleID for in; f is the vulnerability finding, nil for a rule-level
// result. An exception listing vulnerabilities or a package covers only
// vulnerability findings with one of those ids (or aliases) in that
// package, so never a rule-level result.
func (e *exception) covers(ruleID string, in Input, f *finding) bool {
	s := &e.Scope
	if len(s.Rules) > 0 && !oneOf(ruleID, s.Rules) {
		return false
	}
	if len(s.Vulnerabilities) > 0 || s.Package != "" {
		if f == nil || (s.Package != "" && f.pkg != s.Package) {
			return false
		}
		if len(s.Vulnerabilities) > 0 {
			hit := false
			for _, id := range f.ids {
				if oneOf(id, s.Vulnerabilities) {
					hit = true
					break
				}
			}
			if !hit {
				return false
			}
		}
	}
	if s.Repository == "" || !e.repo.match(in.Repository) {
		return false
	}
	if s.Tag != "" && s.Tag != in.Tag {
		return false
	}
	if s.Digest != "" && s.Digest != in.Digest {
		return false
	}
	return true
}

// applyExceptions turns a failed result that an exception in force covers
// into an excepted one, naming the exception; when the latest expiry wins
// among several. A failure that only an expired exception covers stays
// failed, and its Fix starts by saying that the exception expired.
func (p *Policy) applyExceptions(res *Result, in Input, now time.Time) {
	if res.Outcome != OutcomeFail || len(p.exceptions) == 0 {
		return
	}
	active, expired := p.coveringExceptions(now, func(e *exception) bool { return e.covers(res.Rule, in, nil) })
	switch {
	case active != nil:
		res.Outcome = OutcomeExcepted
		res.AppliedException = active.applied(now)
	case expired != nil:
		res.ExpiredException = expired.applied(now)
		res.Fix = expired.expiredFix(res.Fix)
	}
}

// expiredFix is the next step for a failure e would have covered had it not
// expired: "EXC-0142 expired on 2026-12-10; extend it or <fix>".
func (e *exception) expiredFix(fix string) string {
	if fix == "" {
		fix = "fix the finding"
	}
	return fmt.Sprintf("%s expired on %s; extend it or %s", e.ID, e.Expires.Format(dateLayout), fix)
}

// findingException returns the exception in force at now that covers
// vulnerability finding f of rule ruleID for in (the one that ends last),
// and, when none does, the expired exception that would have (the one that
// ended last), so the denial can say it expired. Only exceptions narrowed to
// vulnerabilities or a package count here; the others cover the rule's
// result as a whole (applyExceptions).
func (p *Policy) findingException(ruleID string, in Input, f VulnerabilityFinding, now time.Time) (active, expired *exception) {
	fi := &finding{ids: append([]string{f.ID}, f.Aliases...), pkg: f.Package}
	active, expired = p.coveringExceptions(now, func(e *exception) bool {
		return (len(e.Scope.Vulnerabilities) > 0 || e.Scope.Package != "") && e.covers(ruleID, in, fi)
	})
	if active != nil {
		expired = nil
	}
	return active, expired
}

// coveringExceptions returns, among the exceptions for which covers is true, the one in
// force at now that ends last and the expired one that ended last (nil when none).
func (p *Policy) coveringExceptions(now time.Time, covers func(*exception) bool) (active, expired *exception) {
	for i := range p.exceptions {
		e := &p.exceptions[i]
		if !covers(e) {
			continue
		}
		switch {
		case e.inForce(now):
			if active == nil || e.Expires.After(active.Expires) {
				active = e
			}
		case !now.Before(e.end()):
			if expired == nil || e.Expires.After(expired.Expires) {
				expired = e
			}
		}
	}
	return active, expired
}

// applied is the AppliedException naming e at now.
func (e *exception) applied(now time.Time) *AppliedException {
	return &AppliedException{ID: e.ID, Owner: e.Owner, Expires: e.Expires, Ticket: e.Ticket, DaysLeft: e.Status(now).DaysLeft}
}

// Covered says which exception covers a result and until when: "covered
// by exception EXC-0142 (owner team-a@example.com) until 2026-12-04; ends
// in 10 days".
func (a AppliedException) Covered() string {
	ends := fmt.Sprintf("ends in %d days", a.DaysLeft)
	switch a.DaysLeft {
	case 1:
		ends = "ends today"
	case 0:
		ends = "has ended"
	}
	return fmt.Sprintf("covered by exception %s (owner %s) until %s; %s", a.ID, a.Owner, a.Expires.Format(dateLayout), ends)
}

// exceptedMessage is Message for an excepted result.
func (r Result) exceptedMessage() string {
	a := r.AppliedException
	s := "[" + r.Rule + "] " + r.Finding + ": " + a.Covered()
	if a.Ticket != "" {
		s += " (ticket " + a.Ticket + ")"
	}
	if r.Fix != "" {
		s += "; fix before then: " + r.Fix
	}
	return s
}
