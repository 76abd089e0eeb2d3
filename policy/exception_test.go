package policy

import (
	"io/fs"
	"os"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// filesOptions reads exception and key files from fsys, as portcullis
// reads them next to the policy file.
func filesOptions(fsys fs.FS) ParseOptions {
	return ParseOptions{
		ReadFile: func(name string) ([]byte, error) { return fs.ReadFile(fsys, name) },
		Glob:     func(pattern string) ([]string, error) { return fs.Glob(fsys, pattern) },
	}
}

// parseWithFiles parses src with the given files next to it.
func parseWithFiles(src string, files map[string]string) (*Policy, error) {
	fsys := fstest.MapFS{}
	for name, content := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(content)}
	}
	return ParseWith([]byte(src), filesOptions(fsys))
}

// parseExceptionsFile parses testdata/exceptions.yaml with its exception files.
func parseExceptionsFile(t *testing.T) *Policy {
	t.Helper()
	data, err := os.ReadFile("testdata/exceptions.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParseWith(data, filesOptions(os.DirFS("testdata")))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// excRules is the top of the policies the validation tests use.
const excRules = `version: 1
rules:
  - {id: no-latest, type: tag, mode: block, forbidden: [latest]}
  - {id: immutable-tags, type: immutable, mode: block}
  - {id: prod-signatures, type: signature, mode: block}
  - {id: critical-fixable, type: vulnerability, mode: block, severity: critical}
`

// excKeys are the fields excYAML writes, in order.
var excKeys = []string{"id", "scope", "reason", "owner", "approvedBy", "created", "expires",
	"severity", "compensatingControls", "closure", "ticket", "extends", "vex"}

// excYAML writes one exception as a list item indented by indent spaces:
// a valid one, with the fields of set replaced ("-" removes a field).
func excYAML(indent int, set map[string]string) string {
	fields := map[string]string{
		"id":         "EXC-1",
		"scope":      "{repository: team-a/api, rules: [no-latest]}",
		"reason":     "the legacy pipeline pushes latest",
		"owner":      "team-a@example.com",
		"approvedBy": "security@example.com",
		"created":    "2026-11-20",
		"expires":    "2026-12-04",
		"closure":    "replace the legacy pipeline",
	}
	for k, v := range set {
		fields[k] = v
	}
	var b strings.Builder
	pad := strings.Repeat(" ", indent)
	first := true
	for _, k := range append(excKeys, "extra") {
		v, ok := fields[k]
		if !ok || v == "-" {
			continue
		}
		if first {
			b.WriteString(pad + "- ")
			first = false
		} else {
			b.WriteString(pad + "  ")
		}
		b.WriteString(k + ": " + v + "\n")
	}
	return b.String()
}

// inline is a policy with the given exceptions inline.
func inline(excs ...string) string {
	return excRules + "exceptions:\n" + strings.Join(excs, "")
}

func TestExceptionValidation(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		files map[string]string
		want  []string
	}{
		{
			name: "required fields",
			src:  inline(excYAML(2, map[string]string{"id": "-", "reason": "-", "owner": `""`, "approvedBy": "~", "created": "-", "expires": "-", "closure": "-"})),
			want: []string{
				"exceptions[0].id: required",
				"exceptions[0].reason: required",
				"exceptions[0].created: required",
				"exceptions[0].expires: required",
				"exceptions[0].closure: required",
				"exceptions[0].owner: required",
				"exceptions[0].approvedBy: required",
			},
		},
		{
			name: "scope required",
			src:  inline(excYAML(2, map[string]string{"scope": "-"})),
			want: []string{"exceptions[0].scope: required"},
		},
		{
			name: "dates not dates",
			src:  inline(excYAML(2, map[string]string{"created": "2026-11-31", "expires": "next week"})),
			want: []string{
				`exceptions[0].created: not a date (want YYYY-MM-DD), got "2026-11-31"`,
				`exceptions[0].expires: not a date (want YYYY-MM-DD), got "next week"`,
			},
		},
		{
			name: "expires before created",
			src:  inline(excYAML(2, map[string]string{"expires": "2026-11-19"})),
			want: []string{"exceptions[0].expires: must be after created (2026-11-19 is not after 2026-11-20)"},
		},
		{
			name: "expires on created",
			src:  inline(excYAML(2, map[string]string{"expires": "2026-11-20"})),
			want: []string{"exceptions[0].expires: must be after created (2026-11-20 is not after 2026-11-20)"},
		},
		{
			name: "critical too long and without controls",
			src:  inline(excYAML(2, map[string]string{"severity": "critical", "expires": "2026-12-21"})),
			want: []string{
				"exceptions[0].compensatingControls: a critical exception needs at least one compensating control (such as \"egress restricted\")",
				"exceptions[0].expires: 2026-12-21 is 31 days after created (2026-11-20), but an exception of severity critical may last at most 30 days (exceptionRules.maxDays.critical); shorten it, and extend it later with a new exception if needed",
			},
		},
		{
			name: "critical at the limit with an empty controls list",
			src:  inline(excYAML(2, map[string]string{"severity": "critical", "expires": "2026-12-20", "compensatingControls": "[]"})),
			want: []string{"exceptions[0].compensatingControls: a critical exception needs at least one compensating control (such as \"egress restricted\")"},
		},
		{
			name: "no severity counts as unknown",
			src:  inline(excYAML(2, map[string]string{"expires": "2027-02-19"})),
			want: []string{"exceptions[0].expires: 2027-02-19 is 91 days after created (2026-11-20), but an exception without a severity counts as unknown and may last at most 90 days (exceptionRules.maxDays.unknown); shorten it, and extend it later with a new exception if needed"},
		},
		{
			name: "maxDays from exceptionRules",
			src:  inline(excYAML(2, map[string]string{"severity": "low", "expires": "2026-12-01"})) + "exceptionRules: {maxDays: {low: 10}}\n",
			want: []string{"exceptions[0].expires: 2026-12-01 is 11 days after created (2026-11-20), but an exception of severity low may last at most 10 days (exceptionRules.maxDays.low); shorten it, and extend it later with a new exception if needed"},
		},
		{
			name: "unknown severity and blank control",
			src:  inline(excYAML(2, map[string]string{"severity": "severe", "compensatingControls": `["", waf]`})),
			want: []string{
				`exceptions[0].severity: unknown severity "severe" (want critical, high, medium, low, unknown)`,
				"exceptions[0].compensatingControls[0]: empty: say what limits the risk",
			},
		},
		{
			name: "registry-wide repositories",
			src: inline(
				excYAML(2, map[string]string{"id": "A", "scope": `{repository: "**", rules: [no-latest]}`}),
				excYAML(2, map[string]string{"id": "B", "scope": `{repository: "*", rules: [no-latest]}`}),
				excYAML(2, map[string]string{"id": "C", "scope": `{repository: "*/**", rules: [no-latest]}`}),
				excYAML(2, map[string]string{"id": "D", "scope": `{repository: "team-*/**", rules: [no-latest]}`}),
				excYAML(2, map[string]string{"id": "E", "scope": `{repository: "**/api", rules: [no-latest]}`}),
				excYAML(2, map[string]string{"id": "F", "scope": `{repository: "team-a//api", rules: [no-latest]}`}),
				excYAML(2, map[string]string{"id": "G", "scope": `{repository: "team-a/**", rules: [no-latest]}`}),
				excYAML(2, map[string]string{"id": "H", "scope": `{repository: "team-a/*-svc", rules: [no-latest]}`}),
			),
			want: []string{
				`exceptions[0].scope.repository: "**" would cover the whole registry; scope an exception to one team's repositories`,
				`exceptions[1].scope.repository: "*" would cover the whole registry; scope an exception to one team's repositories`,
				`exceptions[2].scope.repository: "*/**" would cover the whole registry; scope an exception to one team's repositories`,
				`exceptions[3].scope.repository: "team-*/**" has a wildcard in its first segment, so it reaches into other teams' repositories; scope an exception to one team's repositories (such as team-a/**)`,
				`exceptions[4].scope.repository: "**/api" has a wildcard in its first segment, so it reaches into other teams' repositories; scope an exception to one team's repositories (such as team-a/**)`,
				`exceptions[5].scope.repository: invalid glob "team-a//api": empty path segment`,
			},
		},
		{
			name: "repository required",
			src:  inline(excYAML(2, map[string]string{"scope": "{rules: [no-latest]}"})),
			want: []string{"exceptions[0].scope.repository: required"},
		},
		{
			name: "tag and digest",
			src: inline(
				excYAML(2, map[string]string{"id": "A", "scope": `{repository: team-a/api, tag: "1.4.2", digest: "sha256:` + strings.Repeat("a", 64) + `", rules: [no-latest]}`}),
				excYAML(2, map[string]string{"id": "B", "scope": `{repository: team-a/api, digest: "sha256:ABC", rules: [no-latest]}`}),
				excYAML(2, map[string]string{"id": "C", "scope": `{repository: team-a/api, tag: "bad tag", rules: [no-latest]}`}),
			),
			want: []string{
				"exceptions[0].scope: give tag or digest, not both",
				`exceptions[1].scope.digest: invalid digest "sha256:ABC" (want sha256: and 64 lower-case hex digits, or sha512: and 128)`,
				`exceptions[2].scope.tag: "bad tag" is not a valid tag name`,
			},
		},
		{
			name: "rules",
			src: inline(
				excYAML(2, map[string]string{"id": "A", "scope": `{repository: team-a/api, rules: [no-latest, prod-sigs, no-latest]}`}),
				excYAML(2, map[string]string{"id": "B", "scope": `{repository: team-a/api, rules: []}`}),
				excYAML(2, map[string]string{"id": "C", "scope": `{repository: team-a/api}`}),
			),
			want: []string{
				`exceptions[0].scope.rules[2]: "no-latest" is listed twice`,
				`exceptions[0].scope.rules[1]: no rule named "prod-sigs" (want one of no-latest, immutable-tags, prod-signatures, critical-fixable)`,
				"exceptions[1].scope.rules: empty list: give at least one item or remove the field",
				"exceptions[2].scope: needs rules (the ids of the rules it covers) or vulnerabilities",
			},
		},
		{
			name: "no rules in the policy",
			src:  "version: 1\nexceptions:\n" + excYAML(2, nil),
			want: []string{`exceptions[0].scope.rules[0]: no rule named "no-latest" (the policy has no rules)`},
		},
		{
			name: "vulnerabilities",
			src: inline(
				excYAML(2, map[string]string{"id": "A", "scope": `{repository: team-a/api, vulnerabilities: [CVE-2026-1234, GHSA-xxxx-xxxx-xxxx, GO-2026-4001, CVE-2026-1234]}`}),
				excYAML(2, map[string]string{"id": "B", "scope": `{repository: team-a/api, vulnerabilities: [cve-2026-1, CVE-26-1, GHSA-abcd-efgh-ijkl]}`}),
				excYAML(2, map[string]string{"id": "C", "scope": `{repository: team-a/api, rules: [critical-fixable, no-latest], vulnerabilities: [CVE-2026-1234], package: openssl}`}),
				excYAML(2, map[string]string{"id": "D", "scope": `{repository: team-a/api, rules: [immutable-tags], package: "open ssl"}`}),
				excYAML(2, map[string]string{"id": "E", "scope": `{repository: team-a/api, package: openssl}`}),
			),
			want: []string{
				`exceptions[0].scope.vulnerabilities[3]: "CVE-2026-1234" is listed twice`,
				`exceptions[1].scope.vulnerabilities[0]: "cve-2026-1" is not a vulnerability id (want CVE-2026-1234, GHSA-xxxx-xxxx-xxxx or another OSV id such as GO-2026-1234)`,
				`exceptions[1].scope.vulnerabilities[1]: "CVE-26-1" is not a CVE id (want CVE-YYYY-NNNN, such as CVE-2026-1234)`,
				`exceptions[1].scope.vulnerabilities[2]: "GHSA-abcd-efgh-ijkl" is not a GHSA id (want GHSA-xxxx-xxxx-xxxx: three groups of four of 23456789cfghjmpqrvwx)`,
				"exceptions[2].scope.rules[1]: rule no-latest has type tag, but vulnerabilities and package narrow an exception to vulnerability findings; list only vulnerability rules, or put them in another exception",
				"exceptions[3].scope.package: want a package name such as openssl, without spaces",
				"exceptions[4].scope: needs rules (the ids of the rules it covers) or vulnerabilities",
			},
		},
		{
			name: "unknown fields",
			src:  inline(excYAML(2, map[string]string{"extra": "x", "scope": "{repository: team-a/api, rules: [no-latest], env: prod}"})),
			want: []string{
				"exceptions[0].scope.env: unknown field: a scope takes repository, tag, digest, rules, vulnerabilities and package (line 9)",
				"exceptions[0].extra: unknown field: exceptions take id, scope, reason, owner, approvedBy, created, expires, severity, compensatingControls, closure, ticket, extends and vex (line 16)",
			},
		},
		{
			name: "self-approval and bad id",
			src:  inline(excYAML(2, map[string]string{"id": `"EXC 1"`, "approvedBy": "Team-A@example.com", "ticket": `" "`})),
			want: []string{
				`exceptions[0].id: invalid name "EXC 1" (want up to 63 letters, digits, '.', '_' or '-', starting with a letter or digit)`,
				"exceptions[0].approvedBy: the owner cannot approve their own exception: ask someone else, such as the security team",
				"exceptions[0].ticket: empty: give the ticket or remove the field",
			},
		},
		{
			name: "extends",
			src: inline(
				excYAML(2, map[string]string{"id": "A", "extends": "Z"}),
				excYAML(2, map[string]string{"id": "B", "extends": "B"}),
				excYAML(2, map[string]string{"id": "C", "extends": "D"}),
				excYAML(2, map[string]string{"id": "D", "extends": "C"}),
				excYAML(2, map[string]string{"id": "E", "extends": `""`}),
			),
			want: []string{
				`exceptions[0].extends: no exception with id "Z" in the policy or its exception files`,
				"exceptions[1].extends: an exception cannot extend itself",
				"exceptions[2].extends: extends goes round in a circle (C -> D -> C)",
				"exceptions[3].extends: extends goes round in a circle (D -> C -> D)",
				"exceptions[4].extends: empty: give the id of the exception this one extends, or remove the field",
			},
		},
		{
			name:  "ids unique across files, extends across files",
			src:   inline(excYAML(2, map[string]string{"id": "EXC-1"})) + "exceptionFiles: [exceptions/*.yaml]\n",
			files: map[string]string{"exceptions/a.yaml": excYAML(0, map[string]string{"id": "EXC-2", "extends": "EXC-1"}) + excYAML(0, map[string]string{"id": "EXC-1"})},
			want:  []string{"exceptionFiles[0] (exceptions/a.yaml)[1].id: duplicate of exceptions[0].id"},
		},
		{
			name:  "problems in a file carry its path",
			src:   excRules + "exceptionFiles: [exceptions/team-a.yaml, exceptions/b*.yaml]\n",
			files: map[string]string{"exceptions/team-a.yaml": excYAML(0, nil) + excYAML(0, map[string]string{"id": "EXC-2", "scope": `{repository: "**", rules: [no-latest]}`, "expires": "-"})},
			want: []string{
				"exceptionFiles[0] (exceptions/team-a.yaml)[1].expires: required",
				`exceptionFiles[0] (exceptions/team-a.yaml)[1].scope.repository: "**" would cover the whole registry; scope an exception to one team's repositories`,
			},
		},
		{
			name: "exception file problems",
			src:  excRules + "exceptionFiles: [missing.yaml, exceptions/*.yaml, \"exceptions/**\", \"[\", \"\"]\n",
			files: map[string]string{
				"exceptions/a-map.yaml":    "id: EXC-1\n",
				"exceptions/b-syntax.yaml": "- id: EXC-1\n  scope: {\n",
				"exceptions/c-two.yaml":    "[]\n---\n[]\n",
				"exceptions/d-empty.yaml":  "# nothing yet\n",
				"exceptions/e-huge.yaml":   "# " + strings.Repeat("x", MaxExceptionFileBytes) + "\n",
			},
			want: []string{
				"exceptionFiles[0]: reading missing.yaml: file does not exist",
				"exceptionFiles[1]: reading exceptions/e-huge.yaml: larger than 1024 KiB",
				`exceptionFiles[2]: "exceptions/**": "**" is not supported; a pattern matches within one directory (such as exceptions/*.yaml)`,
				`exceptionFiles[3]: invalid pattern "[": syntax error in pattern`,
				"exceptionFiles[4]: empty: want a file name or a pattern such as exceptions/*.yaml",
				`exceptionFiles[1] (exceptions/a-map.yaml): want a list, got a mapping`,
				"exceptionFiles[1] (exceptions/b-syntax.yaml): yaml: line 2: did not find expected node content",
				"exceptionFiles[1] (exceptions/c-two.yaml): yaml: an exception file holds one YAML document (a list of exceptions), found more",
			},
		},
		{
			name: "exceptionRules",
			src:  excRules + "exceptionRules:\n  maxDays: {critical: 0, severe: 3, high: x}\n  reminderDays: 5\n  reminderMinDays: 6\n  snooze: 1\n",
			want: []string{
				"exceptionRules.maxDays.critical: want 1 to 3650 days, got 0",
				"exceptionRules.maxDays.severe: unknown severity (want critical, high, medium, low, unknown)",
				`exceptionRules.maxDays.high: want a whole number, got "x"`,
				"exceptionRules.reminderMinDays: reminderMinDays (6) must not be more than reminderDays (5)",
				"exceptionRules.snooze: unknown field: exceptionRules take maxDays, reminderDays and reminderMinDays (line 11)",
			},
		},
		{
			name: "vex",
			src: inline(
				excYAML(2, map[string]string{"id": "A", "scope": vulnScope, "vex": "{status: not_affected}"}),
				excYAML(2, map[string]string{"id": "B", "scope": vulnScope, "vex": "{status: fixed}"}),
				excYAML(2, map[string]string{"id": "C", "scope": vulnScope, "vex": "{status: affected, justification: component_not_present, impact: gone}"}),
				excYAML(2, map[string]string{"id": "D", "scope": vulnScope, "vex": `{justification: not_reachable, impact: " ", action: "", colour: red}`}),
				excYAML(2, map[string]string{"id": "E", "vex": "{status: not_affected, justification: component_not_present}"}),
				excYAML(2, map[string]string{"id": "F", "scope": `{repository: "team-a/**", vulnerabilities: [CVE-2026-1234]}`, "vex": "{status: not_affected, impact: not loaded}"}),
				excYAML(2, map[string]string{"id": "G", "scope": vulnScope, "vex": "not_affected"}),
				excYAML(2, map[string]string{"id": "H", "scope": vulnScope, "vex": "{status: ~, justification: component_not_present}"}),
				excYAML(2, map[string]string{"id": "I", "scope": vulnScope, "vex": "{status: maybe}"}),
			),
			want: []string{
				"exceptions[0].vex: status not_affected needs a justification (component_not_present, vulnerable_code_not_present, vulnerable_code_not_in_execute_path, vulnerable_code_cannot_be_controlled_by_adversary or inline_mitigations_already_exist) or an impact statement (impact) saying why the images are not affected",
				"exceptions[1].vex.status: a fixed vulnerability needs no exception: remove the exception once the images in scope are fixed",
				"exceptions[2].vex.justification: only a not_affected statement takes a justification (it says why the images are not affected); this one is affected",
				"exceptions[2].vex.impact: only a not_affected statement takes an impact statement (it says why the images are not affected); this one is affected",
				`exceptions[3].vex.justification: unknown justification "not_reachable" (want component_not_present, vulnerable_code_not_present, vulnerable_code_not_in_execute_path, vulnerable_code_cannot_be_controlled_by_adversary or inline_mitigations_already_exist)`,
				"exceptions[3].vex.impact: empty: say why the images are not affected, or remove the field",
				"exceptions[3].vex.action: empty: say what is done about the vulnerabilities, or remove the field",
				"exceptions[3].vex.colour: unknown field: vex takes status, justification, impact and action (line 43)",
				"exceptions[3].vex.status: required (want not_affected, affected or under_investigation)",
				"exceptions[4].vex: a VEX statement is about vulnerabilities: list them in scope.vulnerabilities, or remove vex",
				`exceptions[5].vex: scope.repository "team-a/**" is a pattern, but a VEX statement names the images it is about (as a pkg:oci purl): scope the exception to one repository, or remove vex`,
				`exceptions[6].vex: want a mapping, got "not_affected"`,
				"exceptions[7].vex.status: required (want not_affected, affected or under_investigation)",
				`exceptions[8].vex.status: unknown status "maybe" (want not_affected, affected or under_investigation)`,
			},
		},
		{
			name: "valid",
			src:  inline(excYAML(2, map[string]string{"severity": "critical", "compensatingControls": "[egress restricted]", "expires": "2026-12-20", "ticket": "SEC-1"})),
		},
		{
			name: "valid vex",
			src: inline(
				excYAML(2, map[string]string{"id": "A", "scope": vulnScope, "vex": "{status: not_affected, justification: vulnerable_code_not_in_execute_path}"}),
				excYAML(2, map[string]string{"id": "B", "scope": vulnScope, "vex": "{status: not_affected, impact: the parser is never fed input}"}),
				excYAML(2, map[string]string{"id": "C", "scope": vulnScope, "vex": "{status: affected}"}),
				excYAML(2, map[string]string{"id": "D", "scope": vulnScope, "vex": "{status: under_investigation, action: do not expose the admin port}"}),
			),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseWithFiles(tt.src, tt.files)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("unexpected problems:\n%v\n%s", err, tt.src)
				}
				return
			}
			if got := problemStrings(t, err); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n%s\nwant:\n%s\nsource:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"), tt.src)
			}
		})
	}
}

