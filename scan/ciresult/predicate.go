package ciresult

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/scan/match"
)

// Predicate types of the vulnerability attestations read here.
const (
	// PredicateCosignVuln is cosign's vulnerability attestation (`cosign attest --type
	// vuln`), as cosign writes it.
	PredicateCosignVuln = "https://cosign.sigstore.dev/attestation/vuln/v1"
	// PredicateCosignVulnBare is the same predicate type spelt without the scheme, as some
	// tools and documents write it.
	PredicateCosignVulnBare = "cosign.sigstore.dev/attestation/vuln/v1"
	// PredicateInTotoVulns is in-toto's vulnerabilities predicate, version 0.2
	// (in-toto/attestation spec/predicates/vulns_02.md).
	PredicateInTotoVulns = "https://in-toto.io/attestation/vulns/v0.2"
)

// PredicateTypes are the predicate types Parse reads, in the order the policy defaults to.
func PredicateTypes() []string {
	return []string{PredicateCosignVuln, PredicateCosignVulnBare, PredicateInTotoVulns}
}

// Supported reports whether Parse reads predicates of type t.
func Supported(t string) bool {
	switch t {
	case PredicateCosignVuln, PredicateCosignVulnBare, PredicateInTotoVulns:
		return true
	}
	return false
}

// Tools whose reports a predicate's scanner.result may hold.
const (
	ToolTrivy  = "trivy"
	ToolGrype  = "grype"
	ToolPrisma = "twistcli"
	ToolSysdig = "sysdig-cli-scanner"
	// ToolInToto is the generic result list of in-toto's vulns predicate (id and severity
	// per vulnerability), for a scanner none of the above.
	ToolInToto = "in-toto-vulns"
)

// Result is a CI scan result read from an attestation's predicate.
type Result struct {
	// PredicateType is the statement's predicate type.
	PredicateType string `json:"predicateType"`
	// Tool is which report scanner.result held: ToolTrivy, ToolGrype, ToolPrisma,
	// ToolSysdig or ToolInToto.
	Tool string `json:"tool"`
	// ScannerURI and ScannerVersion are the predicate's scanner.uri and scanner.version
	// (the version falls back to the one the report gives).
	ScannerURI     string `json:"scannerURI,omitempty"`
	ScannerVersion string `json:"scannerVersion,omitempty"`
	// DBVersion is the vulnerability database's version, "" when not given.
	DBVersion string `json:"dbVersion,omitempty"`
	// DBUpdated is when the scanner's vulnerability database was built or last updated,
	// from the predicate (scanner.db.lastUpdate) or the report; zero when neither says.
	DBUpdated time.Time `json:"dbUpdated,omitzero"`
	// ScanStarted and ScanFinished are the predicate's metadata.scanStartedOn and
	// metadata.scanFinishedOn. ScanFinished is required.
	ScanStarted  time.Time `json:"scanStarted,omitzero"`
	ScanFinished time.Time `json:"scanFinished"`
	// Findings are the report's vulnerabilities as the built-in scanner's findings.
	Findings []match.Finding `json:"findings"`
}

// Provenance names the result's source for messages and finding sources: the tool, its
// version and its database date.
func (r Result) Provenance() string {
	s := strings.TrimSpace(r.Tool + " " + r.ScannerVersion)
	if r.DBUpdated.IsZero() {
		return s + " (database date unknown)"
	}
	return s + " (database " + r.DBUpdated.UTC().Format(time.RFC3339) + ")"
}

// predicate is the part of a cosign vuln or in-toto vulns predicate read here.
type predicate struct {
	Scanner *struct {
		URI     string `json:"uri"`
		Version string `json:"version"`
		DB      struct {
			URI        string `json:"uri"`
			Version    string `json:"version"`
			LastUpdate string `json:"lastUpdate"`
		} `json:"db"`
		Result json.RawMessage `json:"result"`
	} `json:"scanner"`
	Metadata struct {
		ScanStartedOn  string `json:"scanStartedOn"`
		ScanFinishedOn string `json:"scanFinishedOn"`
	} `json:"metadata"`
}

