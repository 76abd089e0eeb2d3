package ocsf

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/audit"
)

// Version is the OCSF schema version the records follow (metadata.version).
const Version = "1.3.0"

// Class uids and names of the records Encode writes (OCSF 1.3.0 categories.json and
// events/application/api.json, events/findings/vulnerability_finding.json, events/base_event.json).
const (
	ClassAPIActivity          = 6003
	ClassVulnerabilityFinding = 2002
	// ClassBaseEvent carries events no specific class fits (exception reminders).
	ClassBaseEvent = 0
)

// Record is one OCSF record.
type Record struct {
	// ID is the record's unique, stable id (metadata.uid): the event's id for its main
	// record, with "-f<n>" appended for its n-th finding.
	ID string
	// ClassUID is the record's class_uid; ClassName is its snake_case class name.
	ClassUID  int
	ClassName string
	// JSON is the record.
	JSON json.RawMessage
}

// Encoder turns decision events into OCSF records.
type Encoder struct {
	// ProductVersion is the gateway's version (metadata.product.version).
	ProductVersion string
}

// Encode returns the records for e, whose stable id is id: one API Activity for a decision
// or query, then one Vulnerability Finding per finding (new and inherited); a Base Event
// for other event types.
func (enc Encoder) Encode(e audit.Event, id string) ([]Record, error) {
	native, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encoding event: %w", err)
	}
	var recs []Record
	add := func(rid string, class int, name string, obj map[string]any) error {
		b, err := json.Marshal(obj)
		if err != nil {
			return fmt.Errorf("encoding OCSF %s: %w", name, err)
		}
		recs = append(recs, Record{ID: rid, ClassUID: class, ClassName: name, JSON: b})
		return nil
	}
	switch e.Type {
	case audit.TypeDecision, audit.TypeQuery:
		api := enc.apiActivity(e, id, native)
		if v := e.Vulnerabilities; v != nil {
			// The findings go out as records of their own: the API Activity keeps their
			// counts and the baseline, not the lists, so its size does not grow with them.
			slim := e
			slim.Vulnerabilities = &audit.Vulnerabilities{Baseline: v.Baseline, BaselineNote: v.BaselineNote}
			b, err := json.Marshal(slim)
			if err != nil {
				return nil, fmt.Errorf("encoding event: %w", err)
			}
			api["unmapped"] = map[string]any{"portcullis": json.RawMessage(b), "findings": map[string]int{"new": len(v.New), "inherited": len(v.Inherited)}}
		}
		if err := add(id, ClassAPIActivity, "api_activity", api); err != nil {
			return nil, err
		}
		if v := e.Vulnerabilities; v != nil {
			n := 0
			for _, group := range []struct {
				fs        []audit.Finding
				inherited bool
			}{{v.New, false}, {v.Inherited, true}} {
				for _, f := range group.fs {
					n++
					rid := fmt.Sprintf("%s-f%d", id, n)
					if err := add(rid, ClassVulnerabilityFinding, "vulnerability_finding", enc.finding(e, id, rid, f, group.inherited)); err != nil {
						return nil, err
					}
				}
			}
		}
	default:
		if err := add(id, ClassBaseEvent, "base_event", enc.baseEvent(e, id, native)); err != nil {
			return nil, err
		}
	}
	return recs, nil
}

func (enc Encoder) metadata(e audit.Event, uid, logName string) map[string]any {
	m := map[string]any{
		"version":  Version,
		"uid":      uid,
		"log_name": logName,
		"product": map[string]any{
			"name":        "portcullis",
			"vendor_name": "portcullis",
			"version":     enc.ProductVersion,
		},
	}
	if e.RequestID != "" {
		m["correlation_uid"] = e.RequestID
	}
	return m
}

// classification fills the attributes every class requires (includes/classification.json,
// includes/occurrence.json, base_event.json).
func classification(obj map[string]any, category int, categoryName string, class int, className string, activity int, activityName string, severity int, t time.Time) {
	obj["category_uid"] = category
	obj["category_name"] = categoryName
	obj["class_uid"] = class
	obj["class_name"] = className
	obj["activity_id"] = activity
	obj["activity_name"] = activityName
	obj["type_uid"] = class*100 + activity
	obj["type_name"] = className + ": " + activityName
	obj["severity_id"] = severity
	obj["severity"] = severityNames[severity]
	obj["time"] = t.UnixMilli()
}