// vulnScope is an exception scope naming a vulnerability.
const vulnScope = "{repository: team-a/api, vulnerabilities: [CVE-2026-1234]}"

func TestExceptionVEXIsKept(t *testing.T) {
	p := mustParse(t, inline(
		excYAML(2, map[string]string{"id": "A", "scope": vulnScope, "vex": "{status: not_affected, justification: component_not_present, impact: \" no libxml2 \"}"}),
		excYAML(2, map[string]string{"id": "B"}),
	))
	es := p.Exceptions()
	want := &ExceptionVEX{Status: VEXNotAffected, Justification: VEXComponentNotPresent, Impact: "no libxml2"}
	if !reflect.DeepEqual(es[0].VEX, want) || es[1].VEX != nil {
		t.Fatalf("VEX = %+v, %+v", es[0].VEX, es[1].VEX)
	}
	es[0].VEX.Status = VEXAffected
	if p.Exceptions()[0].VEX.Status != VEXNotAffected {
		t.Error("Exceptions() shares the VEX of the policy")
	}
}

func TestExceptionFilesNeedALoader(t *testing.T) {
	_, err := Parse([]byte(excRules + "exceptionFiles: [exceptions/*.yaml]\n"))
	want := []string{"exceptionFiles: exceptionFiles needs a policy loaded from a file (portcullis reads them relative to the policy file)"}
	if got := problemStrings(t, err); !reflect.DeepEqual(got, want) {
		t.Errorf("problems = %q", got)
	}
}

