package main

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// vexPolicy has exceptions with and without vex, in force and not, on 2026-12-03.
const vexPolicy = `version: 1
rules:
  - {id: no-latest, type: tag, mode: block, forbidden: [latest]}
  - {id: critical-fixable, type: vulnerability, mode: block, severity: critical}
exceptionFiles: ["exceptions/*.yaml"]
exceptions:
  # in force, not_affected, digest-scoped, two vulnerabilities in one package
  - id: EXC-0201
    scope:
      repository: team-b/worker
      digest: sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
      vulnerabilities: [GHSA-jfh8-c2jp-5v3q, CVE-2026-1234]
      package: openssl
    reason: the worker never loads the TLS code of openssl
    owner: team-b@example.com
    approvedBy: security@example.com
    created: 2026-12-01
    expires: 2026-12-14
    severity: high
    closure: upgrade the base image to bookworm 12.9
    ticket: SEC-901
    vex:
      status: not_affected
      justification: vulnerable_code_not_in_execute_path
      impact: "the worker links openssl for hashing only; the TLS code is never called"
  # in force, affected, tag-scoped: the action defaults to the closure
  - id: EXC-0142
    scope: {repository: team-a/api, tag: "1.4.2", rules: [critical-fixable], vulnerabilities: [GO-2026-4001]}
    reason: no fixed release of the module yet
    owner: team-a@example.com
    approvedBy: platform@example.com
    created: 2026-11-20
    expires: 2026-12-04
    closure: upgrade the module when 1.2.3 is out
    vex: {status: affected}
  # in force, a vulnerability exception without vex: left out
  - id: EXC-0300
    scope: {repository: team-c/app, vulnerabilities: [CVE-2026-7777]}
    reason: r
    owner: team-c@example.com
    approvedBy: security@example.com
    created: 2026-11-20
    expires: 2026-12-20
    closure: c
  # in force, a rule exception: left out
  - id: EXC-0301
    scope: {repository: team-c/app, rules: [no-latest]}
    reason: r
    owner: team-c@example.com
    approvedBy: security@example.com
    created: 2026-11-20
    expires: 2026-12-20
    closure: c
`

// vexFile holds an expired and a not yet valid exception with vex, and one in force.
const vexFile = `- id: EXC-0100
  scope: {repository: team-c/app, vulnerabilities: [CVE-2026-0001]}
  reason: r
  owner: team-c@example.com
  approvedBy: security@example.com
  created: 2026-11-01
  expires: 2026-11-30
  closure: c
  vex: {status: not_affected, justification: component_not_present}
- id: EXC-0400
  scope: {repository: team-c/app, vulnerabilities: [CVE-2026-0002]}
  reason: r
  owner: team-c@example.com
  approvedBy: security@example.com
  created: 2026-12-10
  expires: 2026-12-20
  closure: c
  vex: {status: not_affected, justification: component_not_present}
- id: EXC-0500
  scope: {repository: team-c/app, vulnerabilities: [CVE-2026-0003]}
  reason: r
  owner: team-c@example.com
  approvedBy: security@example.com
  created: 2026-12-02
  expires: 2026-12-20
  closure: c
  vex: {status: under_investigation, action: "do not expose the admin port"}
`

// openVEX mirrors the OpenVEX v0.2.0 fields the command writes; decoding with unknown
// fields disallowed checks it writes no others.
type openVEX struct {
	Context    string `json:"@context"`
	ID         string `json:"@id"`
	Author     string `json:"author"`
	Timestamp  string `json:"timestamp"`
	Version    int    `json:"version"`
	Tooling    string `json:"tooling"`
	Statements []struct {
		Vulnerability struct {
			Name    string   `json:"name"`
			Aliases []string `json:"aliases"`
		} `json:"vulnerability"`
		Timestamp string `json:"timestamp"`
		Products  []struct {
			ID          string            `json:"@id"`
			Identifiers map[string]string `json:"identifiers"`
			Hashes      map[string]string `json:"hashes"`
		} `json:"products"`
		Status          string `json:"status"`
		StatusNotes     string `json:"status_notes"`
		Justification   string `json:"justification"`
		ImpactStatement string `json:"impact_statement"`
		ActionStatement string `json:"action_statement"`
	} `json:"statements"`
}

// decodeVEX decodes a document strictly.
func decodeVEX(t *testing.T, out string) openVEX {
	t.Helper()
	if !json.Valid([]byte(out)) {
		t.Fatalf("not JSON:\n%s", out)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	var doc openVEX
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("decoding: %v\n%s", err, out)
	}
	return doc
}

func vexTree(t *testing.T) string {
	return filepath.Join(writeTree(t, map[string]string{"policy.yaml": vexPolicy, "exceptions/team-c.yaml": vexFile}), "policy.yaml")
}