var severityNames = map[int]string{0: "Unknown", 1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical", 6: "Fatal", 99: "Other"}

// Activities of API Activity (events/application/api.json).
var apiActivities = map[string]struct {
	id   int
	name string
}{
	"push": {1, "Create"}, "pull": {2, "Read"}, "delete": {4, "Delete"},
}

func (enc Encoder) apiActivity(e audit.Event, id string, native []byte) map[string]any {
	act, ok := apiActivities[e.Action]
	if !ok {
		act.id, act.name = 99, "Other"
	}
	severity, status, statusName := 1, 1, "Success"
	switch e.Verdict {
	case "warn":
		severity = 2
	case "deny":
		severity, status, statusName = 3, 2, "Failure"
	}
	if e.Undecided != "" && severity < 3 {
		severity = 3
	}
	obj := map[string]any{}
	classification(obj, 6, "Application Activity", ClassAPIActivity, "API Activity", act.id, act.name, severity, e.Time)
	obj["metadata"] = enc.metadata(e, id, e.Type)
	obj["status_id"] = status
	obj["status"] = statusName
	obj["status_detail"] = e.Verdict
	obj["message"] = message(e)
	user := e.Client.User
	if user == "" {
		user = "anonymous"
	}
	obj["actor"] = map[string]any{"user": map[string]any{"name": user}}
	api := map[string]any{"operation": e.Action, "service": map[string]any{"name": "portcullis"}}
	if e.Type == audit.TypeQuery {
		api["operation"] = "query " + e.Action
	}
	if e.RequestID != "" {
		api["request"] = map[string]any{"uid": e.RequestID}
	}
	obj["api"] = api
	obj["src_endpoint"] = endpoint(e.Client.Addr)
	obj["resources"] = []any{resource(e)}
	obj["unmapped"] = map[string]any{"portcullis": json.RawMessage(native)}
	return obj
}

// endpoint is the client's network endpoint; an unknown address is named "unknown" (the
// class requires src_endpoint, which needs one of ip, name, ...).
func endpoint(addr string) map[string]any {
	if addr == "" {
		return map[string]any{"name": "unknown"}
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	ep := map[string]any{}
	if net.ParseIP(host) != nil {
		ep["ip"] = host
	} else {
		ep["name"] = host
	}
	var p int
	if _, err := fmt.Sscanf(port, "%d", &p); err == nil && p > 0 && p < 65536 {
		ep["port"] = p
	}
	return ep
}

// Subject is the image an event is about: repo@digest, else repo:reference, else repo.
func Subject(e audit.Event) string {
	switch {
	case e.Digest != "":
		return e.Repository + "@" + e.Digest
	case e.Reference != "":
		return e.Repository + ":" + e.Reference
	}
	return e.Repository
}

func resource(e audit.Event) map[string]any {
	r := map[string]any{"uid": Subject(e), "name": e.Repository, "type": "container_image"}
	if e.Kind != "" {
		r["type"] = "oci_" + e.Kind
	}
	if e.Service != nil {
		r["owner"] = map[string]any{"name": e.Service.Team}
		r["group"] = map[string]any{"name": e.Service.Name}
		if e.Service.Tier != "" {
			r["criticality"] = e.Service.Tier
		}
	}
	return r
}

func message(e audit.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s of %s: %s", e.Action, Subject(e), e.Verdict)
	if e.Environment != "" {
		fmt.Fprintf(&b, " in %s", e.Environment)
	}
	var failing []string
	for _, r := range e.Results {
		if r.Outcome == "fail" {
			failing = append(failing, r.Rule)
		}
	}
	if len(failing) > 0 {
		fmt.Fprintf(&b, " (failing: %s)", strings.Join(failing, ", "))
	}
	if e.Undecided != "" {
		fmt.Fprintf(&b, "; undecided (%s), fail mode %s", e.Undecided, e.FailMode)
	}
	return b.String()
}

// FindingSeverity maps a finding's severity word to an OCSF severity_id.
func FindingSeverity(s string) int {
	switch strings.ToLower(s) {
	case "negligible", "low":
		return 2
	case "medium", "moderate":
		return 3
	case "high", "important":
		return 4
	case "critical":
		return 5
	}
	return 0
}

func (enc Encoder) finding(e audit.Event, eventID, id string, f audit.Finding, inherited bool) map[string]any {
	obj := map[string]any{}
	sev := FindingSeverity(f.Severity)
	classification(obj, 2, "Findings", ClassVulnerabilityFinding, "Vulnerability Finding", 1, "Create", sev, e.Time)
	md := enc.metadata(e, id, "vulnerability_finding")
	md["correlation_uid"] = eventID
	obj["metadata"] = md
	obj["status_id"] = 1
	obj["status"] = "New"
	sum := sha256.Sum256([]byte(Subject(e) + "\x00" + f.ID + "\x00" + f.Package + "\x00" + f.Version))
	title := f.ID + " in " + f.Package
	if f.Version != "" {
		title += " " + f.Version
	}
	info := map[string]any{"uid": hex.EncodeToString(sum[:16]), "title": title}
	if t, err := time.Parse(time.DateOnly, f.FirstSeen); err == nil {
		info["first_seen_time"] = t.UnixMilli()
	}
	if inherited {
		info["types"] = []string{"inherited"}
	} else {
		info["types"] = []string{"new"}
	}
	obj["finding_info"] = info
	vuln := map[string]any{"cve": map[string]any{"uid": f.ID}, "title": f.ID}
	if f.Severity != "" {
		vuln["severity"] = f.Severity
	}
	if f.Package != "" && f.Version != "" {
		vuln["affected_packages"] = []any{map[string]any{"name": f.Package, "version": f.Version}}
	}
	obj["vulnerabilities"] = []any{vuln}
	obj["resources"] = []any{resource(e)}
	un := map[string]any{"inherited": inherited, "decision": eventID, "verdict": e.Verdict}
	if v := e.Vulnerabilities; v != nil && v.Baseline != nil {
		un["baseline"] = v.Baseline.Repository + "@" + v.Baseline.Digest
	}
	obj["unmapped"] = map[string]any{"portcullis": un}
	return obj
}

func (enc Encoder) baseEvent(e audit.Event, id string, native []byte) map[string]any {
	obj := map[string]any{}
	sev := 1
	if e.Type == audit.TypeExceptionExpiring {
		sev = 2
	}
	classification(obj, 0, "Uncategorized", ClassBaseEvent, "Base Event", 99, "Other", sev, e.Time)
	obj["metadata"] = enc.metadata(e, id, e.Type)
	msg := e.Type
	if x := e.Exception; x != nil {
		msg = fmt.Sprintf("exception %s (owner %s) expires %s, in %d days", x.ID, x.Owner, x.Expires, e.DaysLeft)
	}
	obj["message"] = msg
	obj["unmapped"] = map[string]any{"portcullis": json.RawMessage(native)}
	return obj
}
