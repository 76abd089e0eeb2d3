package proxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/policy"
)

// DecisionReport is the decisions API's answer: the decision the gateway would make for
// one image on the door that was asked. It is what "portcullis check" prints.
type DecisionReport struct {
	// DecisionID identifies this answer in the gateway's audit log (an event of type
	// query with this requestId) and its X-Request-Id header.
	DecisionID string `json:"decisionId"`
	// Action is the request decided on: pull or push.
	Action string `json:"action"`
	// Repository and Reference are the image asked about; Digest is the digest of the
	// manifest decided on (a tag is resolved to it first).
	Repository string `json:"repository"`
	Reference  string `json:"reference"`
	Digest     string `json:"digest"`
	// Environment is the environment the door and repository put the image in.
	Environment    string `json:"environment"`
	PolicyRevision string `json:"policyRevision,omitempty"`
	// Verdict is allow, warn or deny.
	Verdict string `json:"verdict"`
	// Message is, for a deny, the refusal the client would get.
	Message string `json:"message,omitempty"`
	// Warnings are the lines a client let through would get as Warning headers.
	Warnings []string `json:"warnings,omitempty"`
	// Undecided is set when evidence could not be gathered.
	Undecided *Undecided `json:"undecided,omitempty"`
	// Results has one entry per rule that applies, in policy order.
	Results []RuleResult `json:"results"`
	// ScanEvidence says where the vulnerability findings came from: a signed CI scan, or
	// the gateway's own scan (and why no CI scan was used, when the environment takes
	// them); "" when no scan was needed.
	ScanEvidence string `json:"scanEvidence,omitempty"`
	// Deadlines are the remediation deadlines of inherited vulnerability findings.
	Deadlines []policy.Deadline `json:"deadlines,omitempty"`
	// Service is the service that owns the repository, when the policy names one.
	Service *policy.ServiceRef `json:"service,omitempty"`
	// Disagreements are the vulnerabilities the environment's scanners (two or more) do
	// not report alike.
	Disagreements []policy.Disagreement `json:"disagreements,omitempty"`
	// Recorded lists the decisions the records store holds about this image, newest
	// first (at most 20): when it was pushed and judged, and how. RecordedError says why
	// they could not be read.
	Recorded      []gate.RecordedDecision `json:"recorded,omitempty"`
	RecordedError string                  `json:"recordedError,omitempty"`
}

// Undecided says which evidence could not be gathered and what the fail mode made of it.
type Undecided struct {
	// Reason says what could not be gathered and why.
	Reason string `json:"reason"`
	// FailMode is the environment's fail mode when a blocking rule needed the evidence
	// ("closed" refuses, "open" lets through with a warning), "" when none did.
	FailMode string `json:"failMode,omitempty"`
	// Lasting: retrying cannot help, someone must act.
	Lasting bool `json:"lasting,omitempty"`
	// Unavailable: the request would be refused as a temporary failure (503); retry
	// after RetryAfterSeconds.
	Unavailable       bool `json:"unavailable,omitempty"`
	RetryAfterSeconds int  `json:"retryAfterSeconds,omitempty"`
}

// RuleResult is one rule's outcome in a DecisionReport.
type RuleResult struct {
	Rule    string `json:"rule"`
	Type    string `json:"type"`
	Mode    string `json:"mode"`
	Outcome string `json:"outcome"`
	// Message is the one line a client would be shown for it.
	Message string `json:"message"`
	Finding string `json:"finding,omitempty"`
	Fix     string `json:"fix,omitempty"`
	// BlockingFrom is the day (YYYY-MM-DD) a rule that warns today starts to block.
	BlockingFrom string `json:"blockingFrom,omitempty"`
	// RequestException says how to ask for an exception.
	RequestException string `json:"requestException,omitempty"`
	// Exception is the exception in force that covers the result; ExpiredException the
	// one that would have, had it not ended.
	Exception        *Exception `json:"exception,omitempty"`
	ExpiredException *Exception `json:"expiredException,omitempty"`
	// CouldNotCheck says what the rule could not check.
	CouldNotCheck string `json:"couldNotCheck,omitempty"`
}

// Exception names an exception in a DecisionReport.
type Exception struct {
	ID    string `json:"id"`
	Owner string `json:"owner"`
	// Expires is its last day in force (YYYY-MM-DD).
	Expires  string `json:"expires"`
	DaysLeft int    `json:"daysLeft"`
	Ticket   string `json:"ticket,omitempty"`
}

// newDecisionReport builds the report of res.
func newDecisionReport(id string, route Route, action policy.Action, dgst string, res gate.Result) *DecisionReport {
	d := res.Decision
	rep := &DecisionReport{
		DecisionID: id, Action: string(action), Repository: route.Name, Reference: route.Reference, Digest: dgst,
		Environment: d.Environment, PolicyRevision: d.PolicyRevision, Verdict: string(res.Verdict),
		Warnings: res.Warnings, Deadlines: res.Deadlines, Service: d.Service, Results: []RuleResult{},
	}
	if res.Verdict == policy.VerdictDeny {
		rep.Message = res.Message
	}
	if res.Vulnerabilities != nil {
		rep.Disagreements = res.Vulnerabilities.Disagreements
	}
	rep.ScanEvidence = res.Vulnerabilities.ScanEvidence()
	if res.Undecided != "" {
		rep.Undecided = &Undecided{Reason: res.Undecided, FailMode: res.FailMode, Lasting: res.Lasting,
			Unavailable: res.Unavailable, RetryAfterSeconds: int(res.RetryAfter / time.Second)}
	}
	for _, r := range d.Results {
		rr := RuleResult{Rule: r.Rule, Type: r.Type, Mode: string(r.Mode), Outcome: string(r.Outcome), Message: r.Message(),
			Finding: r.Finding, Fix: r.Fix, RequestException: r.Exception, CouldNotCheck: r.CouldNotCheck,
			Exception: reportException(r.AppliedException), ExpiredException: reportException(r.ExpiredException)}
		if r.EnforceFrom != nil {
			rr.BlockingFrom = r.EnforceFrom.UTC().Format(time.DateOnly)
		}
		rep.Results = append(rep.Results, rr)
	}
	return rep
}

func reportException(a *policy.AppliedException) *Exception {
	if a == nil {
		return nil
	}
	return &Exception{ID: a.ID, Owner: a.Owner, Expires: a.Expires.UTC().Format(time.DateOnly), DaysLeft: a.DaysLeft, Ticket: a.Ticket}
}

// writeJSON sends v as a JSON document with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		writeError(w, nil, err)
		return
	}
	body = append(body, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", fmt.Sprint(len(body)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
