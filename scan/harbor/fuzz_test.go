package harbor_test

import (
	"testing"

	"github.com/portcullis-dev/portcullis/scan/harbor"
)

// FuzzParseReport feeds adapter reports to the parser and the mapping: never a panic, and
// a parsed report maps every vulnerability.
func FuzzParseReport(f *testing.F) {
	for _, name := range []string{"trivy-report-1.0.json", "trivy-report-cvss.json", "trivy-metadata.json"} {
		f.Add(testdata(f, name))
	}
	f.Add([]byte(`{"vulnerabilities":[{"id":"x","package":"p","preferred_cvss":{"vector_v3":"CVSS:3.1/AV:N"},"vendor_attributes":[1,{"key":"ecosystem","value":2}]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		rep, err := harbor.ParseReport(body)
		if err != nil {
			return
		}
		if got := harbor.Findings(rep); len(got) != len(rep.Vulnerabilities) {
			t.Fatalf("%d findings of %d vulnerabilities", len(got), len(rep.Vulnerabilities))
		}
	})
}