func TestExceptionFileProblemsCarryFileAndLine(t *testing.T) {
	_, err := parseWithFiles(excRules+"colour: red\nexceptionFiles: [exceptions/*.yaml]\n", map[string]string{
		"exceptions/a.yaml": excYAML(0, nil) + excYAML(0, map[string]string{"id": "EXC-2", "owner": "-"}),
		"exceptions/b.yaml": "\n\n" + excYAML(0, map[string]string{"id": "EXC-3", "created": "soon"}),
	})
	var got []Problem
	for _, p := range err.(*ValidationError).Problems {
		got = append(got, Problem{Path: p.Path, Message: p.Message, Line: p.Line, File: p.File})
	}
	want := []Problem{
		{Path: "colour", Message: "unknown field (line 7)", Line: 7},
		{Path: "exceptionFiles[0] (exceptions/a.yaml)[1].owner", Message: "required", Line: 9, File: "exceptions/a.yaml"},
		{Path: "exceptionFiles[0] (exceptions/b.yaml)[0].created", Message: `not a date (want YYYY-MM-DD), got "soon"`, Line: 8, File: "exceptions/b.yaml"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems = %+v\nwant %+v", got, want)
	}
}

func TestExceptionsOfTheExampleFiles(t *testing.T) {
	p := parseExceptionsFile(t)
	var ids []string
	for _, e := range p.Exceptions() {
		ids = append(ids, e.ID)
	}
	if want := []string{"EXC-0101", "EXC-0142", "EXC-0150", "EXC-0160", "EXC-0201", "EXC-0202"}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("ids = %v, want %v (the policy's own first, then file by file)", ids, want)
	}
	es := p.Exceptions()
	e := es[1]
	want := Exception{
		ID: "EXC-0142",
		Scope: ExceptionScope{
			Repository: "team-a/api", Tag: "1.4.2", Rules: []string{"prod-signatures"},
		},
		Reason:               "signed by the old key only; re-signing waits for the key ceremony",
		Owner:                "team-a@example.com",
		ApprovedBy:           "security@example.com",
		Created:              time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC),
		Expires:              time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC),
		Severity:             SeverityCritical,
		CompensatingControls: []string{"egress restricted", "runtime shell detection"},
		Closure:              "re-sign 1.4.2 with the new release key",
		Ticket:               "SEC-812",
		Extends:              "EXC-0101",
		ExtendedBy:           []string{"EXC-0160"},
		Extensions:           1,
		ReminderWindow:       7,
		Source:               "exceptionFiles[0] (exceptions/team-a.yaml)[0]",
		File:                 "exceptions/team-a.yaml",
	}
	if !reflect.DeepEqual(e, want) {
		t.Errorf("EXC-0142 =\n%+v\nwant\n%+v", e, want)
	}
	// EXC-0101 is extended by EXC-0142, which EXC-0160 extends in turn.
	if es[0].Extensions != 2 || !reflect.DeepEqual(es[0].ExtendedBy, []string{"EXC-0142"}) || es[0].Source != "exceptions[0]" || es[0].File != "" {
		t.Errorf("EXC-0101 = %+v", es[0])
	}
	if got := p.ExceptionRules(); got.MaxDays[SeverityCritical] != 30 || got.MaxDays[SeverityHigh] != 60 || got.MaxDays[SeverityLow] != 365 || got.ReminderDays != 14 || got.ReminderMinDays != 7 {
		t.Errorf("exception rules = %+v", got)
	}
	// Callers get copies.
	es[1].Scope.Rules[0], es[1].ExtendedBy[0] = "x", "x"
	if again := p.Exceptions(); again[1].Scope.Rules[0] != "prod-signatures" || again[1].ExtendedBy[0] != "EXC-0160" {
		t.Error("Exceptions() shares slices with the policy")
	}
	p.ExceptionRules().MaxDays[SeverityCritical] = 1000
	if p.ExceptionRules().MaxDays[SeverityCritical] != 30 {
		t.Error("ExceptionRules() shares its map")
	}
}

