package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runExceptionsCmd runs runExceptions and returns exit status, stdout and stderr.
func runExceptionsCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := runExceptions(args, &out, &errb)
	return code, out.String(), errb.String()
}

// exceptionsPolicy is a policy with one exception of its own and an
// exception file.
const exceptionsPolicy = `version: 1
rules:
  - {id: no-latest, type: tag, mode: block, forbidden: [latest]}
  - {id: prod-signatures, type: signature, mode: block}
  - {id: critical-fixable, type: vulnerability, mode: block, severity: critical}
exceptionFiles: ["exceptions/*.yaml"]
services:
  - {name: api, repositories: [team-a/api], team: team-a, tier: high, contact: "#team-a"}
  - {name: web, repositories: ["team-a/web-*"], team: team-a}
  - {name: worker, repositories: [team-b/worker], team: team-b}
exceptions:
  - id: EXC-0101
    scope: {repository: team-a/api, rules: [prod-signatures]}
    reason: the release key is being rotated
    owner: team-a@example.com
    approvedBy: security@example.com
    created: 2026-11-01
    expires: 2026-11-30
    severity: high
    closure: sign with the new release key
`

const teamAExceptions = `- id: EXC-0142
  scope:
    repository: team-a/api
    tag: "1.4.2"
    rules: [prod-signatures]
  reason: signed by the old key only
  owner: team-a@example.com
  approvedBy: security@example.com
  created: 2026-11-20
  expires: 2026-12-04
  severity: critical
  compensatingControls: [egress restricted]
  closure: re-sign 1.4.2 with the new release key
  ticket: SEC-812
  extends: EXC-0101
- id: EXC-0150
  scope: {repository: "team-a/**", rules: [no-latest]}
  reason: the legacy pipeline pushes latest
  owner: team-a@example.com
  approvedBy: platform@example.com
  created: 2026-12-10
  expires: 2027-01-31
  severity: medium
  closure: move the legacy pipeline to release tags
`

const teamBExceptions = `- id: EXC-0201
  scope:
    repository: team-b/worker
    digest: sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
    rules: [critical-fixable]
    vulnerabilities: [CVE-2026-1234]
    package: openssl
  reason: no fixed openssl in the base image yet
  owner: team-b@example.com
  approvedBy: security@example.com
  created: 2026-12-01
  expires: 2026-12-14
  severity: critical
  compensatingControls: [egress restricted]
  closure: upgrade the base image to bookworm 12.9
  ticket: SEC-901
`

// writeTree writes files (name → content) under a new directory and
// returns the directory.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// exceptionsTree writes the example policy and its exception files and
// returns the policy file's path.
func exceptionsTree(t *testing.T) string {
	dir := writeTree(t, map[string]string{
		"policy.yaml":            exceptionsPolicy,
		"exceptions/team-a.yaml": teamAExceptions,
		"exceptions/team-b.yaml": teamBExceptions,
		"exceptions/README.md":   "not an exception file",
	})
	return filepath.Join(dir, "policy.yaml")
}

