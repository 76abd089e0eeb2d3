package policy

import (
	"maps"
	"regexp"
	"time"

	"go.yaml.in/yaml/v3"
)

// DefaultEnvironment is the environment of an image that matches no
// environment of the policy.
const DefaultEnvironment = "default"

// Fail modes of an environment: what the gateway does when it cannot decide.
const (
	// FailClosed denies the request when a decision cannot be made.
	FailClosed = "closed"
	// FailOpen allows the request, with a warning, when a decision cannot be made.
	FailOpen = "open"
)

// Policy is a compiled, validated policy file. It is immutable and safe for
// concurrent use.
type Policy struct {
	revision         string
	exceptionProcess string
	authorities      []authority
	envs             []environment
	rules            []rule
	exceptions       []exception
	exceptionRules   ExceptionRules
	services         []service
}

// Environment is one environment of a policy, as written in the file.
type Environment struct {
	// Name identifies the environment in rules and decisions.
	Name string `json:"name"`
	// Repositories are globs; empty means any repository.
	Repositories []string `json:"repositories,omitempty"`
	// Hosts are host-name patterns (without port); empty means any host.
	Hosts []string `json:"hosts,omitempty"`
	// FailMode is FailClosed or FailOpen.
	FailMode string `json:"failMode"`
	// Unscanned says how a pull of an image not scanned yet (it did not come through
	// the gateway) is answered; nil leaves it to the gateway's scan.pullWait and FailMode.
	Unscanned *Unscanned `json:"unscanned,omitempty"`
	// Platforms are the platforms the environment's nodes run, os/arch[/variant] as
	// written (linux/arm64/v8); platform rules judge images against them.
	Platforms []string `json:"platforms,omitempty"`
	// Scanner chooses who scans the environment's images for vulnerability rules:
	// ScannerBuiltin (also ""), the name of an external scanner adapter the gateway
	// configures, ScannerBoth (the built-in scanner and the gateway's one adapter), or a
	// set written as a list (builtin and adapter names), kept here joined by commas
	// ("builtin,trivy,aqua"). With several, findings are united, each naming its source.
	Scanner string `json:"scanner,omitempty"`
	// CIScans, when set, lets a signed vulnerability scan made in CI stand for the
	// gateway's own scan of the environment's images (see CIScans).
	CIScans *CIScans `json:"ciScans,omitempty"`
}

// Scanner choices of an environment (Environment.Scanner).
const (
	// ScannerBuiltin is the gateway's own scanner.
	ScannerBuiltin = "builtin"
	// ScannerBoth is the built-in scanner and the gateway's one external adapter.
	ScannerBoth = "both"
)

// What a pull of an image not scanned yet gets when its scan outlasts Unscanned.Wait
// (Unscanned.Then).
const (
	// UnscannedRetry refuses it as a temporary failure ("being scanned") with
	// Retry-After, while the scan goes on.
	UnscannedRetry = "retry"
	// UnscannedAllow lets it through with a warning while the scan goes on; the next
	// pull is judged by the scan.
	UnscannedAllow = "allow"
)

// Unscanned is an environment's answer to the first pull of an image the gateway has not
// scanned: wait for the scan up to Wait, then Then.
type Unscanned struct {
	// Wait is how long the pull waits for the scan; 0 answers at once.
	Wait time.Duration `json:"wait"`
	// Then is UnscannedRetry or UnscannedAllow; "" follows the environment's FailMode
	// (closed: retry, open: allow).
	Then string `json:"then,omitempty"`
}

// environment is a compiled Environment.
type environment struct {
	Environment
	repos []glob
	hosts []string
	// platforms are the parsed Platforms.
	platforms []Platform
	// set while parsing, for messages
	path     string
	nameNode *yaml.Node
	// ciAuthItems are the authority names of CIScans, resolved by validateReferences.
	ciAuthItems []item
}

