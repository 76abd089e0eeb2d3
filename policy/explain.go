package policy

import (
	"fmt"
	"strings"
	"time"
)

// Explanation says how a policy treats one request and why: the
// environment it falls in and, for every rule, whether it applies and in
// which mode today.
type Explanation struct {
	// PolicyRevision is the Revision of the policy explained.
	PolicyRevision string `json:"policyRevision"`
	// Input is the request explained.
	Input Input `json:"input"`
	// Now is the moment the rules' dates are compared with.
	Now time.Time `json:"now"`
	// Environment is the environment the request falls in.
	Environment string `json:"environment"`
	// EnvironmentReason says which selectors put it there.
	EnvironmentReason string `json:"environmentReason"`
	// FailMode is the environment's fail mode.
	FailMode string `json:"failMode"`
	// Unscanned is how the environment answers the first pull of an image not scanned
	// yet; nil leaves it to the gateway's scan.pullWait and the fail mode.
	Unscanned *Unscanned `json:"unscanned,omitempty"`
	// Service is the service owning the repository, nil when none does.
	Service *ServiceRef `json:"service,omitempty"`
	// Verdict is what the gateway decides, assuming a pushed tag is new, a
	// pulled image carries no signature and the image's content could not be checked.
	Verdict Verdict `json:"verdict"`
	// Rules has one entry per rule of the policy, in policy order.
	Rules []RuleExplanation `json:"rules"`
}

// RuleExplanation explains one rule for one request.
type RuleExplanation struct {
	// Rule is the rule id.
	Rule string `json:"rule"`
	// Type is the rule type.
	Type string `json:"type"`
	// Mode is the configured mode.
	Mode Mode `json:"mode"`
	// EffectiveMode is the mode at Explanation.Now, after the rule's dates.
	EffectiveMode Mode `json:"effectiveMode"`
	// Schedule describes the rule's stages, e.g. "warn until 2026-12-15, then block".
	Schedule string `json:"schedule"`
	// Checks describes what an enforced rule checks, e.g. "signed by one
	// of release, security"; "" for rule types not enforced yet.
	Checks string `json:"checks,omitempty"`
	// Applies reports whether the rule is evaluated for this request.
	Applies bool `json:"applies"`
	// Reason says why the rule does not apply, or qualifies its result.
	Reason string `json:"reason,omitempty"`
	// Result is the rule's result when it applies.
	Result *Result `json:"result,omitempty"`
}

// contentTypes are the rule types that judge an image's content, which Explain cannot read.
var contentTypes = []string{TypeConfig, TypeSecret, TypeVulnerability, TypePlatform}

// contentUnread is the finding of a content rule in an explanation.
const contentUnread = "the image's content is not read by policy explain (only the gateway inspects and scans images)"

