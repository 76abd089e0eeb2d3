package policy

import (
	"fmt"
	"strings"
)

// validateExceptions reports problems of exceptions that need the whole
// policy: duplicate ids, unknown rules, dates against exceptionRules,
// critical exceptions without compensating controls, vex on a scope
// without vulnerabilities or with a repository pattern, self-approval and
// extends that name no exception or go round in a circle. It then links
// extensions, sets reminder windows and drops the parse-time bookkeeping.
func validateExceptions(r *reader, p *Policy) {
	defer func() { r.file, r.order = "", 0 }()
	rules := map[string]*rule{}
	var ruleIDs []string
	for i := range p.rules {
		id := p.rules[i].ID
		if _, dup := rules[id]; !dup && nameRE.MatchString(id) {
			rules[id] = &p.rules[i]
			ruleIDs = append(ruleIDs, id)
		}
	}
	ids := map[string]*exception{}
	x := p.exceptionRules
	for i := range p.exceptions {
		e := &p.exceptions[i]
		r.file, r.order = e.File, e.order
		if f, ok := e.fields["id"]; ok && e.ID != "" {
			if first, dup := ids[e.ID]; dup {
				r.add(f.path, f.value, "duplicate of %s.id", first.Source)
			} else {
				ids[e.ID] = e
			}
		}
		narrowed := len(e.Scope.Vulnerabilities) > 0 || e.Scope.Package != ""
		for _, it := range e.ruleItems {
			ru, ok := rules[it.value]
			switch {
			case !ok:
				r.add(it.path, it.node, "no rule named %q%s", it.value, ruleNames(ruleIDs))
			case narrowed && ru.Type != TypeVulnerability:
				r.add(it.path, it.node, "rule %s has type %s, but vulnerabilities and package narrow an exception to vulnerability findings; list only vulnerability rules, or put them in another exception", ru.ID, ru.Type)
			}
		}
		if ef := e.fields["expires"]; !e.Created.IsZero() && !e.Expires.IsZero() {
			created, expires := e.Created.Format(dateLayout), e.Expires.Format(dateLayout)
			sev := e.effectiveSeverity()
			switch d, limit := e.DurationDays(), x.MaxDays[sev]; {
			case !e.Expires.After(e.Created):
				r.add(ef.path, ef.value, "must be after created (%s is not after %s)", expires, created)
			case d > limit:
				what := "an exception of severity " + sev
				if e.Severity == "" {
					what = "an exception without a severity counts as unknown and"
				}
				r.add(ef.path, ef.value, "%s is %d days after created (%s), but %s may last at most %d days (exceptionRules.maxDays.%s); shorten it, and extend it later with a new exception if needed",
					expires, d, created, what, limit, sev)
			}
		}
		if e.Severity == SeverityCritical && len(e.CompensatingControls) == 0 {
			path, n := e.Source+".compensatingControls", e.node
			if f, ok := e.fields["compensatingControls"]; ok {
				path, n = f.path, f.value
			}
			r.add(path, n, "a critical exception needs at least one compensating control (such as \"egress restricted\")")
		}
		if e.VEX != nil && e.scope != nil {
			f := e.fields["vex"]
			switch {
			case len(e.Scope.Vulnerabilities) == 0:
				r.add(f.path, f.value, "a VEX statement is about vulnerabilities: list them in scope.vulnerabilities, or remove vex")
			case strings.ContainsAny(e.Scope.Repository, "*?"):
				r.add(f.path, f.value, "scope.repository %q is a pattern, but a VEX statement names the images it is about (as a pkg:oci purl): scope the exception to one repository, or remove vex", e.Scope.Repository)
			}
		}
		if e.Owner != "" && strings.EqualFold(e.Owner, e.ApprovedBy) {
			f := e.fields["approvedBy"]
			r.add(f.path, f.value, "the owner cannot approve their own exception: ask someone else, such as the security team")
		}
	}
	for i := range p.exceptions {
		e := &p.exceptions[i]
		if e.Extends == "" {
			continue
		}
		r.file, r.order = e.File, e.order
		f := e.fields["extends"]
		target, ok := ids[e.Extends]
		switch {
		case e.Extends == e.ID:
			r.add(f.path, f.value, "an exception cannot extend itself")
		case !ok:
			r.add(f.path, f.value, "no exception with id %q in the policy or its exception files", e.Extends)
		default:
			if cycle := extendsCycle(e, target, ids); cycle != "" {
				r.add(f.path, f.value, "extends goes round in a circle (%s)", cycle)
				continue
			}
			target.ExtendedBy = append(target.ExtendedBy, e.ID)
		}
	}
	for i := range p.exceptions {
		e := &p.exceptions[i]
		e.Extensions = countExtensions(e, ids, map[string]bool{e.ID: true})
		e.ReminderWindow = x.reminderWindow(e.DurationDays())
		e.node, e.fields, e.scope, e.ruleItems = nil, nil, nil, nil
	}
}

// extendsCycle follows extends from target and returns the circle it
// forms back to e, as "A -> B -> A", or "" when the chain ends.
func extendsCycle(e, target *exception, ids map[string]*exception) string {
	chain := []string{e.ID}
	for cur, steps := target, 0; cur != nil && steps <= len(ids); steps++ {
		chain = append(chain, cur.ID)
		if cur == e {
			return strings.Join(chain, " -> ")
		}
		if cur.Extends == "" {
			return ""
		}
		cur = ids[cur.Extends]
	}
	return ""
}

// countExtensions counts the exceptions that extend e, directly or through
// one another; seen guards against circles.
func countExtensions(e *exception, ids map[string]*exception, seen map[string]bool) int {
	n := 0
	for _, id := range e.ExtendedBy {
		if seen[id] {
			continue
		}
		seen[id] = true
		n++
		if ext := ids[id]; ext != nil {
			n += countExtensions(ext, ids, seen)
		}
	}
	return n
}

// ruleNames lists rule ids for a message: " (want one of a, b)", or a note
// that the policy has none.
func ruleNames(ids []string) string {
	if len(ids) == 0 {
		return " (the policy has no rules)"
	}
	return fmt.Sprintf(" (want one of %s)", strings.Join(ids, ", "))
}