func TestExceptionFilesArePartOfTheRevision(t *testing.T) {
	src := excRules + "exceptionFiles: [exceptions/*.yaml]\n"
	a, err := parseWithFiles(src, map[string]string{"exceptions/a.yaml": excYAML(0, nil)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := parseWithFiles(src, map[string]string{"exceptions/a.yaml": excYAML(0, map[string]string{"expires": "2026-12-05"})})
	if err != nil {
		t.Fatal(err)
	}
	c, err := parseWithFiles(src, map[string]string{"exceptions/a.yaml": excYAML(0, nil), "exceptions/b.yaml": "[]\n"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Revision() == b.Revision() || a.Revision() == c.Revision() || a.Revision() == mustParse(t, excRules).Revision() {
		t.Errorf("revisions do not follow the exception files: %s %s %s", a.Revision(), b.Revision(), c.Revision())
	}
}

func TestExceptionStatus(t *testing.T) {
	e := Exception{Created: time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), Expires: time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)}
	tests := []struct {
		now  time.Time
		want ExceptionStatus
	}{
		{time.Date(2026, 11, 19, 23, 59, 0, 0, time.UTC), ExceptionStatus{State: ExceptionNotYetValid, DaysLeft: 16}},
		{time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), ExceptionStatus{State: ExceptionActive, DaysLeft: 15}},
		{time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC), ExceptionStatus{State: ExceptionActive, DaysLeft: 5, AgeDays: 10}},
		{time.Date(2026, 12, 4, 23, 59, 59, 0, time.UTC), ExceptionStatus{State: ExceptionActive, DaysLeft: 1, AgeDays: 14}},
		{time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC), ExceptionStatus{State: ExceptionExpired, AgeDays: 15}},
		// 2026-12-05 01:00 at UTC+2 is still 2026-12-04 in UTC.
		{time.Date(2026, 12, 5, 1, 0, 0, 0, time.FixedZone("UTC+2", 2*3600)), ExceptionStatus{State: ExceptionActive, DaysLeft: 1, AgeDays: 14}},
	}
	for _, tt := range tests {
		if got := e.Status(tt.now); got != tt.want {
			t.Errorf("Status(%s) = %+v, want %+v", tt.now, got, tt.want)
		}
	}
	if e.DurationDays() != 14 {
		t.Errorf("DurationDays = %d", e.DurationDays())
	}
}

