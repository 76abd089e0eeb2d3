package policy

import (
	"fmt"
	"strings"
	"time"
)

// Input describes one request to decide on.
type Input struct {
	// Action is ActionPush, ActionPull or ActionDelete.
	Action Action `json:"action"`
	// Host is the host name the request's door applies (the gateway's listeners), never
	// a client header unless a trusted front proxy vouches for it; environments' hosts:
	// match it. It may include a port.
	Host string `json:"host,omitempty"`
	// Address is the registry address the client used (its Host header), for messages
	// only, such as the image reference in a denial's cosign command. It selects nothing.
	Address string `json:"address,omitempty"`
	// Repository is the repository path, e.g. "prod/app".
	Repository string `json:"repository"`
	// Tag is the tag of the reference, "" when the reference is a digest.
	Tag string `json:"tag,omitempty"`
	// Digest is the manifest digest ("sha256:...") when known.
	Digest string `json:"digest,omitempty"`
	// Kind is what the manifest is, from its content (see Classify);
	// KindUnknown (the body was not seen) is judged as an image. Artifacts are
	// exempt from the rules that judge images, and the decision says so.
	Kind Kind `json:"kind,omitempty"`
	// CurrentDigest is, for a push, the digest the tag currently points at
	// upstream, or failing that the digest the gateway first saw pushed
	// under it (a tag deleted upstream cannot be re-pointed); "" when the
	// tag is new.
	CurrentDigest string `json:"currentDigest,omitempty"`
	// CurrentLayers are, for a push to a signature, attestation or SBOM tag
	// that already exists, the layers of the manifest it points at: such a
	// tag may only grow (new signatures beside the old ones).
	CurrentLayers []string `json:"currentLayers,omitempty"`
	// Layers are the manifest's layer digests (Classification.Layers).
	Layers []string `json:"layers,omitempty"`
	// Signatures is the signature evidence for Digest, nil when it was not
	// gathered (see Needs.Signatures). A signature rule with authorities
	// fails on a pull without it, saying that signatures were not checked.
	Signatures *SignatureEvidence `json:"signatures,omitempty"`
	// Platform is the platform evidence (an index's platforms or an image
	// configuration's), nil when not gathered (see Needs.Platform).
	Platform *PlatformEvidence `json:"platform,omitempty"`
	// Image is the image evidence (configuration, secrets), nil when not gathered.
	Image *ImageEvidence `json:"image,omitempty"`
	// Vulnerabilities is the vulnerability evidence (scan findings), nil when
	// not gathered (see Needs.Scan). A vulnerability rule fails without it,
	// saying that the image was not scanned.
	Vulnerabilities *VulnerabilityEvidence `json:"vulnerabilities,omitempty"`
}

// Decision is the outcome of evaluating a policy for one request.
type Decision struct {
	// Verdict is VerdictDeny when a failed result blocks, else VerdictWarn
	// when a failed result warns, else VerdictAllow.
	Verdict Verdict `json:"verdict"`
	// Environment is the environment the request was assigned to.
	Environment string `json:"environment"`
	// PolicyRevision is the Revision of the policy that decided.
	PolicyRevision string `json:"policyRevision"`
	// Results has one entry per rule that applies, in policy order,
	// including passes and exemptions (OutcomeExempt: an artifact is not
	// judged by a rule for images). It is never empty: when no rule applies,
	// one result with rule NoRule says so.
	Results []Result `json:"results"`
	// Service is the service that owns the repository (see
	// Policy.ServiceFor), nil when none does.
	Service *ServiceRef `json:"service,omitempty"`
}

// Result is what one rule concluded.
type Result struct {
	// Rule is the rule id.
	Rule string `json:"rule"`
	// Type is the rule type.
	Type string `json:"type"`
	// Mode is the rule's effective mode at the time of the decision.
	Mode Mode `json:"mode"`
	// Outcome is pass, fail, excepted or inert.
	Outcome Outcome `json:"outcome"`
	// Finding says what was found.
	Finding string `json:"finding"`
	// Fix is the concrete next step when the rule failed.
	Fix string `json:"fix,omitempty"`
	// EnforceFrom, when set, is the future date from which this rule blocks.
	EnforceFrom *time.Time `json:"enforceFrom,omitempty"`
	// Exception tells how to request an exception.
	Exception string `json:"exception,omitempty"`
	// AppliedException is, when Outcome is OutcomeExcepted, the exception
	// that covers the failure (Finding and Fix still say what it was).
	AppliedException *AppliedException `json:"appliedException,omitempty"`
	// ExpiredException is, for a failed result, the expired exception that
	// would otherwise have covered it; Fix then starts by saying so.
	ExpiredException *AppliedException `json:"expiredException,omitempty"`
	// CouldNotCheck, on a failed result, says what the rule could not check
	// (a layer that could not be read in full, an operating system it could
	// not identify): it found no violation but could not rule one out, so it
	// never passes. The environment's fail mode decides: closed keeps the
	// failure, open turns a blocking one into a warning (see Evaluate).
	CouldNotCheck string `json:"couldNotCheck,omitempty"`
}

// AppliedException identifies the exception a result refers to.
type AppliedException struct {
	// ID is the exception's id.
	ID string `json:"id"`
	// Owner is who answers for it.
	Owner string `json:"owner"`
	// Expires is its last day in force (midnight UTC).
	Expires time.Time `json:"expires"`
	// Ticket is its tracking ticket, "" if none.
	Ticket string `json:"ticket,omitempty"`
	// DaysLeft is Exception.Status(now).DaysLeft at the decision: 1 on
	// its last day, 0 once expired.
	DaysLeft int `json:"daysLeft"`
}

