package policy

import "time"

// Mode is how strongly a rule is enforced.
type Mode string

// The rule modes, from weakest to strongest.
const (
	// ModeOff disables a rule: it is not evaluated at all.
	ModeOff Mode = "off"
	// ModeObserve evaluates a rule and records its failures without telling the client.
	ModeObserve Mode = "observe"
	// ModeWarn lets the request through with a warning when the rule fails.
	ModeWarn Mode = "warn"
	// ModeBlock denies the request when the rule fails.
	ModeBlock Mode = "block"
)

// Action is what the client is doing with an image.
type Action string

// The actions a rule can select.
const (
	// ActionPush is a manifest upload.
	ActionPush Action = "push"
	// ActionPull is a manifest download (GET or HEAD, by tag or digest).
	ActionPull Action = "pull"
	// ActionDelete is a manifest or tag deletion.
	ActionDelete Action = "delete"
)

// Verdict is the overall outcome of a Decision.
type Verdict string

// The verdicts of a Decision.
const (
	// VerdictAllow lets the request through silently.
	VerdictAllow Verdict = "allow"
	// VerdictWarn lets the request through with a warning.
	VerdictWarn Verdict = "warn"
	// VerdictDeny refuses the request.
	VerdictDeny Verdict = "deny"
)

// Outcome is what one rule concluded about one request.
type Outcome string

// The outcomes of a Result.
const (
	// OutcomePass means the rule found nothing wrong.
	OutcomePass Outcome = "pass"
	// OutcomeFail means the rule found a violation.
	OutcomeFail Outcome = "fail"
	// OutcomeInert means the rule type is not checked by this build.
	OutcomeInert Outcome = "inert"
	// OutcomeExcepted means the rule found a violation that an exception
	// in force covers: it neither blocks nor counts as a warning for the
	// verdict, and Result.AppliedException names the exception.
	OutcomeExcepted Outcome = "excepted"
	// OutcomeExempt means the rule does not judge this manifest because of
	// what it is (a signature, attestation, SBOM or other artifact is not an
	// image); Finding says why. It never blocks nor warns.
	OutcomeExempt Outcome = "exempt"
)

// NoRule is the rule id of the one result of a decision no rule applies to.
const NoRule = "(no rule)"

// Rule types understood by Parse. TypeTag, TypeImmutable and TypeSignature
// are enforced; the others are accepted and reported as not yet enforced.
const (
	// TypeTag checks tag names: forbidden names, allowed patterns, pulls by digest.
	TypeTag = "tag"
	// TypeImmutable forbids moving an existing tag to another digest.
	TypeImmutable = "immutable"
	// TypeSignature requires pulled images to be signed by trusted authorities.
	TypeSignature = "signature"
	// TypeVulnerability checks the scan findings: known vulnerabilities of the image's packages.
	TypeVulnerability = "vulnerability"
	// TypeSecret checks for secrets embedded in the image.
	TypeSecret = "secret"
	// TypeConfig checks the image configuration (user, labels, base image).
	TypeConfig = "config"
	// TypePlatform checks that an image or index is for a platform the environment's
	// nodes run (Environment.Platforms).
	TypePlatform = "platform"
)

var (
	modeNames   = []string{string(ModeOff), string(ModeObserve), string(ModeWarn), string(ModeBlock)}
	actionNames = []string{string(ActionPush), string(ActionPull), string(ActionDelete)}
	typeNames   = []string{TypeTag, TypeImmutable, TypeSignature, TypeVulnerability, TypeSecret, TypeConfig, TypePlatform}
)

// dateLayout is the only date format a policy file accepts.
const dateLayout = "2006-01-02"

// effectiveMode is the mode of a rule configured with mode, observeUntil and
// enforceFrom (zero when unset) at the moment now. Dates are whole UTC days:
// a date means its midnight UTC. pending is the enforceFrom date when it is
// set, the rule blocks and the date has not been reached.
func effectiveMode(mode Mode, observeUntil, enforceFrom, now time.Time) (eff Mode, pending *time.Time) {
	if mode == ModeOff {
		return ModeOff, nil
	}
	if mode == ModeBlock && !enforceFrom.IsZero() && now.Before(enforceFrom) {
		t := enforceFrom
		pending = &t
	}
	switch {
	case !observeUntil.IsZero() && now.Before(observeUntil):
		return ModeObserve, pending
	case pending != nil:
		return ModeWarn, pending
	}
	return mode, nil
}
