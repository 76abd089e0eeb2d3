package ciresult_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/scan/ciresult"
	"github.com/portcullis-dev/portcullis/scan/match"
)

func readTestdata(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// wrap makes a cosign vuln predicate around a report.
func wrap(tb testing.TB, uri, version, dbUpdate string, report []byte) []byte {
	tb.Helper()
	p := map[string]any{
		"invocation": map[string]any{"parameters": nil, "uri": "", "event_id": "", "builder.id": ""},
		"scanner": map[string]any{"uri": uri, "version": version,
			"db": map[string]any{"uri": "", "version": "", "lastUpdate": dbUpdate}, "result": json.RawMessage(report)},
		"metadata": map[string]any{"scanStartedOn": "2026-12-01T10:00:00Z", "scanFinishedOn": "2026-12-01T10:01:00Z"},
	}
	b, err := json.Marshal(p)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

type want struct {
	id, pkg, version, fixed string
	sev                     match.Severity
	cvss                    float64
}

func check(t *testing.T, r ciresult.Result, tool string, n int, wants ...want) {
	t.Helper()
	if r.Tool != tool {
		t.Errorf("tool %q, want %q", r.Tool, tool)
	}
	if len(r.Findings) != n {
		t.Fatalf("%d findings, want %d", len(r.Findings), n)
	}
	for _, w := range wants {
		found := false
		for _, f := range r.Findings {
			if f.ID != w.id || f.Package.Name != w.pkg {
				continue
			}
			found = true
			if f.Package.Version != w.version || f.Fixed != w.fixed || f.Fixable != (w.fixed != "") || f.Severity != w.sev || f.CVSS != w.cvss {
				t.Errorf("%s %s: got version %q fixed %q fixable %v severity %s cvss %v; want %q %q %s %v",
					w.id, w.pkg, f.Package.Version, f.Fixed, f.Fixable, f.Severity, f.CVSS, w.version, w.fixed, w.sev, w.cvss)
			}
		}
		if !found {
			t.Errorf("no finding %s in %s", w.id, w.pkg)
		}
	}
}

func TestTrivy(t *testing.T) {
	r, err := ciresult.Parse(ciresult.PredicateCosignVuln, wrap(t, "pkg:github/aquasecurity/trivy@0.57.0", "0.57.0", "", readTestdata(t, "trivy-alpine-310.json")))
	if err != nil {
		t.Fatal(err)
	}
	check(t, r, ciresult.ToolTrivy, 4,
		want{"CVE-2019-1549", "libssl1.1", "1.1.1c-r0", "1.1.1d-r0", match.SeverityMedium, 5.3},
		want{"CVE-2019-1551", "libcrypto1.1", "1.1.1c-r0", "1.1.1d-r2", match.SeverityMedium, 5.3})
	if r.Findings[0].Package.Ecosystem != "Alpine" || r.Findings[0].Package.Layer == "" {
		t.Errorf("ecosystem %q layer %q, want Alpine and the layer's diffID", r.Findings[0].Package.Ecosystem, r.Findings[0].Package.Layer)
	}
	if r.ScanFinished != time.Date(2026, 12, 1, 10, 1, 0, 0, time.UTC) || !r.DBUpdated.IsZero() {
		t.Errorf("scan finished %v, db %v", r.ScanFinished, r.DBUpdated)
	}
	if got := r.Provenance(); got != "trivy 0.57.0 (database date unknown)" {
		t.Errorf("provenance %q", got)
	}
}

func TestGrype(t *testing.T) {
	// The snapshot's descriptor has no db: a real report's descriptor.db.status.built is
	// added to check it is read.
	rep := readTestdata(t, "grype-imgs.json")
	var doc map[string]any
	if err := json.Unmarshal(rep, &doc); err != nil {
		t.Fatal(err)
	}
	doc["descriptor"].(map[string]any)["db"] = map[string]any{"status": map[string]any{"schemaVersion": "v6.0.2", "built": "2026-11-30T04:11:22Z", "valid": true}}
	withDB, _ := json.Marshal(doc)
	for name, body := range map[string][]byte{"snapshot": rep, "with db": withDB} {
		t.Run(name, func(t *testing.T) {
			r, err := ciresult.Parse(ciresult.PredicateCosignVulnBare, wrap(t, "https://github.com/anchore/grype", "0.86.1", "", body))
			if err != nil {
				t.Fatal(err)
			}
			check(t, r, ciresult.ToolGrype, 2,
				want{"CVE-1999-0001", "package-1", "1.1.1", "1.2.1, 2.1.3, 3.4.0", match.SeverityLow, 8.2},
				want{"CVE-1999-0002", "package-2", "2.2.2", "", match.SeverityCritical, 8.5})
			if name == "with db" && r.DBUpdated != time.Date(2026, 11, 30, 4, 11, 22, 0, time.UTC) {
				t.Errorf("db updated %v", r.DBUpdated)
			}
		})
	}
}

func TestTwistcli(t *testing.T) {
	r, err := ciresult.Parse(ciresult.PredicateCosignVuln, wrap(t, "https://docs.prismacloud.io/twistcli", "34.00.141", "", readTestdata(t, "twistcli-packagename.json")))
	if err != nil {
		t.Fatal(err)
	}
	check(t, r, ciresult.ToolPrisma, 1, want{"CVE-2025-48913", "org.apache.cxf_cxf-core", "3.5.11", "4.1.3, 4.0.9, 3.6.8", match.SeverityCritical, 9.8})

	r, err = ciresult.Parse(ciresult.PredicateCosignVuln, wrap(t, "", "", "", readTestdata(t, "twistcli-no-cvss.json")))
	if err != nil {
		t.Fatal(err)
	}
	check(t, r, ciresult.ToolPrisma, 2,
		want{"CVE-2025-6297", "dpkg", "1.21.22", "", match.SeverityLow, 0},
		want{"CVE-2025-1390", "libcap2", "1:2.66-4", "1:2.66-4+deb12u1", match.SeverityLow, 0})
}

func TestTwistcliSeverity(t *testing.T) {
	for word, sev := range map[string]match.Severity{
		"critical": match.SeverityCritical, "important": match.SeverityHigh, "high": match.SeverityHigh,
		"moderate": match.SeverityMedium, "medium": match.SeverityMedium, "low": match.SeverityLow, "": match.SeverityUnknown,
	} {
		if got := ciresult.TwistcliSeverity(word); got != sev {
			t.Errorf("%q: %s, want %s", word, got, sev)
		}
	}
	// And inside a report: the real fixture with its severities spelt as Prisma spells Red
	// Hat's.
	rep := strings.Replace(string(readTestdata(t, "twistcli-packagename.json")), `"severity": "critical"`, `"severity": "important"`, 1)
	r, err := ciresult.Parse(ciresult.PredicateCosignVuln, wrap(t, "", "", "", []byte(rep)))
	if err != nil {
		t.Fatal(err)
	}
	if r.Findings[0].Severity != match.SeverityHigh {
		t.Errorf("important read as %s", r.Findings[0].Severity)
	}
}

func TestSysdig(t *testing.T) {
	r, err := ciresult.Parse(ciresult.PredicateCosignVuln, wrap(t, "https://sysdig.com/sysdig-cli-scanner", "", "", readTestdata(t, "sysdig-cli-dummy-vuln-app.json")))
	if err != nil {
		t.Fatal(err)
	}
	check(t, r, ciresult.ToolSysdig, 31,
		want{"CVE-2023-50782", "cryptography", "1.7.1", "v42.0.0", match.SeverityHigh, 7.5},
		want{"CVE-2024-0727", "cryptography", "1.7.1", "v42.0.2", match.SeverityMedium, 5.5})
	if r.ScannerVersion != "1.20.0" {
		t.Errorf("version %q, want the report's 1.20.0", r.ScannerVersion)
	}
}

func TestInTotoExample(t *testing.T) {
	var st struct {
		PredicateType string          `json:"predicateType"`
		Predicate     json.RawMessage `json:"predicate"`
	}
	if err := json.Unmarshal(readTestdata(t, "intoto-vulns-v02-example.json"), &st); err != nil {
		t.Fatal(err)
	}
	r, err := ciresult.Parse(st.PredicateType, st.Predicate)
	if err != nil {
		t.Fatal(err)
	}
	check(t, r, ciresult.ToolInToto, 1, want{"CVE-123", "", "", "", match.SeverityMedium, 5.2})
	if r.DBUpdated != time.Date(2021, 8, 6, 17, 45, 50, 520000000, time.UTC) || r.ScannerVersion != "0.19.2" {
		t.Errorf("db %v version %q", r.DBUpdated, r.ScannerVersion)
	}
}

func TestParseErrors(t *testing.T) {
	trivy := readTestdata(t, "trivy-alpine-310.json")
	for name, tc := range map[string]struct {
		typ  string
		data []byte
		want string
	}{
		"unknown type":      {"https://slsa.dev/provenance/v1", wrap(t, "", "", "", trivy), "not a vulnerability scan predicate"},
		"not an object":     {ciresult.PredicateCosignVuln, []byte(`[1]`), "not a JSON object"},
		"no scanner":        {ciresult.PredicateCosignVuln, []byte(`{"metadata":{"scanFinishedOn":"2026-12-01T10:01:00Z"}}`), "predicate.scanner: required"},
		"no finish":         {ciresult.PredicateCosignVuln, []byte(`{"scanner":{"result":[]}}`), "scanFinishedOn: required"},
		"bad time":          {ciresult.PredicateCosignVuln, []byte(`{"scanner":{"result":[]},"metadata":{"scanFinishedOn":"yesterday"}}`), "not an RFC 3339 time"},
		"no result":         {ciresult.PredicateCosignVuln, []byte(`{"scanner":{},"metadata":{"scanFinishedOn":"2026-12-01T10:01:00Z"}}`), "result: required"},
		"unknown report":    {ciresult.PredicateCosignVuln, wrap(t, "", "", "", []byte(`{"hello":1}`)), "not a Trivy, Grype"},
		"uri contradicts":   {ciresult.PredicateCosignVuln, wrap(t, "pkg:github/anchore/grype@1", "", "", trivy), "names grype, but scanner.result is a trivy report"},
		"bad db date":       {ciresult.PredicateCosignVuln, wrap(t, "", "", "last tuesday", trivy), "lastUpdate"},
		"vuln without id":   {ciresult.PredicateCosignVuln, wrap(t, "", "", "", []byte(`{"SchemaVersion":2,"ArtifactName":"x","Results":[{"Vulnerabilities":[{"PkgName":"a"}]}]}`)), "VulnerabilityID and PkgName are required"},
		"in-toto id absent": {ciresult.PredicateInTotoVulns, wrap(t, "", "", "", []byte(`[{"severity":[]}]`)), "result[0].id: required"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ciresult.Parse(tc.typ, tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestEmptyResultIsClean(t *testing.T) {
	r, err := ciresult.Parse(ciresult.PredicateInTotoVulns, wrap(t, "", "", "", []byte(`[]`)))
	if err != nil || len(r.Findings) != 0 {
		t.Fatalf("%v %v", r, err)
	}
}