// applyPolicy has one rule of each enforced type and exceptions that cover
// them in various scopes.
const applyPolicy = `version: 1
exceptionProcess: open a PSEC ticket
rules:
  - {id: no-latest, type: tag, mode: block, forbidden: [latest]}
  - {id: immutable-tags, type: immutable, mode: warn}
  - {id: prod-signatures, type: signature, mode: block}
  - {id: watched, type: tag, mode: observe, forbidden: [edge]}
  - {id: critical-fixable, type: vulnerability, mode: block, severity: critical}
exceptions:
  - id: EXC-TAG
    scope: {repository: team-a/api, tag: "1.4.2", rules: [prod-signatures, immutable-tags]}
    reason: r
    owner: team-a@example.com
    approvedBy: security@example.com
    created: 2026-11-20
    expires: 2026-12-04
    closure: c
    ticket: SEC-812
  - id: EXC-DIGEST
    scope: {repository: team-a/api, digest: "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", rules: [prod-signatures]}
    reason: r
    owner: team-a@example.com
    approvedBy: security@example.com
    created: 2026-11-20
    expires: 2026-12-10
    closure: c
  - id: EXC-TEAM
    scope: {repository: "team-a/**", rules: [no-latest, watched]}
    reason: r
    owner: team-a@example.com
    approvedBy: security@example.com
    created: 2026-11-20
    expires: 2026-12-01
    closure: c
  - id: EXC-TEAM-LONGER
    scope: {repository: "team-a/**", rules: [no-latest]}
    reason: r
    owner: team-a-leads@example.com
    approvedBy: security@example.com
    created: 2026-11-25
    expires: 2026-12-20
    closure: c
  - id: EXC-LATER
    scope: {repository: "team-a/**", rules: [no-latest]}
    reason: r
    owner: team-a@example.com
    approvedBy: security@example.com
    created: 2027-01-01
    expires: 2027-01-30
    closure: c
  - id: EXC-VULN
    scope: {repository: "team-b/**", rules: [critical-fixable], vulnerabilities: [CVE-2026-1234], package: openssl}
    reason: r
    owner: team-b@example.com
    approvedBy: security@example.com
    created: 2026-11-20
    expires: 2026-12-20
    closure: c
`

