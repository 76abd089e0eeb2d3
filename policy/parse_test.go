package policy

import (
	"errors"
	"io/fs"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// parseFile parses testdata/name, reading key files relative to testdata
// as portcullis reads them relative to the policy file.
func parseFile(t *testing.T, name string) (*Policy, error) {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return ParseWith(data, testdataFiles)
}

// testdataFiles reads key files from testdata.
var testdataFiles = ParseOptions{ReadFile: func(name string) ([]byte, error) { return fs.ReadFile(os.DirFS("testdata"), name) }}

// problemStrings returns the problems of a *ValidationError as strings.
func problemStrings(t *testing.T, err error) []string {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *ValidationError", err, err)
	}
	out := make([]string, len(ve.Problems))
	for i, p := range ve.Problems {
		out[i] = p.String()
	}
	return out
}

// mustParse parses src or fails the test.
func mustParse(t testing.TB, src string) *Policy {
	t.Helper()
	p, err := Parse([]byte(src))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, src)
	}
	return p
}

func TestParseMalformedReportsEveryProblem(t *testing.T) {
	_, err := parseFile(t, "malformed.yaml")
	want := []string{
		`version: unsupported version "2" (want 1)`,
		`colour: unknown field (line 2)`,
		`environments[0].repositories[1]: invalid glob "/bad//glob": must not start with '/'`,
		`environments[0].failMode: unknown fail mode "sideways" (want closed or open)`,
		`environments[1].name: required`,
		`environments[2].name: duplicate of environments[0].name`,
		`environments[2].hosts[0]: invalid host "registry.example:5000": hosts are matched without a port; remove the port`,
		`environments[3].name: "default" is reserved for images that match no environment`,
		`environments[4]: needs repositories or hosts (or both) to select images`,
		`rules[0].mode: unknown mode "blok" (want off, observe, warn, block)`,
		`rules[0].forbidden[1]: "bad tag" is not a valid tag name`,
		`rules[0].environments[1]: no environment named "stage"`,
		`rules[1].id: duplicate of rules[0].id`,
		`rules[1].type: unknown rule type "foo" (want tag, immutable, signature, vulnerability, secret, config, platform)`,
		`rules[2].id: required`,
		"rules[2].allowed[0]: invalid regular expression: error parsing regexp: missing closing ): `(unclosed`",
		`rules[2].requireDigest: want true or false, got "maybe"`,
		`rules[2].extra: unknown field: tag rules take forbidden, allowed and requireDigest (line 26)`,
		`rules[3].forbidden: unknown field: immutable rules take no parameters (line 30)`,
		`rules[3].enforceFrom: not a date (want YYYY-MM-DD), got "2026-13-01"`,
		`rules[3].observeUntil: not a date (want YYYY-MM-DD), got "tomorrow"`,
		`rules[4]: a tag rule needs forbidden, allowed or requireDigest`,
		`rules[5]: want a mapping, got "just a string"`,
	}
	if got := problemStrings(t, err); !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got, want := err.Error(), strings.Join(want, "\n"); got != want {
		t.Errorf("Error() =\n%s\nwant one problem per line:\n%s", got, want)
	}
}

