package ciresult_test

import (
	"testing"

	"github.com/portcullis-dev/portcullis/scan/ciresult"
)

// FuzzParse feeds predicates around arbitrary reports to Parse: never a panic, and a parsed
// result always has its scan time and findings with an id.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"trivy-alpine-310.json", "grype-imgs.json", "twistcli-packagename.json", "twistcli-no-cvss.json", "sysdig-cli-dummy-vuln-app.json"} {
		f.Add(wrap(f, "", "", "", readTestdata(f, name)), 0)
	}
	f.Add([]byte(`{"scanner":{"result":[{"id":"x","severity":[{"score":"NaN"},{"score":"1e308"}]}]},"metadata":{"scanFinishedOn":"2026-12-01T10:01:00Z"}}`), 2)
	f.Add([]byte(`{"scanner":{"result":{"matches":[{"vulnerability":{"id":"x"},"artifact":{"name":"y"}}],"descriptor":{"db":{"built":"x"}}}},"metadata":{"scanFinishedOn":"2026-12-01T10:01:00Z"}}`), 1)
	types := ciresult.PredicateTypes()
	f.Fuzz(func(t *testing.T, data []byte, typ int) {
		i := typ % len(types)
		if i < 0 {
			i = -i
		}
		r, err := ciresult.Parse(types[i], data)
		if err != nil {
			return
		}
		if r.ScanFinished.IsZero() {
			t.Fatal("parsed without a scan time")
		}
		for _, fd := range r.Findings {
			if fd.ID == "" {
				t.Fatal("finding without an id")
			}
		}
	})
}