func TestExceptionsLint(t *testing.T) {
	good := exceptionsTree(t)
	code, out, _ := runExceptionsCmd("lint", "--now", "2026-12-03", good)
	want := good + ": ok (4 exceptions: 2 active, 1 expired, 1 not yet valid on 2026-12-03)\n" +
		good + ": note: EXC-0101 (exceptions[0]) expired on 2026-11-30; extended by EXC-0142\n"
	if code != 0 || out != want {
		t.Errorf("valid: %d\n%s\nwant\n%s", code, out, want)
	}

	bad := filepath.Join(writeTree(t, map[string]string{
		"policy.yaml": strings.Replace(exceptionsPolicy, "    owner: team-a@example.com\n", "", 1),
		"exceptions/team-a.yaml": strings.NewReplacer(`repository: "team-a/**"`, `repository: "**"`,
			"expires: 2026-12-04", "expires: 2027-01-04").Replace(teamAExceptions),
	}), "policy.yaml")
	code, out, _ = runExceptionsCmd("lint", bad)
	want = bad + ": exceptions[0].owner: required\n" +
		bad + ": exceptionFiles[0] (exceptions/team-a.yaml)[0].expires: 2027-01-04 is 45 days after created (2026-11-20), but an exception of severity critical may last at most 30 days (exceptionRules.maxDays.critical); shorten it, and extend it later with a new exception if needed\n" +
		bad + `: exceptionFiles[0] (exceptions/team-a.yaml)[1].scope.repository: "**" would cover the whole registry; scope an exception to one team's repositories` + "\n"
	if code != 1 || out != want {
		t.Errorf("invalid: %d\n%s\nwant\n%s", code, out, want)
	}

	code, out, _ = runExceptionsCmd("lint", "--output", "json", "--now", "2026-12-03", good, bad)
	var res []struct {
		File       string
		Valid      bool
		Problems   []struct{ Path, Message, File string }
		Exceptions map[string]int
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 1 || len(res) != 2 {
		t.Fatalf("json: %d %v %s", code, err, out)
	}
	if !res[0].Valid || res[0].Exceptions["active"] != 2 || res[0].Exceptions["expired"] != 1 || res[0].Exceptions["not-yet-valid"] != 1 {
		t.Errorf("json, valid file: %+v", res[0])
	}
	if res[1].Valid || len(res[1].Problems) != 3 || res[1].Problems[2].File != "exceptions/team-a.yaml" || res[1].Problems[0].File != "" {
		t.Errorf("json, invalid file: %+v", res[1])
	}

	for _, args := range [][]string{{"lint"}, {"lint", "--now", "soon", good}, {"lint", "--output", "xml", good}, {"lint", "--bogus", good}} {
		if code, _, _ := runExceptionsCmd(args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	if code, out, _ := runExceptionsCmd("lint", filepath.Join(t.TempDir(), "missing.yaml")); code != 1 || !strings.Contains(out, "no such file") {
		t.Errorf("missing: %d %q", code, out)
	}
}

func TestExceptionsList(t *testing.T) {
	file := exceptionsTree(t)
	code, out, errs := runExceptionsCmd("list", "--policy", file, "--now", "2026-12-03")
	want := `ID        STATUS         OWNER               REPOSITORY                            SERVICE  TEAM    COVERS                                           CREATED     EXPIRES     DAYS LEFT  AGE  EXTENSIONS
EXC-0101  expired        team-a@example.com  team-a/api                            api      team-a  rules prod-signatures                            2026-11-01  2026-11-30  -          32d  1
EXC-0142  active         team-a@example.com  team-a/api:1.4.2                      api      team-a  rules prod-signatures                            2026-11-20  2026-12-04  2          13d  0
EXC-0150  not-yet-valid  team-a@example.com  team-a/**                             api,web  team-a  rules no-latest                                  2026-12-10  2027-01-31  60         0d   0
EXC-0201  active         team-b@example.com  team-b/worker@sha256:aaaaaaaaaaaa...  worker   team-b  rules critical-fixable CVE-2026-1234 in openssl  2026-12-01  2026-12-14  12         2d   0
`
	if code != 0 || out != want {
		t.Errorf("list: %d %s\n%s\nwant\n%s", code, errs, out, want)
	}

	code, out, _ = runExceptionsCmd("list", "--policy", file, "--now", "2026-12-03", "--output", "json")
	var l struct {
		Policy, Now string
		Exceptions  []struct {
			ID, Owner, Expires, Extends string
			Scope                       struct{ Repository, Tag string }
			Services                    []struct{ Name, Team, Tier, Contact string }
			Extensions                  int
			Status                      struct {
				State             string
				DaysLeft, AgeDays int
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &l); err != nil || code != 0 {
		t.Fatalf("json: %d %v %s", code, err, out)
	}
	if l.Now != "2026-12-03" || len(l.Exceptions) != 4 {
		t.Fatalf("json: %+v", l)
	}
	e := l.Exceptions[1]
	if e.ID != "EXC-0142" || e.Scope.Tag != "1.4.2" || e.Extends != "EXC-0101" || e.Expires != "2026-12-04T00:00:00Z" ||
		e.Status.State != "active" || e.Status.DaysLeft != 2 || e.Status.AgeDays != 13 || l.Exceptions[0].Extensions != 1 ||
		len(e.Services) != 1 || e.Services[0] != (struct{ Name, Team, Tier, Contact string }{"api", "team-a", "high", "#team-a"}) {
		t.Errorf("json EXC-0142: %+v", e)
	}
	if n := len(l.Exceptions[2].Services); n != 2 {
		t.Errorf("json EXC-0150 (team-a/**): %d services, want 2", n)
	}
	// An exception no service owns.
	noService := writeTree(t, map[string]string{"policy.yaml": strings.Replace(exceptionsPolicy, "repository: team-a/api, rules", "repository: team-z/api, rules", 1)})
	code, out, _ = runExceptionsCmd("list", "--policy", filepath.Join(noService, "policy.yaml"), "--now", "2026-12-03")
	if code != 0 || !strings.Contains(out, "team-z/api  -        -     rules prod-signatures") {
		t.Errorf("no service: %d\n%s", code, out)
	}

	empty := writePolicyFile(t, "p.yaml", "version: 1\n")
	if code, out, _ := runExceptionsCmd("list", "--policy", empty); code != 0 || out != empty+" has no exceptions\n" {
		t.Errorf("no exceptions: %d %q", code, out)
	}
	bad := writePolicyFile(t, "bad.yaml", "version: 1\nexceptions: [{id: X}]\n")
	if code, _, errs := runExceptionsCmd("list", "--policy", bad); code != 1 || !strings.Contains(errs, bad+": exceptions[0].scope: required\n") {
		t.Errorf("invalid policy: %d %q", code, errs)
	}
	for _, args := range [][]string{{"list"}, {"list", "--policy", file, "extra"}, {"list", "--policy", file, "--output", "yaml"}, {"list", "--policy", file, "--now", "12/03"}} {
		if code, _, _ := runExceptionsCmd(args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

func TestExceptionsDue(t *testing.T) {
	file := exceptionsTree(t)
	code, out, _ := runExceptionsCmd("due", "--policy", file, "--within", "14d", "--now", "2026-12-03")
	want := "exceptions of " + file + ` that end within 14d of 2026-12-03 or have expired:

ID        STATUS   WHEN                     OWNER               REPOSITORY                            COVERS                                           EXPIRES     TICKET   NOTE
EXC-0101  expired  last day was 3 days ago  team-a@example.com  team-a/api                            rules prod-signatures                            2026-11-30  -        extended by EXC-0142
EXC-0142  active   ends in 2 days           team-a@example.com  team-a/api:1.4.2                      rules prod-signatures                            2026-12-04  SEC-812  -
EXC-0201  active   ends in 12 days          team-b@example.com  team-b/worker@sha256:aaaaaaaaaaaa...  rules critical-fixable CVE-2026-1234 in openssl  2026-12-14  SEC-901  -
`
	if code != 0 || out != want {
		t.Errorf("due: %d\n%s\nwant\n%s", code, out, want)
	}
	// A shorter window leaves out EXC-0201; on its last day EXC-0142 ends today.
	code, out, _ = runExceptionsCmd("due", "--policy", file, "--within", "1w", "--now", "2026-12-04")
	if code != 0 || !strings.Contains(out, "EXC-0142  active   ends today") || strings.Contains(out, "EXC-0201") {
		t.Errorf("due within 1w: %d\n%s", code, out)
	}
	code, out, _ = runExceptionsCmd("due", "--policy", file, "--within", "0d", "--now", "2026-10-01")
	if code != 0 || out != "no exception of "+file+" ends within 0d of 2026-10-01, and none has expired\n" {
		t.Errorf("nothing due: %d %q", code, out)
	}
	code, out, _ = runExceptionsCmd("due", "--policy", file, "--within", "336h", "--now", "2026-12-03", "--output", "json")
	var l struct {
		Within     string
		Exceptions []struct {
			ID     string
			Status struct{ State string }
		}
	}
	if err := json.Unmarshal([]byte(out), &l); err != nil || code != 0 || l.Within != "336h" || len(l.Exceptions) != 3 || l.Exceptions[0].Status.State != "expired" {
		t.Errorf("json: %d %v %s", code, err, out)
	}
	for _, within := range []string{"soon", "-1d", "14x", "-5h"} {
		if code, _, errs := runExceptionsCmd("due", "--policy", file, "--within", within); code != 2 || !strings.Contains(errs, "--within") {
			t.Errorf("--within %s: %d %q", within, code, errs)
		}
	}
}

func TestExceptionsHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"help"}, {"lint", "-h"}, {"list", "-h"}, {"due", "--help"}, {"vex", "-h"}} {
		code, out, _ := runExceptionsCmd(args...)
		if code != 0 || !strings.Contains(out, "Usage:") {
			t.Errorf("%v: %d %q", args, code, out)
		}
		if args[0] != "-h" && args[0] != "help" && !strings.Contains(out, "Example:\n  portcullis exceptions "+args[0]) {
			t.Errorf("%v: help without an example", args)
		}
	}
	if code, _, _ := runExceptionsCmd(); code != 2 {
		t.Errorf("no command: %d", code)
	}
	if code, _, errs := runExceptionsCmd("renew"); code != 2 || !strings.Contains(errs, `unknown command "renew"`) {
		t.Errorf("unknown command: %d %q", code, errs)
	}
}
