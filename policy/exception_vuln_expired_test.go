package policy

import (
	"strings"
	"testing"
	"time"
)

// An exception naming vulnerabilities that has expired no longer covers them, and the
// denial says which exception expired and when; the result carries it.
func TestExpiredVulnerabilityExceptionIsNamed(t *testing.T) {
	p := mustParse(t, applyPolicy) // EXC-VULN: CVE-2026-1234 in openssl, team-b/**, until 2026-12-20
	cve := VulnerabilityFinding{ID: "CVE-2026-1234", Aliases: []string{"GHSA-xxxx-xxxx-xxxx"}, Package: "openssl", Ecosystem: "Debian:12",
		Version: "3.0.11", Fixed: "3.0.15", Fixable: true, Severity: SeverityCritical, OS: true}
	in := Input{Action: ActionPull, Repository: "team-b/worker", Tag: "1.0.0", Digest: digestA, Signatures: &SignatureEvidence{},
		Vulnerabilities: &VulnerabilityEvidence{Findings: []VulnerabilityFinding{cve}}}
	result := func(d Decision) Result {
		t.Helper()
		for _, r := range d.Results {
			if r.Rule == "critical-fixable" {
				return r
			}
		}
		t.Fatalf("no critical-fixable result: %+v", d.Results)
		return Result{}
	}

	// In force: covered, naming the exception.
	r := result(p.Evaluate(in, time.Date(2026, 12, 20, 12, 0, 0, 0, time.UTC)))
	if r.Outcome != OutcomeExcepted || idOf(r.AppliedException) != "EXC-VULN" || r.ExpiredException != nil {
		t.Fatalf("last day in force: %+v", r)
	}

	// The day after its last day: denied, saying it expired, and the result names it.
	d := p.Evaluate(in, time.Date(2026, 12, 21, 9, 0, 0, 0, time.UTC))
	r = result(d)
	if r.Outcome != OutcomeFail || r.AppliedException != nil || idOf(r.ExpiredException) != "EXC-VULN" {
		t.Fatalf("after expiry: %+v", r)
	}
	if !strings.HasPrefix(r.Fix, "EXC-VULN expired on 2026-12-20; extend it or ") {
		t.Errorf("fix = %q", r.Fix)
	}
	if m := d.DenyMessage(); !strings.Contains(m, "EXC-VULN expired on 2026-12-20") {
		t.Errorf("deny message = %s", m)
	}

	// A finding the expired exception never covered does not name it.
	other := cve
	other.ID, other.Aliases = "CVE-2026-9999", nil
	in.Vulnerabilities = &VulnerabilityEvidence{Findings: []VulnerabilityFinding{other}}
	if r := result(p.Evaluate(in, time.Date(2026, 12, 21, 9, 0, 0, 0, time.UTC))); r.ExpiredException != nil {
		t.Errorf("an unrelated finding names the expired exception: %+v", r)
	}
}
