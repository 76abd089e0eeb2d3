package ocsf

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/audit"
)

// required lists, per class, the attributes OCSF 1.3.0 marks "requirement": "required",
// with where the schema says so (github.com/ocsf/ocsf-schema at tag 1.3.0), and the
// at_least_one constraints of the objects used.
var required = map[int][]string{
	// includes/classification.json: activity_id, category_uid, class_uid, type_uid;
	// includes/occurrence.json: time; base_event.json: metadata, severity_id;
	// objects/metadata.json: product, version; objects/product.json: vendor_name (and
	// _entity.json at_least_one of name, uid).
	ClassBaseEvent: {"activity_id", "category_uid", "class_uid", "type_uid", "time", "severity_id",
		"metadata", "metadata.version", "metadata.product", "metadata.product.vendor_name", "metadata.product.name"},
	// events/application/api.json: actor, api, src_endpoint; objects/api.json: operation;
	// objects/actor.json at_least_one of process, user, ... (user: at_least_one of
	// account, name, uid); objects/network_endpoint.json at_least_one of ip, name, ...
	ClassAPIActivity: {"actor", "actor.user.name", "api", "api.operation", "src_endpoint"},
	// events/findings/finding.json: finding_info; objects/finding_info.json: uid, title;
	// events/findings/vulnerability_finding.json: vulnerabilities; objects/vulnerability.json
	// at_least_one of cve, cwe; objects/cve.json: uid; objects/package.json: name, version.
	ClassVulnerabilityFinding: {"finding_info", "finding_info.uid", "finding_info.title", "vulnerabilities",
		"vulnerabilities.0.cve.uid", "vulnerabilities.0.affected_packages.0.name", "vulnerabilities.0.affected_packages.0.version"},
}

func lookup(v any, path string) (any, bool) {
	for _, p := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[p]; !ok {
				return nil, false
			}
		case []any:
			if p != "0" || len(x) == 0 {
				return nil, false
			}
			v = x[0]
		default:
			return nil, false
		}
	}
	return v, v != nil && v != ""
}

func decision() audit.Event {
	return audit.Event{
		Time: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC), Type: audit.TypeDecision, RequestID: "req-1",
		Action: "pull", Repository: "team/app", Reference: "v1", Digest: "sha256:" + strings.Repeat("a", 64),
		Kind: "image", Environment: "prod", Verdict: "deny", Client: audit.Client{Addr: "10.0.0.7:51234", User: "ci"},
		Results: []audit.Result{{Rule: "no-critical", Type: "vulnerability", Mode: "block", Outcome: "fail", Finding: "CVE-2024-1 in openssl"}},
		Vulnerabilities: &audit.Vulnerabilities{
			New:       []audit.Finding{{ID: "CVE-2024-1", Package: "openssl", Version: "3.0.1", Severity: "CRITICAL", FirstSeen: "2026-12-01"}},
			Inherited: []audit.Finding{{ID: "GHSA-xxxx-yyyy-zzzz", Package: "lodash", Version: "4.17.20", Severity: "moderate"}},
		},
	}
}

