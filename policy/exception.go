package policy

import (
	"sort"
	"time"
)

// Severities an exception may declare for what it covers. The severity
// bounds how long the exception may last (ExceptionRules.MaxDays), and a
// critical exception needs compensating controls.
const (
	SeverityCritical = "critical"
	SeverityHigh     = "high"
	SeverityMedium   = "medium"
	SeverityLow      = "low"
	SeverityUnknown  = "unknown"
)

var severityNames = []string{SeverityCritical, SeverityHigh, SeverityMedium, SeverityLow, SeverityUnknown}

// Exception is a written, owned, time-limited permission for images in its
// scope to fail the rules (or, for vulnerability rules, only the
// vulnerabilities) it names. Dates are midnight UTC; Expires is the last
// day the exception is in force.
type Exception struct {
	// ID names the exception, unique across the policy and its exception files.
	ID string `json:"id"`
	// Scope says what the exception covers.
	Scope ExceptionScope `json:"scope"`
	// Reason says why the exception is needed.
	Reason string `json:"reason"`
	// Owner is who answers for the exception.
	Owner string `json:"owner"`
	// ApprovedBy is who approved it.
	ApprovedBy string `json:"approvedBy"`
	// Created is the first day the exception is in force.
	Created time.Time `json:"created"`
	// Expires is the last day the exception is in force.
	Expires time.Time `json:"expires"`
	// Severity is the severity of what it covers as written, "" when not
	// given (which counts as SeverityUnknown).
	Severity string `json:"severity,omitempty"`
	// CompensatingControls say what limits the risk meanwhile.
	CompensatingControls []string `json:"compensatingControls,omitempty"`
	// Closure says what will end the need for the exception.
	Closure string `json:"closure"`
	// Ticket is the tracking ticket, "" when not given.
	Ticket string `json:"ticket,omitempty"`
	// Extends is the ID of the exception this one prolongs, "" if none.
	Extends string `json:"extends,omitempty"`
	// VEX, when set, is what the exception states about the vulnerabilities
	// it names, for OpenVEX documents (portcullis exceptions vex).
	VEX *ExceptionVEX `json:"vex,omitempty"`
	// Services are the services owning repositories that the scope can
	// match (see Policy.ServicesFor): one for a repository, possibly several
	// for a glob, none when no service owns them.
	Services []ServiceRef `json:"services,omitempty"`
	// ExtendedBy are the IDs of the exceptions that extend this one directly.
	ExtendedBy []string `json:"extendedBy,omitempty"`
	// Extensions is how many exceptions extend this one, directly or
	// through one another.
	Extensions int `json:"extensions"`
	// ReminderWindow is the number of last days of the exception during
	// which ReminderDue reports it (see ReminderDue).
	ReminderWindow int `json:"reminderWindow"`
	// Source locates the exception: "exceptions[3]" in the policy file, or
	// "exceptionFiles[0] (exceptions/team-a.yaml)[2]".
	Source string `json:"source"`
	// File is the exception file it was read from, "" for the policy file.
	File string `json:"file,omitempty"`
}

// ExceptionScope is what an exception covers: failures of Rules (or
// findings of Vulnerabilities, optionally in Package) for images of
// Repository, optionally only for one Tag or Digest.
type ExceptionScope struct {
	// Repository is a repository path or a glob within one team's
	// namespace, such as "team-a/api" or "team-a/**".
	Repository string `json:"repository"`
	// Tag restricts the exception to requests for this tag.
	Tag string `json:"tag,omitempty"`
	// Digest restricts the exception to requests for this manifest digest.
	Digest string `json:"digest,omitempty"`
	// Rules are the ids of the rules whose failures it covers.
	Rules []string `json:"rules,omitempty"`
	// Vulnerabilities are vulnerability ids (CVE, GHSA or other OSV ids) it
	// covers. They match vulnerability findings only: a finding covered by
	// an exception in force does not fail its rule.
	Vulnerabilities []string `json:"vulnerabilities,omitempty"`
	// Package restricts it to vulnerability findings in this package.
	Package string `json:"package,omitempty"`
}

// VEX statuses (OpenVEX v0.2.0) an exception may state. The status
// "fixed" is not one of them: a fixed vulnerability needs no exception.
const (
	// VEXNotAffected: the images in scope are not affected by the
	// vulnerabilities; a justification or an impact statement says why.
	VEXNotAffected = "not_affected"
	// VEXAffected: they are affected; the action statement (by default the
	// exception's closure) says what is being done about it.
	VEXAffected = "affected"
	// VEXUnderInvestigation: whether they are affected is not known yet.
	VEXUnderInvestigation = "under_investigation"
)

var vexStatuses = []string{VEXNotAffected, VEXAffected, VEXUnderInvestigation}

