package audit

import "time"

// Event types.
const (
	// TypeDecision is one admission decision for a push or a pull.
	TypeDecision = "decision"
	// TypeQuery is a client asking what the decision on an image would be (the decisions
	// API behind "portcullis check"): nothing was pushed or served.
	TypeQuery = "query"
	// TypeExceptionExpiring is the daily reminder that an exception is about to end.
	TypeExceptionExpiring = "exception.expiring"
	// TypeMirrorTagMoved: a pull-through source moved a tag and the on-prem tag followed,
	// the new digest being allowed (Digest is the new one, PreviousDigest the old one).
	TypeMirrorTagMoved = "mirror.tag.moved"
	// TypeMirrorTagKept: a pull-through source moved a tag to a digest that is not served
	// (refused, or not decided yet); the on-prem tag stays at PreviousDigest.
	TypeMirrorTagKept = "mirror.tag.kept"
)

// Event is one audit record, written as a single JSON object.
type Event struct {
	Time       time.Time `json:"time"`
	Type       string    `json:"type"`
	RequestID  string    `json:"requestId,omitempty"`
	Action     string    `json:"action,omitempty"`
	Repository string    `json:"repository,omitempty"`
	Reference  string    `json:"reference,omitempty"`
	Digest     string    `json:"digest,omitempty"`
	// PreviousDigest is, for a mirror.tag.* event, the digest the on-prem tag pointed at.
	PreviousDigest string `json:"previousDigest,omitempty"`
	// Message says why, for events that are not decisions (a refused tag move).
	Message string `json:"message,omitempty"`
	// Kind is what the manifest is, decided by its content: image, index, signature,
	// attestation, sbom, referrers or artifact; empty when the body was not seen.
	Kind           string   `json:"kind,omitempty"`
	Environment    string   `json:"environment,omitempty"`
	Verdict        string   `json:"verdict,omitempty"`
	Client         Client   `json:"client"`
	Results        []Result `json:"results,omitempty"`
	PolicyRevision string   `json:"policyRevision,omitempty"`
	// Undecided says why evidence could not be gathered; FailMode then says how the
	// environment's fail mode resolved it.
	Undecided string `json:"undecided,omitempty"`
	FailMode  string `json:"failMode,omitempty"`
	// Vulnerabilities, for a decision on a scanned image, names the baseline its findings
	// were compared with and lists the new findings apart from the inherited ones.
	Vulnerabilities *Vulnerabilities `json:"vulnerabilities,omitempty"`
	// ScanEvidence, for a decision that needed a vulnerability scan, says where the
	// findings came from: a signed CI scan (tool, times, attestation, signer) or the
	// gateway's own scan, and then why no CI scan was used when the environment takes them.
	ScanEvidence string `json:"scanEvidence,omitempty"`
	// Exception and DaysLeft describe the exception of an exception.expiring event.
	Exception *Exception `json:"exception,omitempty"`
	DaysLeft  int        `json:"daysLeft,omitempty"`
	// Service is the service that owns the repository: of the request, for a decision;
	// of the exception's scope, for an exception.expiring event (when one service owns it).
	Service *Service `json:"service,omitempty"`
}

// Service names the service that owns a repository, from the policy's services.
type Service struct {
	// Name is the service's name.
	Name string `json:"name"`
	// Team is the team that owns it.
	Team string `json:"team"`
	// Tier is its criticality (critical, high, medium, low), "" when not declared.
	Tier string `json:"tier,omitempty"`
}

// Client identifies who made the request.
type Client struct {
	Addr string `json:"addr,omitempty"`
	User string `json:"user,omitempty"`
}

// Result is one rule's outcome within a decision.
type Result struct {
	Rule        string `json:"rule"`
	Type        string `json:"type"`
	Mode        string `json:"mode"`
	Outcome     string `json:"outcome"`
	Finding     string `json:"finding,omitempty"`
	Fix         string `json:"fix,omitempty"`
	EnforceFrom string `json:"enforceFrom,omitempty"`
	// Exception is the exception that covered a failing result (outcome "excepted").
	Exception *Exception `json:"exception,omitempty"`
	// ExpiredException is the exception that would have covered it, had it not expired.
	ExpiredException *Exception `json:"expiredException,omitempty"`
}

// Exception names an exception in an event.
type Exception struct {
	ID      string `json:"id"`
	Owner   string `json:"owner"`
	Expires string `json:"expires"`
	Ticket  string `json:"ticket,omitempty"`
}
