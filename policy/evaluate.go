package policy

import (
	"fmt"
	"strings"
	"time"
)

// Needs says which evidence the rules that apply to a request consume, so
// that the gate gathers only that.
type Needs struct {
	// CurrentTagDigest: an immutability rule applies to this push, so the
	// digest the tag currently points at upstream is needed.
	CurrentTagDigest bool `json:"currentTagDigest"`
	// Signatures: a signature rule with authorities applies to this pull,
	// so the signature evidence of the digest (Input.Signatures) is needed.
	// Signature, attestation and SBOM artifacts are exempt from signature
	// rules: the gate need not gather evidence for them.
	Signatures bool `json:"signatures"`
	// Image: a config or secret rule applies, so the image evidence (Input.Image:
	// its configuration, and its files once layers are scanned) is needed.
	Image bool `json:"image"`
	// Platform: a platform rule applies, so the platform evidence (Input.Platform: an
	// index's platforms, or an image configuration's) is needed, except for a manifest
	// PlatformDeferred leaves for later.
	Platform bool `json:"platform"`
	// Scan: a vulnerability rule applies, so the vulnerability evidence
	// (Input.Vulnerabilities: the image's packages matched against the
	// vulnerability database) is needed. Signature, attestation and SBOM
	// artifacts are exempt from vulnerability rules.
	Scan bool `json:"scan"`
}

// Needs returns the evidence that the rules applying to action a on repo
// through host (mode not off, selectors matching) need.
func (p *Policy) Needs(a Action, repo, host string) Needs {
	env := p.Environment(repo, host)
	var n Needs
	for i := range p.rules {
		r := &p.rules[i]
		if r.mismatch(env, a, repo) != "" {
			continue
		}
		if r.Type == TypeImmutable && a == ActionPush {
			n.CurrentTagDigest = true
		}
		if r.Type == TypeSignature && a == ActionPull && len(r.auths) > 0 {
			n.Signatures = true
		}
		if r.Type == TypeConfig || r.Type == TypeSecret {
			n.Image = true
		}
		if r.Type == TypeVulnerability {
			n.Scan = true
		}
		if r.Type == TypePlatform && a != ActionDelete {
			n.Platform = true
		}
	}
	return n
}

// Evaluate decides on in at the moment now. It never fails: evidence the
// gate could not gather is the gate's fail mode to apply, not the policy's.
// A failure covered by an exception in force at now becomes
// OutcomeExcepted (see Result.AppliedException); one covered only by an
// expired exception stays failed and its Fix says so.
func (p *Policy) Evaluate(in Input, now time.Time) Decision {
	env := p.Environment(in.Repository, in.Host)
	d := Decision{Environment: env, PolicyRevision: p.revision, Service: p.ServiceRefFor(in.Repository)}
	for i := range p.rules {
		r := &p.rules[i]
		if r.mismatch(env, in.Action, in.Repository) != "" || r.outOfScope(in) != "" {
			continue
		}
		if why := r.exempt(in); why != "" {
			mode, pending := effectiveMode(r.Mode, r.ObserveUntil, r.EnforceFrom, now)
			d.Results = append(d.Results, Result{Rule: r.ID, Type: r.Type, Mode: mode, EnforceFrom: pending, Outcome: OutcomeExempt, Finding: why})
			continue
		}
		cover := func(f VulnerabilityFinding) (active, expired *exception) { return p.findingException(r.ID, in, f, now) }
		res, extra := r.evaluate(in, env, now, p.exceptionProcess, p.platformsOf(env), cover)
		p.applyFailMode(&res, env)
		p.applyExceptions(&res, in, now)
		d.Results = append(d.Results, res)
		if extra != nil {
			p.applyExceptions(extra, in, now)
			d.Results = append(d.Results, *extra)
		}
	}
	if len(d.Results) == 0 {
		d.Results = append(d.Results, Result{Rule: NoRule, Mode: ModeObserve, Outcome: OutcomePass,
			Finding: fmt.Sprintf("no rule of environment %s applies to this %s", env, in.Action)})
	}
	d.Verdict = verdictOf(d.Results)
	return d
}

// applyFailMode lets the environment's fail mode decide a result that failed only because
// the rule could not check something (Result.CouldNotCheck): a closed environment keeps the
// failure, an open one turns a blocking failure into a warning. Either way the finding says
// which applied; such a result is never a pass.
func (p *Policy) applyFailMode(res *Result, env string) {
	if res.Outcome != OutcomeFail || res.CouldNotCheck == "" {
		return
	}
	if p.FailMode(env) == FailOpen {
		if res.Mode == ModeBlock {
			res.Mode = ModeWarn
		}
		res.Finding += fmt.Sprintf(" [could not check; environment %s fails open, so this only warns]", env)
		return
	}
	res.Finding += fmt.Sprintf(" [could not check; environment %s fails closed]", env)
}