func TestExceptionsVEX(t *testing.T) {
	file := vexTree(t)
	args := []string{"vex", "--policy", file, "--at", "2026-12-03", "--registry", "registry.example:5000", "--author", "Security <security@example.com>"}
	code, out, errs := runExceptionsCmd(args...)
	if code != 0 || errs != "" {
		t.Fatalf("vex: %d %s", code, errs)
	}
	doc := decodeVEX(t, out)
	if doc.Context != "https://openvex.dev/ns/v0.2.0" || !strings.HasPrefix(doc.ID, "https://openvex.dev/docs/public/vex-") || len(doc.ID) != len("https://openvex.dev/docs/public/vex-")+64 ||
		doc.Author != "Security <security@example.com>" || doc.Timestamp != "2026-12-03T00:00:00Z" || doc.Version != 1 || doc.Tooling != "portcullis exceptions vex" {
		t.Errorf("document: %+v", doc)
	}
	// One statement per vulnerability of the exceptions in force with vex, sorted by
	// vulnerability: EXC-0100 expired, EXC-0400 not yet valid, EXC-0300 and EXC-0301 without vex.
	type row struct{ vuln, product, status, justification, impact, action, timestamp string }
	var got []row
	for _, s := range doc.Statements {
		if len(s.Products) != 1 || s.Products[0].Identifiers["purl"] != s.Products[0].ID || len(s.Vulnerability.Aliases) != 0 {
			t.Errorf("statement %s: products %+v, aliases %q", s.Vulnerability.Name, s.Products, s.Vulnerability.Aliases)
			continue
		}
		got = append(got, row{s.Vulnerability.Name, s.Products[0].ID, s.Status, s.Justification, s.ImpactStatement, s.ActionStatement, s.Timestamp})
	}
	worker := "pkg:oci/worker@sha256%3Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa?repository_url=registry.example:5000/team-b/worker"
	impact := "the worker links openssl for hashing only; the TLS code is never called"
	want := []row{
		{"CVE-2026-0003", "pkg:oci/app?repository_url=registry.example:5000/team-c/app", "under_investigation", "", "", "do not expose the admin port", "2026-12-02T00:00:00Z"},
		{"CVE-2026-1234", worker, "not_affected", "vulnerable_code_not_in_execute_path", impact, "", "2026-12-01T00:00:00Z"},
		{"GHSA-jfh8-c2jp-5v3q", worker, "not_affected", "vulnerable_code_not_in_execute_path", impact, "", "2026-12-01T00:00:00Z"},
		{"GO-2026-4001", "pkg:oci/api?repository_url=registry.example:5000/team-a/api&tag=1.4.2", "affected", "", "", "upgrade the module when 1.2.3 is out", "2026-11-20T00:00:00Z"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("statements:\n%q\nwant\n%q", got, want)
	}
	if len(doc.Statements) == 4 {
		w := doc.Statements[1]
		if !reflect.DeepEqual(w.Products[0].Hashes, map[string]string{"sha-256": strings.Repeat("a", 64)}) || doc.Statements[0].Products[0].Hashes != nil {
			t.Errorf("hashes: %v, %v", w.Products[0].Hashes, doc.Statements[0].Products[0].Hashes)
		}
		if want := "portcullis exception EXC-0201 (owner team-b@example.com, approved by security@example.com, in force 2026-12-01 to 2026-12-14, ticket SEC-901); package openssl"; w.StatusNotes != want {
			t.Errorf("status_notes = %q, want %q", w.StatusNotes, want)
		}
	}
	// Every statement is complete as OpenVEX requires.
	for _, s := range doc.Statements {
		switch {
		case s.Vulnerability.Name == "" || len(s.Products) == 0 || s.Timestamp == "":
			t.Errorf("incomplete statement: %+v", s)
		case s.Status == "not_affected" && s.Justification == "" && s.ImpactStatement == "":
			t.Errorf("not_affected without justification or impact: %+v", s)
		case s.Status == "affected" && s.ActionStatement == "":
			t.Errorf("affected without action: %+v", s)
		}
	}

	// Deterministic: the same input gives the same bytes, the @id included.
	if _, again, _ := runExceptionsCmd(args...); again != out {
		t.Errorf("a second run differs:\n%s\nfirst:\n%s", again, out)
	}
	// A day later EXC-0142 has expired: other statements, another @id.
	_, later, _ := runExceptionsCmd("vex", "--policy", file, "--at", "2026-12-05", "--registry", "registry.example:5000", "--author", "Security <security@example.com>")
	ld := decodeVEX(t, later)
	if len(ld.Statements) != 3 || ld.ID == doc.ID || strings.Contains(later, "GO-2026-4001") {
		t.Errorf("on 2026-12-05: %d statements, @id %s\n%s", len(ld.Statements), ld.ID, later)
	}
	// An RFC 3339 --at is a moment: the document's timestamp.
	_, moment, _ := runExceptionsCmd("vex", "--policy", file, "--at", "2026-12-03T10:30:00+01:00")
	if md := decodeVEX(t, moment); md.Timestamp != "2026-12-03T09:30:00Z" || len(md.Statements) != 4 {
		t.Errorf("at a moment: %s, %d statements", md.Timestamp, len(md.Statements))
	}
}

func TestExceptionsVEXDefaults(t *testing.T) {
	file := vexTree(t)
	code, out, _ := runExceptionsCmd("vex", "--policy", file, "--at", "2026-12-03", "--id", "https://vex.example/portcullis/2026-12-03")
	doc := decodeVEX(t, out)
	// The author: the approvers of the exceptions in the document, sorted.
	if code != 0 || doc.Author != "platform@example.com, security@example.com" || doc.ID != "https://vex.example/portcullis/2026-12-03" {
		t.Errorf("defaults: %d author %q id %q", code, doc.Author, doc.ID)
	}
	// Without --registry, repository_url is the repository path.
	if !strings.Contains(out, `"pkg:oci/api?repository_url=team-a/api&tag=1.4.2"`) {
		t.Errorf("purl without --registry:\n%s", out)
	}

	// No exception with vex in force: nothing written (OpenVEX requires a statement), and a note.
	code, out, errs := runExceptionsCmd("vex", "--policy", file, "--at", "2027-06-01")
	if code != 0 || out != "" || errs != "portcullis exceptions vex: no exception of "+file+" in force on 2027-06-01T00:00:00Z carries vex; nothing written\n" {
		t.Errorf("none in force: %d %q %q", code, errs, out)
	}
}

func TestExceptionsVEXRefusals(t *testing.T) {
	file := vexTree(t)
	for _, args := range [][]string{
		{"vex"},
		{"vex", "--policy", file, "extra"},
		{"vex", "--policy", file, "--at", "tomorrow"},
		{"vex", "--policy", file, "--registry", "https://registry.example"},
		{"vex", "--policy", file, "--registry", "registry.example/team"},
		{"vex", "--policy", file, "--bogus"},
	} {
		if code, _, errs := runExceptionsCmd(args...); code != 2 || errs == "" {
			t.Errorf("%v: exit %d, want 2 (%q)", args, code, errs)
		}
	}
	if _, _, errs := runExceptionsCmd("vex", "--policy", file, "--at", "tomorrow"); !strings.Contains(errs, "--at: ") {
		t.Errorf("--at error names --now instead: %q", errs)
	}

	// Bad vex fields are refused on load, each with its field path: by vex, and by lint.
	bad := filepath.Join(writeTree(t, map[string]string{
		"policy.yaml": strings.NewReplacer(
			"      justification: vulnerable_code_not_in_execute_path\n", "      justification: not_reachable\n",
			"    vex: {status: affected}", "    vex: {status: affected, justification: component_not_present}",
		).Replace(vexPolicy),
		"exceptions/team-c.yaml": strings.Replace(vexFile, "repository: team-c/app, vulnerabilities: [CVE-2026-0003]", "repository: \"team-c/**\", vulnerabilities: [CVE-2026-0003]", 1),
	}), "policy.yaml")
	wantProblems := []string{
		`exceptions[0].vex.justification: unknown justification "not_reachable" (want component_not_present, vulnerable_code_not_present, vulnerable_code_not_in_execute_path, vulnerable_code_cannot_be_controlled_by_adversary or inline_mitigations_already_exist)`,
		"exceptions[1].vex.justification: only a not_affected statement takes a justification (it says why the images are not affected); this one is affected",
		`exceptionFiles[0] (exceptions/team-c.yaml)[2].vex: scope.repository "team-c/**" is a pattern, but a VEX statement names the images it is about (as a pkg:oci purl): scope the exception to one repository, or remove vex`,
	}
	code, out, errs := runExceptionsCmd("vex", "--policy", bad)
	if code != 1 || out != "" {
		t.Errorf("vex on an invalid policy: %d %q", code, out)
	}
	for _, w := range wantProblems {
		if !strings.Contains(errs, bad+": "+w+"\n") {
			t.Errorf("vex: missing problem %q in\n%s", w, errs)
		}
	}
	code, out, _ = runExceptionsCmd("lint", bad)
	if code != 1 {
		t.Errorf("lint: %d", code)
	}
	for _, w := range wantProblems {
		if !strings.Contains(out, bad+": "+w+"\n") {
			t.Errorf("lint: missing problem %q in\n%s", w, out)
		}
	}
}

func TestPurlEscape(t *testing.T) {
	for in, want := range map[string]string{
		"registry.example:5000/team-a/api": "registry.example:5000/team-a/api",
		"1.4.2_rc-1":                       "1.4.2_rc-1",
		"a b&c?d#e%f@g+h":                  "a%20b%26c%3Fd%23e%25f%40g%2Bh",
	} {
		if got := purlEscape(in); got != want {
			t.Errorf("purlEscape(%q) = %q, want %q", in, got, want)
		}
	}
}