func TestRecordsCarryEveryRequiredAttribute(t *testing.T) {
	enc := Encoder{ProductVersion: "1.2.3"}
	events := []audit.Event{decision(), {Time: time.Now(), Type: audit.TypeExceptionExpiring, Exception: &audit.Exception{ID: "x", Owner: "o", Expires: "2027-01-01"}, DaysLeft: 3}}
	q := decision()
	q.Type, q.Client, q.Vulnerabilities = audit.TypeQuery, audit.Client{}, nil
	events = append(events, q)
	classes := map[int]int{}
	for _, e := range events {
		recs, err := enc.Encode(e, "evt-1")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			classes[r.ClassUID]++
			var obj map[string]any
			if err := json.Unmarshal(r.JSON, &obj); err != nil {
				t.Fatal(err)
			}
			paths := append(append([]string(nil), required[ClassBaseEvent]...), required[r.ClassUID]...)
			for _, p := range paths {
				if _, ok := lookup(obj, p); !ok {
					t.Errorf("%s record of %s lacks required %s: %s", r.ClassName, e.Type, p, r.JSON)
				}
			}
			class, _ := lookup(obj, "class_uid")
			act, _ := lookup(obj, "activity_id")
			typ, _ := lookup(obj, "type_uid")
			if int(class.(float64))*100+int(act.(float64)) != int(typ.(float64)) {
				t.Errorf("type_uid %v != class_uid %v*100 + activity_id %v", typ, class, act)
			}
			if v, _ := lookup(obj, "metadata.version"); v != Version {
				t.Errorf("metadata.version %v", v)
			}
			if uid, _ := lookup(obj, "metadata.uid"); uid != r.ID {
				t.Errorf("metadata.uid %v, record id %s", uid, r.ID)
			}
		}
	}
	if classes[ClassAPIActivity] != 2 || classes[ClassVulnerabilityFinding] != 2 || classes[ClassBaseEvent] != 1 {
		t.Fatalf("classes written: %v", classes)
	}
}

func TestDecisionMapping(t *testing.T) {
	recs, err := Encoder{ProductVersion: "1.2.3"}.Encode(decision(), "evt-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || recs[1].ID != "evt-1-f1" || recs[2].ID != "evt-1-f2" {
		t.Fatalf("records %+v", recs)
	}
	var api map[string]any
	json.Unmarshal(recs[0].JSON, &api)
	for path, want := range map[string]any{
		"activity_id": 2.0, "type_uid": 600302.0, "category_uid": 6.0, "status_id": 2.0, "severity_id": 3.0,
		"time": float64(decision().Time.UnixMilli()), "src_endpoint.ip": "10.0.0.7", "src_endpoint.port": 51234.0,
		"actor.user.name": "ci", "api.operation": "pull", "api.request.uid": "req-1", "metadata.correlation_uid": "req-1",
		"resources.0.uid": "team/app@sha256:" + strings.Repeat("a", 64), "metadata.product.version": "1.2.3",
		"unmapped.portcullis.environment": "prod", "unmapped.findings.new": 1.0, "unmapped.findings.inherited": 1.0,
	} {
		if got, _ := lookup(api, path); got != want {
			t.Errorf("api_activity %s = %v, want %v", path, got, want)
		}
	}
	if _, ok := lookup(api, "unmapped.portcullis.vulnerabilities.new"); ok {
		t.Error("the API Activity repeats the findings sent as Vulnerability Findings")
	}
	var f1, f2 map[string]any
	json.Unmarshal(recs[1].JSON, &f1)
	json.Unmarshal(recs[2].JSON, &f2)
	for path, want := range map[string]any{
		"class_uid": 2002.0, "type_uid": 200201.0, "severity_id": 5.0, "vulnerabilities.0.cve.uid": "CVE-2024-1",
		"finding_info.types.0": "new", "metadata.correlation_uid": "evt-1",
	} {
		if got, _ := lookup(f1, path); got != want {
			t.Errorf("finding 1 %s = %v, want %v", path, got, want)
		}
	}
	if got, _ := lookup(f2, "severity_id"); got != 3.0 {
		t.Errorf("moderate maps to severity_id %v, want 3", got)
	}
	if got, _ := lookup(f2, "finding_info.types.0"); got != "inherited" {
		t.Errorf("inherited finding typed %v", got)
	}
	// The finding uid is stable: the same finding of the same image gets the same uid.
	again, _ := Encoder{}.Encode(decision(), "evt-2")
	var g1 map[string]any
	json.Unmarshal(again[1].JSON, &g1)
	a, _ := lookup(f1, "finding_info.uid")
	b, _ := lookup(g1, "finding_info.uid")
	if a != b {
		t.Errorf("finding uid changed between decisions: %v vs %v", a, b)
	}
}