// Parse reads a vulnerability predicate of type predicateType: its scanner, database and
// scan times, and the findings of the report its scanner.result holds (told apart by the
// report's shape; a scanner.uri naming another known tool is an error).
func Parse(predicateType string, data []byte) (Result, error) {
	if !Supported(predicateType) {
		return Result{}, fmt.Errorf("predicate type %q is not a vulnerability scan predicate this gateway reads (want one of %s)", predicateType, strings.Join(PredicateTypes(), ", "))
	}
	var p predicate
	if err := unmarshalObject(data, &p); err != nil {
		return Result{}, fmt.Errorf("predicate: %w", err)
	}
	if p.Scanner == nil {
		return Result{}, errors.New("predicate.scanner: required")
	}
	r := Result{PredicateType: predicateType, ScannerURI: p.Scanner.URI, ScannerVersion: p.Scanner.Version, DBVersion: p.Scanner.DB.Version}
	var err error
	if r.ScanFinished, err = parseTime(p.Metadata.ScanFinishedOn); err != nil || r.ScanFinished.IsZero() {
		if err == nil {
			err = errors.New("required")
		}
		return Result{}, fmt.Errorf("predicate.metadata.scanFinishedOn: %w", err)
	}
	if r.ScanStarted, err = parseTime(p.Metadata.ScanStartedOn); err != nil {
		return Result{}, fmt.Errorf("predicate.metadata.scanStartedOn: %w", err)
	}
	if r.DBUpdated, err = parseTime(p.Scanner.DB.LastUpdate); err != nil {
		return Result{}, fmt.Errorf("predicate.scanner.db.lastUpdate: %w", err)
	}
	res := bytes.TrimSpace(p.Scanner.Result)
	if len(res) == 0 || string(res) == "null" {
		return Result{}, errors.New("predicate.scanner.result: required (the scanner's report; an empty list for no vulnerabilities)")
	}
	rep, err := parseReport(res)
	if err != nil {
		return Result{}, fmt.Errorf("predicate.scanner.result: %w", err)
	}
	if named := toolOfURI(p.Scanner.URI); named != "" && named != rep.tool && rep.tool != ToolInToto {
		return Result{}, fmt.Errorf("predicate.scanner.uri %q names %s, but scanner.result is a %s report", p.Scanner.URI, named, rep.tool)
	}
	r.Tool, r.Findings = rep.tool, rep.findings
	if r.ScannerVersion == "" {
		r.ScannerVersion = rep.version
	}
	if r.DBUpdated.IsZero() {
		r.DBUpdated = rep.dbUpdated
	}
	return r, nil
}

// report is what one tool's report gives.
type report struct {
	tool      string
	version   string
	dbUpdated time.Time
	findings  []match.Finding
}

// parseReport tells the report's tool by its shape and reads it.
func parseReport(data []byte) (report, error) {
	if data[0] == '[' {
		return parseInToto(data)
	}
	var probe map[string]json.RawMessage
	if err := unmarshalObject(data, &probe); err != nil {
		return report{}, err
	}
	has := func(k string) bool { _, ok := probe[k]; return ok }
	switch {
	case has("SchemaVersion") && has("ArtifactName") || has("Results") && !has("results"):
		return parseTrivy(data)
	case has("matches") && has("descriptor"):
		return parseGrype(data)
	case has("result") && has("scanner") && has("info"):
		return parseSysdig(data)
	case has("results"):
		return parseTwistcli(data)
	}
	return report{}, errors.New("not a Trivy, Grype, twistcli or sysdig-cli-scanner JSON report, nor an in-toto vulns result list")
}

// toolOfURI names the tool a scanner.uri points at, "" when none this package knows.
func toolOfURI(uri string) string {
	u := strings.ToLower(uri)
	switch {
	case strings.Contains(u, "aquasecurity/trivy") || strings.Contains(u, "/trivy@") || strings.HasSuffix(u, "/trivy"):
		return ToolTrivy
	case strings.Contains(u, "anchore/grype"):
		return ToolGrype
	case strings.Contains(u, "twistcli") || strings.Contains(u, "twistlock") || strings.Contains(u, "prisma"):
		return ToolPrisma
	case strings.Contains(u, "sysdig"):
		return ToolSysdig
	}
	return ""
}

// unmarshalObject decodes a JSON object into v; anything else is an error.
func unmarshalObject(data []byte, v any) error {
	d := bytes.TrimSpace(data)
	if len(d) == 0 || d[0] != '{' {
		return errors.New("not a JSON object")
	}
	return json.Unmarshal(d, v)
}

// parseTime reads an RFC 3339 time; "" is the zero time.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time", s)
	}
	return t, nil
}

// finish settles a finding's severity the way the built-in scanner reads severities: an
// unknown word with a CVSS score takes the score's severity; a fix is a non-empty version.
func finish(f match.Finding) match.Finding {
	if f.Severity == match.SeverityUnknown && f.CVSS > 0 {
		f.Severity = match.SeverityFromScore(f.CVSS)
	}
	f.Fixed = strings.TrimSpace(f.Fixed)
	f.Fixable = f.Fixed != ""
	if f.Ecosystem == "" {
		f.Ecosystem = f.Package.Ecosystem
	}
	return f
}

// summary is the first line of s, at most 300 bytes.
func summary(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	if len(line) > 300 {
		line = line[:300]
	}
	return line
}

// vectorScore is the CVSS score of vector (3.x or 4.0), 0 when it cannot be computed.
func vectorScore(vector string) float64 {
	switch {
	case strings.HasPrefix(vector, "CVSS:3"):
		if s, err := match.CVSS3BaseScore(vector); err == nil {
			return s
		}
	case strings.HasPrefix(vector, "CVSS:4"):
		if s, err := match.CVSS4Score(vector); err == nil {
			return s
		}
	}
	return 0
}