// evaluate runs a rule that applies to in. cover returns the exception in
// force that covers a vulnerability finding of the rule, nil if none.
func (r *rule) evaluate(in Input, env string, now time.Time, process string, platforms []Platform, cover func(VulnerabilityFinding) (active, expired *exception)) (res Result, extra *Result) {
	mode, pending := effectiveMode(r.Mode, r.ObserveUntil, r.EnforceFrom, now)
	res = Result{Rule: r.ID, Type: r.Type, Mode: mode, EnforceFrom: pending, Exception: process}
	if r.ExceptionProcess != "" {
		res.Exception = r.ExceptionProcess
	}
	switch r.Type {
	case TypeTag:
		res.Outcome, res.Finding, res.Fix = r.evaluateTag(in, env)
	case TypeImmutable:
		res.Outcome, res.Finding, res.Fix = r.evaluateImmutable(in)
	case TypeSignature:
		res.Outcome, res.Finding, res.Fix = r.evaluateSignature(in)
	case TypeConfig:
		res.Outcome, res.Finding, res.Fix = r.evaluateConfig(in)
	case TypePlatform:
		res.Outcome, res.Finding, res.Fix = r.evaluatePlatform(in, env, platforms)
	case TypeSecret:
		v := r.evaluateSecret(in)
		res.Outcome, res.Finding, res.Fix, res.CouldNotCheck = v.outcome, v.finding, v.fix, v.couldNotCheck
		if v.warnOnly && res.Mode == ModeBlock {
			res.Mode = ModeWarn // unsearched: warn
		}
	case TypeVulnerability:
		v := r.evaluateVulnerability(in, now, cover)
		res.Outcome, res.Finding, res.Fix, res.CouldNotCheck = v.outcome, v.finding, v.fix, v.couldNotCheck
		if v.excepted != nil {
			res.AppliedException = v.excepted.applied(now)
		}
		if v.expired != nil {
			res.ExpiredException = v.expired.applied(now)
			res.Fix = v.expired.expiredFix(res.Fix)
		}
		if v.warnOnly && res.Mode == ModeBlock {
			res.Mode = ModeWarn // only inherited findings within their remediation window
		}
		if v.grace != "" {
			g := res
			g.Outcome, g.Finding, g.Fix, g.AppliedException, g.ExpiredException = OutcomeFail, v.grace, v.graceFix, nil, nil
			if g.Mode == ModeBlock {
				g.Mode = ModeWarn
			}
			extra = &g
		}
	default:
		res.Outcome = OutcomeInert
		res.Finding = fmt.Sprintf("not yet enforced: this portcullis build does not check %s yet", r.Type)
	}
	return res, extra
}

// mismatch returns why the rule's mode or selectors exclude a request in
// environment env, or "" when they select it.
func (r *rule) mismatch(env string, a Action, repo string) string {
	if r.Mode == ModeOff {
		return "mode is off"
	}
	if len(r.Environments) > 0 && !oneOf(env, r.Environments) {
		return fmt.Sprintf("environment %s is not one of [%s]", env, strings.Join(r.Environments, ", "))
	}
	if r.Type == TypePlatform && !r.platformEnvs[env] {
		return fmt.Sprintf("environment %s declares no platforms", env)
	}
	if len(r.repos) > 0 && !anyGlob(r.repos, repo) {
		return fmt.Sprintf("repository %s matches none of [%s]", repo, strings.Join(r.Repositories, ", "))
	}
	if !r.selectsAction(a) {
		return fmt.Sprintf("action %s is not one of [%s]", a, joinActions(r.Actions))
	}
	return ""
}

// selectsAction reports whether the rule's actions include a.
func (r *rule) selectsAction(a Action) bool {
	if len(r.Actions) == 0 {
		return true
	}
	for _, x := range r.Actions {
		if x == a {
			return true
		}
	}
	return false
}

// outOfScope returns why the rule's type does not concern the request's
// action, or "": such a rule is left out of the decision.
func (r *rule) outOfScope(in Input) string {
	switch r.Type {
	case TypeTag:
		if in.Action == ActionDelete {
			return "tag rules judge the names pushed and pulled"
		}
	case TypeImmutable:
		if in.Action == ActionPull {
			return "immutability concerns pushes and deletes"
		}
	case TypeConfig, TypeSecret, TypeVulnerability, TypePlatform:
		if in.Action == ActionDelete {
			return "content rules do not judge deletes"
		}
	case TypeSignature:
		if in.Action != ActionPull {
			return "signature rules apply to pulls (signatures are pushed after the image)"
		}
	}
	return ""
}

// exempt returns why the rule does not judge in because of what the manifest
// is, or "". The decision keeps an OutcomeExempt result saying so. Only the
// content decides (Input.Kind): an artifact-shaped tag exempts a manifest
// from tag rules only when the manifest is the artifact that tag is for.
func (r *rule) exempt(in Input) string {
	switch r.Type {
	case TypeTag:
		if k := ArtifactTagKind(in.Tag); k != "" && k == in.Kind {
			return fmt.Sprintf("tag %s is the %s tag cosign and the referrers API use, and the manifest is a %s", in.Tag, k, in.Kind)
		}
	case TypeConfig, TypeSecret, TypeVulnerability, TypeSignature, TypePlatform:
		if in.Kind.IsArtifact() {
			return fmt.Sprintf("the manifest is a %s (decided by its media types), not an image: %s rules judge images", in.Kind, r.Type)
		}
		if r.Type == TypePlatform && PlatformDeferred(in.Action, in.Tag, in.Kind) {
			return "an image manifest pushed by digest (a platform manifest of an index to come): judged through the index that names it, and on its own when pulled"
		}
	}
	return ""
}