func TestParseContradictoryReportsEveryProblem(t *testing.T) {
	_, err := parseFile(t, "contradictory.yaml")
	want := []string{
		`rules[0].observeUntil: must be before enforceFrom (2026-12-15 is not before 2026-12-01)`,
		`rules[1].enforceFrom: only meaningful with mode block (mode is warn)`,
		`rules[2].observeUntil: has no effect with mode observe`,
		`rules[3].requireDigest: only applies to pulls, but actions are [push]`,
		`rules[4].actions: immutable rules concern pushes only, but actions are [pull]`,
		`rules[5].environments: empty list: give at least one item or remove the field`,
	}
	if got := problemStrings(t, err); !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestParseProblemsCarryLines(t *testing.T) {
	_, err := parseFile(t, "malformed.yaml")
	var ve *ValidationError
	errors.As(err, &ve)
	lines := map[string]int{}
	for _, p := range ve.Problems {
		lines[p.Path] = p.Line
	}
	for path, want := range map[string]int{"colour": 2, "environments[0].failMode": 6, "rules[2].extra": 26, "rules[3].enforceFrom": 31} {
		if lines[path] != want {
			t.Errorf("line of %s = %d, want %d", path, lines[path], want)
		}
	}
}

func TestParseSyntaxErrors(t *testing.T) {
	tests := []struct {
		name, src, want string
		line            int
	}{
		{"bad indentation", "version: 1\nrules:\n  - id: a\n    type: tag\n   mode: block\n", "yaml: line 2: did not find expected '-' indicator", 2},
		{"tab", "version: 1\n\trules: []\n", "yaml: line 2: found a tab character that violates indentation", 2},
		{"two documents", "version: 1\n---\nversion: 1\n", "yaml: a policy file holds one YAML document, found more", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.src))
			got := problemStrings(t, err)
			if len(got) != 1 || got[0] != tt.want {
				t.Fatalf("problems = %q, want [%q]", got, tt.want)
			}
			if line := err.(*ValidationError).Problems[0].Line; line != tt.line {
				t.Errorf("line = %d, want %d", line, tt.line)
			}
		})
	}
}

