package gate

import (
	"slices"
	"testing"

	"github.com/portcullis-dev/portcullis/scan/inventory"
	"github.com/portcullis-dev/portcullis/scan/match"
)

// The same vulnerability (matched through an alias, package name case aside) with
// another fixed version or severity is a disagreement saying so; the same report from
// every scanner is none.
func TestDisagreementsOnFixAndSeverity(t *testing.T) {
	pkg := func(name, version string) inventory.Package { return inventory.Package{Name: name, Version: version} }
	builtin := []match.Finding{
		{ID: "GO-2022-1059", Aliases: []string{"CVE-2022-32149", "GHSA-69ch-w2m2-3vjp"}, Package: pkg("golang.org/x/text", "0.3.7"), Fixed: "0.3.8", Severity: match.SeverityHigh},
		{ID: "GO-2021-0113", Aliases: []string{"CVE-2021-38561"}, Package: pkg("golang.org/x/text", "0.3.7"), Fixed: "0.3.7", Severity: match.SeverityHigh},
	}
	trivy := []match.Finding{
		{ID: "CVE-2022-32149", Package: pkg("golang.org/x/text", "v0.3.7"), Fixed: "0.3.8", Severity: match.SeverityMedium},
		{ID: "CVE-2021-38561", Package: pkg("Golang.org/x/text", "v0.3.7"), Fixed: "", Severity: match.SeverityHigh},
	}
	ds := disagreements([]scannerFindings{{"builtin", builtin}, {"trivy", trivy}})
	if len(ds) != 2 {
		t.Fatalf("disagreements %+v, want 2", ds)
	}
	if d := ds[0]; d.ID != "CVE-2022-32149" || !slices.Equal(d.On, []string{"severity"}) || len(d.Reports) != 2 || d.Reports[1].Severity != "medium" {
		t.Errorf("severity: %+v", d)
	}
	if d := ds[1]; d.ID != "CVE-2021-38561" || !slices.Equal(d.On, []string{"fixed"}) || d.Reports[0].Fixed != "0.3.7" || d.Reports[1].Fixed != "" {
		t.Errorf("fixed: %+v", d)
	}
	if ds := disagreements([]scannerFindings{{"builtin", builtin}, {"own", builtin}}); len(ds) != 0 {
		t.Errorf("the same findings disagree: %+v", ds)
	}
	if ds := disagreements([]scannerFindings{{"builtin", builtin}}); ds != nil {
		t.Errorf("one scanner disagrees with itself: %+v", ds)
	}
}