// VEX justifications (OpenVEX v0.2.0) for status not_affected.
const (
	// VEXComponentNotPresent: the vulnerable component is not in the image.
	VEXComponentNotPresent = "component_not_present"
	// VEXVulnerableCodeNotPresent: the component is, its vulnerable code is not.
	VEXVulnerableCodeNotPresent = "vulnerable_code_not_present"
	// VEXVulnerableCodeNotInExecutePath: the vulnerable code is present but never run.
	VEXVulnerableCodeNotInExecutePath = "vulnerable_code_not_in_execute_path"
	// VEXVulnerableCodeCannotBeControlledByAdversary: an attacker cannot
	// reach or drive the vulnerable code.
	VEXVulnerableCodeCannotBeControlledByAdversary = "vulnerable_code_cannot_be_controlled_by_adversary"
	// VEXInlineMitigationsAlreadyExist: built-in protections prevent exploitation.
	VEXInlineMitigationsAlreadyExist = "inline_mitigations_already_exist"
)

var vexJustifications = []string{VEXComponentNotPresent, VEXVulnerableCodeNotPresent, VEXVulnerableCodeNotInExecutePath,
	VEXVulnerableCodeCannotBeControlledByAdversary, VEXInlineMitigationsAlreadyExist}

// ExceptionVEX is the optional vex field of an exception that names
// vulnerabilities: its statement about them in OpenVEX terms.
type ExceptionVEX struct {
	// Status is VEXNotAffected, VEXAffected or VEXUnderInvestigation.
	Status string `json:"status"`
	// Justification is, for VEXNotAffected, one of the OpenVEX
	// justification labels (VEXComponentNotPresent, ...); "" when not given.
	Justification string `json:"justification,omitempty"`
	// Impact is, for VEXNotAffected, free text saying why the images are
	// not affected (the statement's impact_statement); "" when not given.
	Impact string `json:"impact,omitempty"`
	// Action says what is done about the vulnerabilities (the statement's
	// action_statement); "" when not given, when an affected statement
	// uses the exception's closure.
	Action string `json:"action,omitempty"`
}

// ExceptionState is where an exception is in its life at a moment.
type ExceptionState string

// The states of an exception.
const (
	// ExceptionActive: in force (Created <= now < the day after Expires).
	ExceptionActive ExceptionState = "active"
	// ExceptionExpired: Expires has passed.
	ExceptionExpired ExceptionState = "expired"
	// ExceptionNotYetValid: Created is still to come.
	ExceptionNotYetValid ExceptionState = "not-yet-valid"
)

// ExceptionStatus is an exception's state at a moment.
type ExceptionStatus struct {
	// State is active, expired or not-yet-valid.
	State ExceptionState `json:"state"`
	// DaysLeft is the number of days, today (UTC) included, on which the
	// exception is still in force: 1 on its last day (Expires), 0 once
	// expired. Before Created it counts from today to Expires too.
	DaysLeft int `json:"daysLeft"`
	// AgeDays is the number of days since Created: 0 on that day and
	// before it.
	AgeDays int `json:"ageDays"`
}

// Status returns the exception's state at now.
func (e Exception) Status(now time.Time) ExceptionStatus {
	today := dayOf(now)
	st := ExceptionStatus{State: ExceptionActive}
	switch {
	case now.Before(e.Created):
		st.State = ExceptionNotYetValid
	case !now.Before(e.end()):
		st.State = ExceptionExpired
	}
	if st.State != ExceptionExpired {
		st.DaysLeft = daysBetween(today, e.Expires) + 1
	}
	if age := daysBetween(e.Created, today); age > 0 {
		st.AgeDays = age
	}
	return st
}

// inForce reports whether the exception applies at now.
func (e Exception) inForce(now time.Time) bool {
	return !now.Before(e.Created) && now.Before(e.end())
}

// end is the first moment the exception is no longer in force: midnight
// UTC after Expires.
func (e Exception) end() time.Time { return e.Expires.AddDate(0, 0, 1) }

// DurationDays is Expires minus Created in days, the length compared with
// ExceptionRules.MaxDays.
func (e Exception) DurationDays() int { return daysBetween(e.Created, e.Expires) }

// effectiveSeverity is the severity used for limits: SeverityUnknown when
// none is given.
func (e Exception) effectiveSeverity() string {
	if e.Severity == "" {
		return SeverityUnknown
	}
	return e.Severity
}

// ExceptionRules bound the exceptions of a policy (top-level
// exceptionRules).
type ExceptionRules struct {
	// MaxDays is, per severity, the longest Expires - Created allowed.
	MaxDays map[string]int `json:"maxDays"`
	// ReminderDays is the longest reminder window, in days.
	ReminderDays int `json:"reminderDays"`
	// ReminderMinDays is the shortest reminder window, in days.
	ReminderMinDays int `json:"reminderMinDays"`
}