func TestParseSmallProblems(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
	}{
		{"empty file", "", []string{"empty policy file (want a mapping with version, environments and rules)"}},
		{"comments only", "# nothing\n", []string{"empty policy file (want a mapping with version, environments and rules)"}},
		{"top-level list", "- a\n", []string{"want a mapping, got a list"}},
		{"missing version", "rules: []\n", []string{"version: required (want 1)"}},
		{"rules not a list", "version: 1\nrules: {}\n", []string{"rules: want a list, got a mapping"}},
		{"duplicate key", "version: 1\nversion: 1\n", []string{"version: duplicate key (first at line 1)"}},
		{"merge key", "version: 1\nrules:\n  - &r {id: a, type: tag, mode: warn, forbidden: [x]}\n  - <<: *r\n    id: b\n",
			[]string{"rules[1].<<: merge keys (<<) are not supported", "rules[1].type: required (want tag, immutable, signature, vulnerability, secret, config, platform)", "rules[1].mode: required (want off, observe, warn, block)"}},
		{"missing id type mode", "version: 1\nrules:\n  - description: x\n", []string{
			"rules[0].id: required",
			"rules[0].type: required (want tag, immutable, signature, vulnerability, secret, config, platform)",
			"rules[0].mode: required (want off, observe, warn, block)",
		}},
		{"null mode", "version: 1\nrules:\n  - {id: a, type: secret, mode: ~}\n", []string{"rules[0].mode: required (want off, observe, warn, block)"}},
		{"bad id", "version: 1\nrules:\n  - {id: 'a b', type: secret, mode: warn}\n", []string{`rules[0].id: invalid name "a b" (want up to 63 letters, digits, '.', '_' or '-', starting with a letter or digit)`}},
		{"bad action", "version: 1\nrules:\n  - {id: a, type: secret, mode: warn, actions: [remove]}\n", []string{`rules[0].actions[0]: unknown action "remove" (want push, pull, delete)`}},
		{"bad rule glob", "version: 1\nrules:\n  - {id: a, type: secret, mode: warn, repositories: ['a/**b']}\n", []string{`rules[0].repositories[0]: invalid glob "a/**b": "**" must be a whole path segment (in "**b")`}},
		{"date with time", "version: 1\nrules:\n  - {id: a, type: tag, mode: block, forbidden: [x], enforceFrom: 2026-12-15T10:00:00Z}\n", []string{`rules[0].enforceFrom: not a date (want YYYY-MM-DD), got "2026-12-15T10:00:00Z"`}},
		{"env name list", "version: 1\nenvironments:\n  - {name: [a], repositories: ['**']}\n", []string{"environments[0].name: want a string, got a list", "environments[0].name: required"}},
		{"empty hosts", "version: 1\nenvironments:\n  - {name: a, hosts: []}\n", []string{"environments[0].hosts: empty list: give at least one item or remove the field"}},
		{"host with path", "version: 1\nenvironments:\n  - {name: a, hosts: ['a/b']}\n", []string{`environments[0].hosts[0]: invalid host "a/b": want a host name such as registry.example or *.example`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.src))
			if got := problemStrings(t, err); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestParseExample(t *testing.T) {
	p, err := parseFile(t, "example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p.Revision(), "sha256:") || len(p.Revision()) != len("sha256:")+64 {
		t.Errorf("Revision() = %q", p.Revision())
	}
	if data, _ := os.ReadFile("testdata/example.yaml"); p.Revision() == revisionOf(data) {
		t.Error("Revision ignores the key file the policy reads")
	}
	p2, _ := parseFile(t, "example.yaml")
	if p.Revision() != p2.Revision() {
		t.Error("Revision is not stable")
	}
	rules := p.Rules()
	if len(rules) != 8 {
		t.Fatalf("got %d rules", len(rules))
	}
	nl := rules[0]
	if nl.ID != "no-latest" || nl.Mode != ModeBlock || !nl.EnforceFrom.Equal(time.Date(2026, 12, 15, 0, 0, 0, 0, time.UTC)) ||
		!nl.ObserveUntil.Equal(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) || !reflect.DeepEqual(nl.Forbidden, []string{"latest"}) {
		t.Errorf("no-latest = %+v", nl)
	}
	if v := rules[5]; v.Severity != SeverityCritical || !v.Fixable || v.Unknown != UnknownCount || v.Incomplete != IncompleteFail {
		t.Errorf("vulnerability rule = %+v", v)
	}
	sig := rules[4]
	if !reflect.DeepEqual(sig.Authorities, []string{"release", "security"}) || sig.Threshold != 1 || sig.PerPlatform ||
		!reflect.DeepEqual(sig.Actions, []Action{ActionPull}) || sig.Severity != "" {
		t.Errorf("signature rule = %+v", sig)
	}
	auths := p.Authorities()
	if len(auths) != 2 || auths[0].Name != "release" || auths[0].KeyFile != "keys/release.pub" ||
		auths[0].SignCommand != "cosign sign --key k8s://ci/release-key" || auths[0].PublicKey == nil ||
		auths[1].Name != "security" || auths[1].KeyFile != "" || auths[1].PublicKey == nil {
		t.Errorf("authorities = %+v", auths)
	}
	// Rules returns copies: changing them does not change the policy.
	rules[0].Forbidden[0] = "x"
	if p.Rules()[0].Forbidden[0] != "latest" {
		t.Error("Rules() exposes the policy's own maps or slices")
	}
	envs := p.Environments()
	if len(envs) != 3 || envs[0].FailMode != FailClosed || envs[1].FailMode != FailOpen {
		t.Errorf("environments = %+v", envs)
	}
}

func TestParseDefaultsAndPlainScalars(t *testing.T) {
	p := mustParse(t, `
version: 1
environments:
  - name: prod
    repositories: ["prod/**"]
rules:
  - id: no-latest
    type: tag
    mode: off
    forbidden: [latest, 1.0]
`)
	if got := p.FailMode("prod"); got != FailClosed {
		t.Errorf("default fail mode = %q, want closed", got)
	}
	r := p.Rules()[0]
	if r.Mode != ModeOff {
		t.Errorf("mode: off read as %q", r.Mode)
	}
	if !reflect.DeepEqual(r.Forbidden, []string{"latest", "1.0"}) {
		t.Errorf("forbidden = %q; a YAML number must keep its text", r.Forbidden)
	}
}

func TestParseAliasBomb(t *testing.T) {
	src := "version: 1\na: &a [x, x, x, x, x, x, x, x, x, x]\n"
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		src += n + ": &" + n + " [" + strings.Repeat("*"+prev+", ", 9) + "*" + prev + "]\n"
		prev = n
	}
	// No rule field decodes an arbitrary value any more (vulnerability rules
	// used to keep theirs): the bomb is refused without being expanded.
	src += "rules:\n  - {id: a, type: vulnerability, mode: warn, severity: low, x: *i}\n"
	_, err := Parse([]byte(src))
	if err == nil || !strings.Contains(err.Error(), "rules[0].x: unknown field") {
		t.Fatalf("alias bomb: err = %v", err)
	}
}