// Denials returns the failed results whose effective mode is block.
func (d Decision) Denials() []Result { return d.failed(ModeBlock) }

// Warnings returns the results to show a client that is let through, in
// policy order: the failed results whose effective mode is warn, and the
// excepted results whose effective mode is warn or block (their Message
// names the exception and when it ends). Observed results are not shown.
func (d Decision) Warnings() []Result {
	var out []Result
	for _, r := range d.Results {
		switch {
		case r.Outcome == OutcomeFail && r.Mode == ModeWarn,
			r.Outcome == OutcomeExcepted && (r.Mode == ModeWarn || r.Mode == ModeBlock):
			out = append(out, r)
		}
	}
	return out
}

// Excepted returns the results covered by an exception, in any mode.
func (d Decision) Excepted() []Result {
	var out []Result
	for _, r := range d.Results {
		if r.Outcome == OutcomeExcepted {
			out = append(out, r)
		}
	}
	return out
}

// failed returns the failed results in mode m.
func (d Decision) failed(m Mode) []Result {
	var out []Result
	for _, r := range d.Results {
		if r.Outcome == OutcomeFail && r.Mode == m {
			out = append(out, r)
		}
	}
	return out
}

// Unchecked records that the evidence of the rules of the given types could not be
// gathered (why says which and why) and lets failMode (FailClosed or FailOpen) decide only
// the rules among them that would block. Each of their results that is not exempt,
// excepted or inert becomes a failure whose Finding and CouldNotCheck are why: a rule that
// could not look never passes. A result in mode observe is only recorded and one in mode
// warn warns, whatever failMode: missing evidence never refuses on their account. A
// blocking one stays blocking when failMode is FailClosed (the request cannot be decided
// and must be refused) and only warns when it is FailOpen. Unchecked returns the ids of
// the rules that would block, none when failMode did not matter, and recomputes the
// verdict.
func (d *Decision) Unchecked(why, failMode string, types ...string) (blocking []string) {
	for i := range d.Results {
		r := &d.Results[i]
		if !oneOf(r.Type, types) || r.Outcome == OutcomeExempt || r.Outcome == OutcomeExcepted || r.Outcome == OutcomeInert {
			continue
		}
		r.Outcome, r.Finding, r.CouldNotCheck = OutcomeFail, why, why
		r.Fix = "this is not a problem with the image: the gateway could not run this check"
		r.AppliedException, r.ExpiredException = nil, nil
		if r.Mode != ModeBlock {
			continue
		}
		if !oneOf(r.Rule, blocking) {
			blocking = append(blocking, r.Rule)
		}
		if failMode == FailOpen {
			r.Mode = ModeWarn
			r.Finding += fmt.Sprintf(" [could not check; environment %s fails open, so this only warns]", d.Environment)
		}
	}
	d.Verdict = verdictOf(d.Results)
	return blocking
}

// verdictOf computes the Verdict of a list of results.
func verdictOf(results []Result) Verdict {
	v := VerdictAllow
	for _, r := range results {
		if r.Outcome != OutcomeFail {
			continue
		}
		switch r.Mode {
		case ModeBlock:
			return VerdictDeny
		case ModeWarn:
			v = VerdictWarn
		}
	}
	return v
}

// Message is one line a developer can act on: the rule, the finding, the
// fix, the date it becomes blocking, and how to request an exception. For
// an excepted result it names the exception, its owner, its last day and
// the days left, then the fix to make before then.
func (r Result) Message() string {
	if r.Outcome == OutcomeExcepted && r.AppliedException != nil {
		return r.exceptedMessage()
	}
	s := r.summary()
	if r.Outcome == OutcomeFail && r.Exception != "" {
		s += ". " + exceptionSentence(r.Exception)
	}
	return s
}

// summary is Message without the exception sentence.
func (r Result) summary() string {
	var b strings.Builder
	b.WriteString("[" + r.Rule + "] " + r.Finding)
	if r.Fix != "" {
		b.WriteString(": " + r.Fix)
	}
	var notes []string
	if r.Outcome == OutcomeFail && r.Mode == ModeObserve {
		notes = append(notes, "observed only, not enforced yet")
	}
	if r.EnforceFrom != nil {
		notes = append(notes, "blocking from "+r.EnforceFrom.UTC().Format(dateLayout))
	}
	if len(notes) > 0 {
		b.WriteString(" (" + strings.Join(notes, "; ") + ")")
	}
	return b.String()
}

// exceptionSentence turns an exception process text into a sentence,
// prefixing "To request an exception:" unless the text already speaks of
// exceptions.
func exceptionSentence(text string) string {
	text = strings.TrimSpace(text)
	if strings.Contains(strings.ToLower(text), "exception") {
		return text
	}
	return "To request an exception: " + text
}

// DenyMessage joins all denials into one message starting "denied by policy
// (environment ENV): ", followed by how to request an exception (each
// distinct text once) and, when a service owns the repository, who owns it
// and whom to contact: "Owned by team payments (service payments-api, tier
// critical); contact #payments-oncall". It is "" when nothing is denied.
func (d Decision) DenyMessage() string {
	denials := d.Denials()
	if len(denials) == 0 {
		return ""
	}
	parts := make([]string, len(denials))
	var exceptions []string
	for i, r := range denials {
		parts[i] = r.summary()
		if r.Exception != "" && !oneOf(r.Exception, exceptions) {
			exceptions = append(exceptions, r.Exception)
		}
	}
	msg := "denied by policy (environment " + d.Environment + "): " + strings.Join(parts, "; ")
	for _, e := range exceptions {
		msg += ". " + exceptionSentence(e)
	}
	if d.Service != nil {
		msg += ". " + d.Service.Owned()
	}
	return msg
}