// Rule is one rule of a policy, as written in the file. Dates are midnight
// UTC; a zero time means the date is not set.
type Rule struct {
	// ID names the rule in results and messages.
	ID string `json:"id"`
	// Type is one of TypeTag, TypeImmutable, TypeSignature,
	// TypeVulnerability, TypeSecret, TypeConfig, TypePlatform.
	Type string `json:"type"`
	// Description is free text for people.
	Description string `json:"description,omitempty"`
	// Mode is the configured mode, before dates are applied.
	Mode Mode `json:"mode"`
	// EnforceFrom is the day from which a block rule blocks; before it, it warns.
	EnforceFrom time.Time `json:"enforceFrom,omitzero"`
	// ObserveUntil is the day until which the rule only observes.
	ObserveUntil time.Time `json:"observeUntil,omitzero"`
	// Environments are the environment names the rule applies in; empty means all.
	Environments []string `json:"environments,omitempty"`
	// Repositories are globs the rule applies to; empty means all.
	Repositories []string `json:"repositories,omitempty"`
	// Actions are the actions the rule applies to; empty means every
	// action (push, pull and delete; each rule type judges the actions it
	// concerns: deletes only immutable rules). Signature rules always have [pull].
	Actions []Action `json:"actions,omitempty"`
	// Forbidden are tag names a tag rule refuses (exact, case-sensitive).
	Forbidden []string `json:"forbidden,omitempty"`
	// Allowed are regular expressions (RE2) one of which a tag must match.
	Allowed []string `json:"allowed,omitempty"`
	// RequireDigest makes a tag rule refuse pulls by a tag that Allowed does not match.
	RequireDigest bool `json:"requireDigest,omitempty"`
	// ExceptionProcess overrides the policy's exception process text.
	ExceptionProcess string `json:"exceptionProcess,omitempty"`
	// Authorities are the authority names a signature rule accepts.
	Authorities []string `json:"authorities,omitempty"`
	// Threshold is how many distinct Authorities must have signed, for a
	// signature rule (1 unless set).
	Threshold int `json:"threshold,omitempty"`
	// PerPlatform makes a signature rule require every platform manifest of
	// an index to carry its own signature: the index's does not cover it.
	PerPlatform bool `json:"perPlatform,omitempty"`
	// Check is what a config rule checks: ConfigCheckRoot, ConfigCheckLabels or
	// ConfigCheckBaseImage.
	Check string `json:"check,omitempty"`
	// Labels are the labels a config rule with check "labels" requires.
	Labels []string `json:"labels,omitempty"`
	// BaseImages are globs of the base image names a config rule with check
	// "base-image" allows (repository path with registry host, without tag or digest).
	BaseImages []string `json:"baseImages,omitempty"`
	// SecretTypes restrict a secret rule to these secret types; empty means all.
	SecretTypes []string `json:"secretTypes,omitempty"`
	// Severity is the minimum severity a vulnerability rule counts:
	// SeverityCritical, SeverityHigh, SeverityMedium or SeverityLow.
	Severity string `json:"severity,omitempty"`
	// Fixable makes a vulnerability rule count only findings that have a fix.
	Fixable bool `json:"fixable,omitempty"`
	// Unknown is what a vulnerability rule does with findings of unknown
	// severity: UnknownCount (the default: an unknown severity is never
	// taken for a low one) or UnknownIgnore.
	Unknown string `json:"unknown,omitempty"`
	// Incomplete is what a vulnerability or secret rule concludes from an
	// incomplete scan (a layer unreadable, truncated or over a limit):
	// IncompleteFail (the default: "could not check", which the environment's
	// fail mode decides) or IncompletePass (judged on what was scanned, and
	// said to be incomplete, never clean).
	Incomplete string `json:"incomplete,omitempty"`
	// OSUnknown is what a vulnerability rule concludes when the image has OS
	// packages but no known distribution release: OSUnknownFail (the default)
	// or OSUnknownPass.
	OSUnknown string `json:"osUnknown,omitempty"`
	// Unsearched is what a secret rule does with layer files the search did
	// not read in full: UnsearchedIgnore (the default: noted in the result),
	// UnsearchedWarn or UnsearchedFail.
	Unsearched string `json:"unsearched,omitempty"`
	// New makes a vulnerability rule judge what an image adds to its
	// baseline (VulnerabilityEvidence.Baseline): findings the baseline has
	// too are inherited; they warn, and block only once their Remediation
	// window has passed.
	New bool `json:"new,omitempty"`
	// Remediation is, for a vulnerability rule with New, how many days an
	// inherited finding of each severity (SeverityCritical ... SeverityLow,
	// SeverityUnknown) may stay before it blocks, counted from the day its
	// repository first showed it. A severity without a window only warns.
	Remediation map[string]int `json:"remediation,omitempty"`
}

// rule is a compiled Rule.
type rule struct {
	Rule
	repos     []glob
	forbidden map[string]bool
	allowed   []*regexp.Regexp
	// auths are the Authorities of a signature rule, resolved.
	auths []Authority
	// baseGlobs are the compiled BaseImages of a config rule.
	baseGlobs []glob
	// platformEnvs are, for a platform rule, the environments that declare platforms:
	// the rule judges only those.
	platformEnvs map[string]bool
	// thresholdSet: the threshold field holds a whole number.
	thresholdSet bool
	// set while parsing, for messages
	path      string
	fields    map[string]field
	envItems  []item
	authItems []item
}

// Revision identifies the policy source: "sha256:" and the hex SHA-256 of
// the bytes it was parsed from or, when authorities read key files or
// exceptionFiles matched files, of those bytes and every such file's name
// and content (so that replacing a key or changing an exception file
// changes the revision).
func (p *Policy) Revision() string { return p.revision }

// ExceptionProcess is the policy-wide text telling people how to request an
// exception; a rule may override it.
func (p *Policy) ExceptionProcess() string { return p.exceptionProcess }

// Environments returns a copy of the environments, in policy order.
func (p *Policy) Environments() []Environment {
	out := make([]Environment, len(p.envs))
	for i, e := range p.envs {
		out[i] = e.Environment
		out[i].Repositories = append([]string(nil), e.Repositories...)
		out[i].Hosts = append([]string(nil), e.Hosts...)
		out[i].Platforms = append([]string(nil), e.Platforms...)
		if e.Unscanned != nil {
			u := *e.Unscanned
			out[i].Unscanned = &u
		}
		if e.CIScans != nil {
			out[i].CIScans = p.CIScans(e.Name)
		}
	}
	return out
}

// Rules returns a deep copy of the rules, in policy order.
func (p *Policy) Rules() []Rule {
	out := make([]Rule, len(p.rules))
	for i, r := range p.rules {
		out[i] = r.Rule
		out[i].Environments = append([]string(nil), r.Environments...)
		out[i].Repositories = append([]string(nil), r.Repositories...)
		out[i].Actions = append([]Action(nil), r.Actions...)
		out[i].Forbidden = append([]string(nil), r.Forbidden...)
		out[i].Allowed = append([]string(nil), r.Allowed...)
		out[i].Authorities = append([]string(nil), r.Authorities...)
		out[i].Labels = append([]string(nil), r.Labels...)
		out[i].BaseImages = append([]string(nil), r.BaseImages...)
		out[i].SecretTypes = append([]string(nil), r.SecretTypes...)
		out[i].Remediation = maps.Clone(r.Remediation)
	}
	return out
}