func TestExceptionsApply(t *testing.T) {
	p := mustParse(t, applyPolicy)
	day := func(m time.Month, d, h int) time.Time { return time.Date(2026, m, d, h, 0, 0, 0, time.UTC) }
	pullTag := Input{Action: ActionPull, Repository: "team-a/api", Tag: "1.4.2", Digest: digestA}
	tests := []struct {
		name    string
		in      Input
		now     time.Time
		rule    string
		outcome Outcome
		applied string // the exception that covers it
		expired string // the expired exception the failure names
	}{
		{"tag scope covers", pullTag, day(11, 30, 9), "prod-signatures", OutcomeExcepted, "EXC-TAG", ""},
		{"last day covers", pullTag, time.Date(2026, 12, 4, 23, 59, 59, 0, time.UTC), "prod-signatures", OutcomeExcepted, "EXC-TAG", ""},
		{"day after expiry", pullTag, day(12, 5, 0), "prod-signatures", OutcomeFail, "", "EXC-TAG"},
		{"before created", pullTag, day(11, 19, 23), "prod-signatures", OutcomeFail, "", ""},
		{"other tag", Input{Action: ActionPull, Repository: "team-a/api", Tag: "1.4.3", Digest: digestA}, day(11, 30, 9), "prod-signatures", OutcomeFail, "", ""},
		{"by digest, tag scope does not match", Input{Action: ActionPull, Repository: "team-a/api", Digest: digestA}, day(11, 30, 9), "prod-signatures", OutcomeFail, "", ""},
		{"digest scope covers any tag", Input{Action: ActionPull, Repository: "team-a/api", Tag: "main", Digest: digestB}, day(12, 6, 9), "prod-signatures", OutcomeExcepted, "EXC-DIGEST", ""},
		{"digest scope, other digest", Input{Action: ActionPull, Repository: "team-a/api", Tag: "main", Digest: digestA}, day(12, 6, 9), "prod-signatures", OutcomeFail, "", ""},
		{"latest expiry wins", Input{Action: ActionPull, Repository: "team-a/api", Tag: "1.4.2", Digest: digestB}, day(12, 1, 9), "prod-signatures", OutcomeExcepted, "EXC-DIGEST", ""},
		{"the one left in force wins over an expired one", Input{Action: ActionPull, Repository: "team-a/api", Tag: "1.4.2", Digest: digestB}, day(12, 6, 9), "prod-signatures", OutcomeExcepted, "EXC-DIGEST", ""},
		{"other repository", Input{Action: ActionPull, Repository: "team-b/api", Tag: "1.4.2", Digest: digestA}, day(11, 30, 9), "prod-signatures", OutcomeFail, "", ""},
		{"repository glob covers", Input{Action: ActionPush, Repository: "team-a/web/ui", Tag: "latest", Digest: digestA}, day(11, 22, 9), "no-latest", OutcomeExcepted, "EXC-TEAM", ""},
		{"glob: latest expiry wins", Input{Action: ActionPush, Repository: "team-a/web/ui", Tag: "latest", Digest: digestA}, day(11, 26, 9), "no-latest", OutcomeExcepted, "EXC-TEAM-LONGER", ""},
		{"glob: after the longer expired, the latest expired is named", Input{Action: ActionPush, Repository: "team-a/web/ui", Tag: "latest", Digest: digestA}, day(12, 21, 9), "no-latest", OutcomeFail, "", "EXC-TEAM-LONGER"},
		{"a glob does not cover the namespace's neighbour", Input{Action: ActionPush, Repository: "team-ab/api", Tag: "latest", Digest: digestA}, day(11, 26, 9), "no-latest", OutcomeFail, "", ""},
		{"warn rule covered", Input{Action: ActionPush, Repository: "team-a/api", Tag: "1.4.2", Digest: digestA, CurrentDigest: digestB}, day(11, 30, 9), "immutable-tags", OutcomeExcepted, "EXC-TAG", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Evaluate(tt.in, tt.now)
			var r *Result
			for i := range d.Results {
				if d.Results[i].Rule == tt.rule {
					r = &d.Results[i]
				}
			}
			if r == nil {
				t.Fatalf("no result for %s: %+v", tt.rule, d.Results)
			}
			if r.Outcome != tt.outcome {
				t.Fatalf("outcome %s, want %s: %+v", r.Outcome, tt.outcome, r)
			}
			if got := idOf(r.AppliedException); got != tt.applied {
				t.Errorf("applied exception %q, want %q", got, tt.applied)
			}
			if got := idOf(r.ExpiredException); got != tt.expired {
				t.Errorf("expired exception %q, want %q", got, tt.expired)
			}
			if tt.expired != "" && !strings.HasPrefix(r.Fix, tt.expired+" expired on ") {
				t.Errorf("fix does not name the expired exception: %s", r.Fix)
			}
		})
	}
}

// idOf is the ID of a, "" for nil.
func idOf(a *AppliedException) string {
	if a == nil {
		return ""
	}
	return a.ID
}