// DefaultExceptionRules returns the exception rules of a policy that sets
// none: at most 30 days for critical, 90 for high, 180 for medium, 365 for
// low and 90 for unknown severity; reminders in a window of 7 to 14 days.
func DefaultExceptionRules() ExceptionRules {
	return ExceptionRules{
		MaxDays: map[string]int{
			SeverityCritical: 30, SeverityHigh: 90, SeverityMedium: 180, SeverityLow: 365, SeverityUnknown: 90,
		},
		ReminderDays:    14,
		ReminderMinDays: 7,
	}
}

// reminderWindow is the window of an exception lasting duration days: half
// its duration (rounded down), but at least ReminderMinDays and at most
// ReminderDays.
func (x ExceptionRules) reminderWindow(duration int) int {
	w := duration / 2
	if w < x.ReminderMinDays {
		w = x.ReminderMinDays
	}
	if w > x.ReminderDays {
		w = x.ReminderDays
	}
	return w
}

// ExceptionRules returns a copy of the policy's exception rules, defaults
// filled in.
func (p *Policy) ExceptionRules() ExceptionRules {
	x := p.exceptionRules
	x.MaxDays = make(map[string]int, len(p.exceptionRules.MaxDays))
	for k, v := range p.exceptionRules.MaxDays {
		x.MaxDays[k] = v
	}
	return x
}

// Exceptions returns a deep copy of the exceptions: those of the policy
// file in order, then those of each exception file in the order read.
func (p *Policy) Exceptions() []Exception {
	out := make([]Exception, len(p.exceptions))
	for i := range p.exceptions {
		out[i] = p.exceptions[i].copy()
	}
	return out
}

// copy returns e with its slices copied.
func (e *exception) copy() Exception {
	c := e.Exception
	c.Scope.Rules = append([]string(nil), e.Scope.Rules...)
	c.Scope.Vulnerabilities = append([]string(nil), e.Scope.Vulnerabilities...)
	c.CompensatingControls = append([]string(nil), e.CompensatingControls...)
	c.ExtendedBy = append([]string(nil), e.ExtendedBy...)
	c.Services = append([]ServiceRef(nil), e.Services...)
	if e.VEX != nil {
		v := *e.VEX
		c.VEX = &v
	}
	return c
}

// DueExceptions returns the exceptions that have expired at now or that
// end within the given duration of it (their end, midnight UTC after
// Expires, is no later than now+within), sorted by Expires, then in policy
// order. Exceptions not yet valid are included when they end that soon.
func (p *Policy) DueExceptions(now time.Time, within time.Duration) []Exception {
	limit := now.Add(within)
	var out []Exception
	for i := range p.exceptions {
		e := &p.exceptions[i]
		if !e.end().After(limit) {
			out = append(out, e.copy())
		}
	}
	sortByExpiry(out)
	return out
}

// ReminderDue returns the active exceptions whose expiry should be
// announced on the day of now, sorted by Expires, then in policy order.
//
// An exception is reminded of on each of its last W days in force, where
// W is its ReminderWindow: half its length (Expires - Created, rounded
// down), but at least reminderMinDays and at most reminderDays. That is,
// it is due when 1 <= Status(now).DaysLeft <= W. With the defaults (7 and
// 14) a 90-day exception is reminded of on its last 14 days; a 14-day
// exception created on day 0 (Expires day 14) on its last 7, days 8 to 14
// (none on day 5; on day 15 it has expired). An exception that another
// exception extends is not reminded of: its extension exists. The gate
// emits one reminder event per exception per day.
func (p *Policy) ReminderDue(now time.Time) []Exception {
	var out []Exception
	for i := range p.exceptions {
		e := &p.exceptions[i]
		if len(e.ExtendedBy) > 0 {
			continue
		}
		st := e.Status(now)
		if st.State == ExceptionActive && st.DaysLeft <= e.ReminderWindow {
			out = append(out, e.copy())
		}
	}
	sortByExpiry(out)
	return out
}

// sortByExpiry sorts exceptions by Expires, keeping policy order for ties.
func sortByExpiry(es []Exception) {
	sort.SliceStable(es, func(i, j int) bool { return es[i].Expires.Before(es[j].Expires) })
}

// dayOf is the midnight UTC of the day t falls on in UTC.
func dayOf(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// daysBetween is the number of whole days from a to b, both midnight UTC
// (computed from Unix seconds, which unlike a Duration do not saturate).
func daysBetween(a, b time.Time) int {
	return int((b.Unix() - a.Unix()) / 86400)
}
