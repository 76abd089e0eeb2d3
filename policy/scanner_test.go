package policy

import (
	"strings"
	"testing"
)

func TestScannerChoiceParsed(t *testing.T) {
	p := mustParse(t, `version: 1
environments:
  - {name: prod, repositories: ["prod/**"], scanner: both}
  - {name: staging, repositories: ["staging/**"], scanner: trivy}
  - {name: qa, repositories: ["qa/**"], scanner: [builtin, trivy, aqua]}
  - {name: dev, repositories: ["**"], failMode: open}
rules:
  - {id: no-latest, type: tag, mode: block, forbidden: [latest]}
`)
	for env, want := range map[string]string{"prod": ScannerBoth, "staging": "trivy", "qa": "builtin,trivy,aqua", "dev": ScannerBuiltin, DefaultEnvironment: ScannerBuiltin} {
		if got := p.Scanner(env); got != want {
			t.Errorf("%s: scanner %q, want %q", env, got, want)
		}
	}
}

func TestScannerChoiceRefused(t *testing.T) {
	_, err := Parse([]byte(`version: 1
environments:
  - {name: a, repositories: ["a/**"], scanner: Trivy}
  - {name: b, repositories: ["b/**"], scanner: ""}
  - {name: c, repositories: ["c/**"], scanner: [builtin, both, Aqua, trivy, trivy]}
  - {name: d, repositories: ["d/**"], scanner: []}
  - {name: e, repositories: ["e/**"], scanner: {trivy: true}}
rules:
  - {id: no-latest, type: tag, mode: block, forbidden: [latest]}
`))
	got := strings.Join(problemStrings(t, err), "\n")
	for _, want := range []string{
		`environments[0].scanner: invalid scanner "Trivy"`,
		`environments[1].scanner: invalid scanner ""`,
		`environments[2].scanner[1]: "both" is the string form; list builtin and the adapters instead`,
		`environments[2].scanner[2]: invalid scanner "Aqua"`,
		`environments[2].scanner[4]: scanner "trivy" listed twice`,
		`environments[3].scanner: name at least one scanner`,
		`environments[4].scanner: want a string`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
}