func TestExceptedDecision(t *testing.T) {
	p := mustParse(t, applyPolicy)
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)

	// The signature failure is covered: allowed, with a warning that names
	// the exception, its owner, its last day and the days left.
	d := p.Evaluate(Input{Action: ActionPull, Repository: "team-a/api", Tag: "1.4.2", Digest: digestA, Vulnerabilities: &VulnerabilityEvidence{}}, now)
	if d.Verdict != VerdictAllow || len(d.Denials()) != 0 || d.DenyMessage() != "" {
		t.Fatalf("verdict %s, denials %+v", d.Verdict, d.Denials())
	}
	w := d.Warnings()
	if len(w) != 1 || len(d.Excepted()) != 1 {
		t.Fatalf("warnings %+v, excepted %+v", w, d.Excepted())
	}
	want := "[prod-signatures] no signing keys are configured for this rule yet: covered by exception EXC-TAG (owner team-a@example.com) until 2026-12-04; ends in 11 days (ticket SEC-812); " +
		"fix before then: add your release keys under authorities and list them in rule prod-signatures"
	if got := w[0].Message(); got != want {
		t.Errorf("Message() =\n%s\nwant\n%s", got, want)
	}
	wantApplied := AppliedException{ID: "EXC-TAG", Owner: "team-a@example.com", Expires: time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC), Ticket: "SEC-812", DaysLeft: 11}
	if a := w[0].AppliedException; a == nil || *a != wantApplied {
		t.Errorf("applied = %+v", a)
	}
	if w[0].Mode != ModeBlock || w[0].Finding == "" || w[0].Fix == "" {
		t.Errorf("an excepted result keeps its mode, finding and fix: %+v", w[0])
	}

	// On its last day, it says so.
	d = p.Evaluate(Input{Action: ActionPull, Repository: "team-a/api", Tag: "1.4.2", Digest: digestA}, time.Date(2026, 12, 4, 8, 0, 0, 0, time.UTC))
	if got := d.Warnings()[0].Message(); !strings.Contains(got, "until 2026-12-04; ends today (ticket SEC-812)") {
		t.Errorf("last day: %s", got)
	}

	// An excepted observe-mode failure is recorded, not shown.
	d = p.Evaluate(Input{Action: ActionPush, Repository: "team-a/api", Tag: "edge", Digest: digestA, Vulnerabilities: &VulnerabilityEvidence{}}, now)
	if d.Verdict != VerdictAllow || len(d.Warnings()) != 0 || len(d.Excepted()) != 1 || d.Excepted()[0].Rule != "watched" {
		t.Errorf("observed: %+v", d)
	}

	// Once the exception has expired the rule blocks again, and the denial
	// says which exception expired and when.
	d = p.Evaluate(Input{Action: ActionPull, Repository: "team-a/api", Tag: "1.4.2", Digest: digestA, Vulnerabilities: &VulnerabilityEvidence{}}, time.Date(2026, 12, 11, 9, 0, 0, 0, time.UTC))
	wantDeny := "denied by policy (environment default): [prod-signatures] no signing keys are configured for this rule yet: EXC-TAG expired on 2026-12-04; extend it or " +
		"add your release keys under authorities and list them in rule prod-signatures. To request an exception: open a PSEC ticket"
	if got := d.DenyMessage(); got != wantDeny {
		t.Errorf("DenyMessage() =\n%s\nwant\n%s", got, wantDeny)
	}
	if a := d.Denials()[0].ExpiredException; a == nil || a.ID != "EXC-TAG" || a.DaysLeft != 0 {
		t.Errorf("expired exception = %+v", a)
	}

	// Explain shows which exception covers a rule.
	x := p.Explain(ActionPull, "team-a/api", "", "1.4.2", "", now)
	for _, r := range x.Rules {
		if r.Rule == "prod-signatures" && r.Reason != "covered by exception EXC-TAG (owner team-a@example.com) until 2026-12-04; ends in 11 days" {
			t.Errorf("explain reason = %q", r.Reason)
		}
	}
}

func TestExceptionWithVulnerabilitiesOnARuleIsRefused(t *testing.T) {
	// applyPolicy's EXC-VULN lists a vulnerability rule only; naming a tag
	// rule alongside vulnerabilities is refused.
	_, err := Parse([]byte(strings.Replace(applyPolicy, "rules: [critical-fixable]", "rules: [critical-fixable, no-latest]", 1)))
	got := problemStrings(t, err)
	if len(got) != 1 || !strings.HasPrefix(got[0], "exceptions[5].scope.rules[1]: rule no-latest has type tag") {
		t.Errorf("problems = %q", got)
	}
}

// scenarioPolicy has one 14-day exception, created on day 0 (2026-12-01),
// last in force on day 14.
const scenarioPolicy = `version: 1
rules:
  - {id: no-latest, type: tag, mode: block, forbidden: [latest]}
exceptions:
  - id: EXC-0142
    scope: {repository: team-a/api, rules: [no-latest]}
    reason: the legacy pipeline pushes latest
    owner: team-a@example.com
    approvedBy: security@example.com
    created: 2026-12-01
    expires: 2026-12-15
    closure: replace the legacy pipeline
`

func TestReminderWindowScenario(t *testing.T) {
	p := mustParse(t, scenarioPolicy)
	day := func(n int) time.Time { return time.Date(2026, 12, 1+n, 9, 30, 0, 0, time.UTC) }
	in := Input{Action: ActionPush, Repository: "team-a/api", Tag: "latest", Digest: digestA}

	if e := p.Exceptions()[0]; e.DurationDays() != 14 || e.ReminderWindow != 7 {
		t.Fatalf("duration %d, window %d", e.DurationDays(), e.ReminderWindow)
	}
	for _, tt := range []struct {
		day      int
		reminder bool
		daysLeft int
	}{
		{5, false, 10},
		{8, true, 7},
		{12, true, 3},
	} {
		due := p.ReminderDue(day(tt.day))
		if got := len(due) == 1 && due[0].ID == "EXC-0142"; got != tt.reminder || (!tt.reminder && len(due) != 0) {
			t.Errorf("day %d: reminders %v, want one: %v", tt.day, due, tt.reminder)
		}
		d := p.Evaluate(in, day(tt.day))
		if d.Verdict != VerdictAllow || d.Results[0].AppliedException == nil || d.Results[0].AppliedException.DaysLeft != tt.daysLeft {
			t.Errorf("day %d: %+v", tt.day, d.Results[0])
		}
	}
	// Reminders fall on exactly the last 7 days in force: days 8 to 14.
	var reminded []int
	for n := 0; n <= 20; n++ {
		if len(p.ReminderDue(day(n))) > 0 {
			reminded = append(reminded, n)
		}
	}
	if want := []int{8, 9, 10, 11, 12, 13, 14}; !reflect.DeepEqual(reminded, want) {
		t.Errorf("reminder days = %v, want %v", reminded, want)
	}
	// Day 15: expired, no reminder, due, and the rule fails again naming the expiry.
	if due := p.ReminderDue(day(15)); len(due) != 0 {
		t.Errorf("day 15 reminders: %v", due)
	}
	if due := p.DueExceptions(day(15), 0); len(due) != 1 || due[0].Status(day(15)).State != ExceptionExpired {
		t.Errorf("day 15 due: %v", due)
	}
	d := p.Evaluate(in, day(15))
	want := `denied by policy (environment default): [no-latest] tag "latest" is forbidden in environment default: EXC-0142 expired on 2026-12-15; extend it or push an immutable tag such as 1.4.2 or 1.4.2-3f9c2ab instead`
	if d.Verdict != VerdictDeny || d.DenyMessage() != want {
		t.Errorf("day 15: %s\n%s\nwant\n%s", d.Verdict, d.DenyMessage(), want)
	}
}