// Explain explains how the policy treats action a on repo through host,
// for a reference by tag and/or digest, at the moment now. A manifest under
// an artifact-shaped tag is taken to be the artifact the tag is for
// (ArtifactTagKind); the gateway decides that from its content. For pushes the upstream state of
// the tag is unknown here, so immutability is evaluated as if the tag were
// new; for pulls signatures are not read here, so signature rules are
// evaluated as for an image with no signature; images are neither inspected nor
// scanned here, so config, secret and vulnerability rules are judged as the gateway
// judges them when it cannot gather their evidence (see Decision.Unchecked): observe
// rules record it, warn rules warn, and blocking ones follow the environment's fail mode
// (closed: deny, as the gateway does without a vulnerability database; open: warn).
func (p *Policy) Explain(a Action, repo, host string, tag, digest string, now time.Time) Explanation {
	in := Input{Action: a, Host: host, Repository: repo, Tag: tag, Digest: digest, Kind: ArtifactTagKind(tag)}
	if p.Needs(a, repo, host).Signatures {
		in.Signatures = &SignatureEvidence{}
	}
	d := p.Evaluate(in, now)
	// The image's content is not read here: its rules are judged as the gateway judges
	// them when it cannot gather their evidence, so explain and serve agree.
	d.Unchecked(contentUnread, p.FailMode(d.Environment), contentTypes...)
	x := Explanation{
		PolicyRevision: p.revision,
		Input:          in,
		Now:            now,
		Environment:    d.Environment,
		FailMode:       p.FailMode(d.Environment),
		Unscanned:      p.UnscannedPull(d.Environment),
		Service:        d.Service,
		Verdict:        d.Verdict,
	}
	if e := p.environment(repo, host); e != nil {
		x.EnvironmentReason = "first environment whose " + selectors(e.Environment)
	} else {
		x.EnvironmentReason = "matches no environment"
	}
	results := map[string]Result{}
	for _, r := range d.Results {
		results[r.Rule] = r
	}
	for i := range p.rules {
		r := &p.rules[i]
		eff, _ := effectiveMode(r.Mode, r.ObserveUntil, r.EnforceFrom, now)
		re := RuleExplanation{Rule: r.ID, Type: r.Type, Mode: r.Mode, EffectiveMode: eff, Schedule: r.schedule(), Checks: r.checks()}
		re.Reason = r.mismatch(d.Environment, a, repo)
		if re.Reason == "" {
			re.Reason = r.outOfScope(in)
		}
		if re.Reason == "" {
			re.Reason = r.exempt(in)
		}
		if re.Reason == "" {
			re.Applies = true
			res := results[r.ID]
			re.Result = &res
			switch {
			case res.AppliedException != nil:
				re.Reason = res.AppliedException.Covered()
			case r.Type == TypeImmutable && tag != "":
				re.Reason = "assumes the tag is new: only the gateway knows whether it already exists upstream"
			case r.Type == TypeSignature && len(r.auths) > 0:
				re.Reason = "assumes the image is unsigned: only the gateway reads and verifies signatures"
			case oneOf(r.Type, contentTypes):
				re.Reason = "assumes the gateway could not check the image's content: its fail mode decides blocking rules"
			}
		}
		x.Rules = append(x.Rules, re)
	}
	return x
}

// selectors describes what an environment selects.
func selectors(e Environment) string {
	var s []string
	if len(e.Repositories) > 0 {
		s = append(s, "repositories ["+strings.Join(e.Repositories, ", ")+"]")
	}
	if len(e.Hosts) > 0 {
		s = append(s, "hosts ["+strings.Join(e.Hosts, ", ")+"]")
	}
	return strings.Join(s, " and ") + " match"
}

// checks describes what an enforced rule checks.
func (r *rule) checks() string {
	switch r.Type {
	case TypeTag:
		var s []string
		if len(r.Forbidden) > 0 {
			s = append(s, "forbidden ["+strings.Join(r.Forbidden, ", ")+"]")
		}
		if len(r.Allowed) > 0 {
			s = append(s, "allowed ["+strings.Join(r.Allowed, ", ")+"]")
		}
		if r.RequireDigest {
			s = append(s, "pulls by digest or an allowed tag")
		}
		return strings.Join(s, "; ")
	case TypeImmutable:
		return "a pushed tag never moves to another digest"
	case TypePlatform:
		return "an image or index is for a platform the environment's nodes run"
	case TypeSignature:
		return r.signatureChecks()
	case TypeVulnerability:
		return r.vulnerabilityChecks()
	case TypeSecret:
		return r.secretChecks()
	}
	return ""
}

// schedule describes a rule's stages over time.
func (r *rule) schedule() string {
	day := func(t time.Time) string { return t.Format(dateLayout) }
	var stages []string
	if !r.ObserveUntil.IsZero() && r.Mode != ModeOff {
		stages = append(stages, "observe until "+day(r.ObserveUntil))
	}
	if !r.EnforceFrom.IsZero() && r.Mode == ModeBlock {
		stages = append(stages, "warn until "+day(r.EnforceFrom))
	}
	if len(stages) == 0 {
		return string(r.Mode)
	}
	return fmt.Sprintf("%s, then %s", strings.Join(stages, ", "), r.Mode)
}

// Decision returns the Decision the explanation is based on: its verdict
// and the results of the rules that apply.
func (x Explanation) Decision() Decision {
	d := Decision{Verdict: x.Verdict, Environment: x.Environment, PolicyRevision: x.PolicyRevision}
	for _, r := range x.Rules {
		if r.Result != nil {
			d.Results = append(d.Results, *r.Result)
		}
	}
	return d
}