func TestReminderWindowWidths(t *testing.T) {
	tests := []struct {
		name          string
		rules         string
		created, exp  string
		wantWindow    int
		wantFirstLeft int // DaysLeft on the first reminder day, 0 for none
	}{
		{"90 days: the full 14", "", "2026-01-01", "2026-04-01", 14, 14},
		{"20 days: half", "", "2026-01-01", "2026-01-21", 10, 10},
		{"14 days: half, which is the minimum", "", "2026-01-01", "2026-01-15", 7, 7},
		{"3 days: the minimum covers its whole life", "", "2026-01-01", "2026-01-04", 7, 4},
		{"custom window", "exceptionRules: {reminderDays: 30, reminderMinDays: 3}\n", "2026-01-01", "2026-04-01", 30, 30},
		{"reminders off", "exceptionRules: {reminderDays: 0, reminderMinDays: 0}\n", "2026-01-01", "2026-04-01", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "version: 1\nrules:\n  - {id: r, type: immutable, mode: block}\n" + tt.rules + "exceptions:\n" +
				excYAML(2, map[string]string{"scope": "{repository: team-a/api, rules: [r]}", "created": tt.created, "expires": tt.exp, "severity": "low"})
			p := mustParse(t, src)
			e := p.Exceptions()[0]
			if e.ReminderWindow != tt.wantWindow {
				t.Errorf("window %d, want %d", e.ReminderWindow, tt.wantWindow)
			}
			first := 0
			for now := e.Created; now.Before(e.Expires.AddDate(0, 0, 2)); now = now.AddDate(0, 0, 1) {
				if len(p.ReminderDue(now)) > 0 {
					first = e.Status(now).DaysLeft
					break
				}
			}
			if first != tt.wantFirstLeft {
				t.Errorf("first reminder with %d days left, want %d", first, tt.wantFirstLeft)
			}
		})
	}
}

func TestDueExceptions(t *testing.T) {
	p := parseExceptionsFile(t)
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	ids := func(es []Exception) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out
	}
	tests := []struct {
		within time.Duration
		want   []string
	}{
		{0, []string{"EXC-0101"}},
		// EXC-0142 ends at midnight after 2026-12-04: within 36 hours of noon on the 3rd.
		{36 * time.Hour, []string{"EXC-0101", "EXC-0142"}},
		{7 * 24 * time.Hour, []string{"EXC-0101", "EXC-0142"}},
		// EXC-0202's last day is 2026-12-10: it ends 7.5 days after noon on the 3rd.
		{8 * 24 * time.Hour, []string{"EXC-0101", "EXC-0142", "EXC-0202"}},
		{30 * 24 * time.Hour, []string{"EXC-0101", "EXC-0142", "EXC-0202", "EXC-0160", "EXC-0201"}},
	}
	for _, tt := range tests {
		if got := ids(p.DueExceptions(now, tt.within)); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("within %s: %v, want %v", tt.within, got, tt.want)
		}
	}
	// Reminders skip an exception that has been extended: EXC-0142 has 2
	// days left but EXC-0160 extends it.
	if got := ids(p.ReminderDue(now)); got != nil {
		t.Errorf("reminders on %s: %v", now, got)
	}
	if got := ids(p.ReminderDue(time.Date(2026, 12, 9, 0, 0, 0, 0, time.UTC))); !reflect.DeepEqual(got, []string{"EXC-0202"}) {
		t.Errorf("reminders on 12-09: %v", got)
	}
}

func TestVulnerabilityScopesMatchFindingsOnly(t *testing.T) {
	// The matching vulnerability rules use (see also
	// TestVulnerabilityExceptionsCoverFindings): an exception naming
	// vulnerabilities (or a package) covers a finding with one of those ids
	// in that package, never a rule-level result.
	p := mustParse(t, applyPolicy)
	var e *exception
	for i := range p.exceptions {
		if p.exceptions[i].ID == "EXC-VULN" {
			e = &p.exceptions[i]
		}
	}
	in := Input{Action: ActionPull, Repository: "team-b/worker", Tag: "1.0.0", Digest: digestA}
	tests := []struct {
		name string
		rule string
		in   Input
		f    *finding
		want bool
	}{
		{"rule-level result", "critical-fixable", in, nil, false},
		{"the CVE in openssl", "critical-fixable", in, &finding{ids: []string{"CVE-2026-1234"}, pkg: "openssl"}, true},
		{"the CVE by an alias", "critical-fixable", in, &finding{ids: []string{"GHSA-xxxx-xxxx-xxxx", "CVE-2026-1234"}, pkg: "openssl"}, true},
		{"another CVE", "critical-fixable", in, &finding{ids: []string{"CVE-2026-9999"}, pkg: "openssl"}, false},
		{"another package", "critical-fixable", in, &finding{ids: []string{"CVE-2026-1234"}, pkg: "zlib"}, false},
		{"another rule", "other-vulns", in, &finding{ids: []string{"CVE-2026-1234"}, pkg: "openssl"}, false},
		{"another team", "critical-fixable", Input{Action: ActionPull, Repository: "team-c/worker"}, &finding{ids: []string{"CVE-2026-1234"}, pkg: "openssl"}, false},
	}
	for _, tt := range tests {
		if got := e.covers(tt.rule, tt.in, tt.f); got != tt.want {
			t.Errorf("%s: covers = %v, want %v", tt.name, got, tt.want)
		}
	}
}
