package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/internal/scantest"
	"github.com/portcullis-dev/portcullis/scan/vulndb/vulndbtest"
)

// issue7Policy: base images (base/**) are accepted with their debt, as warnings; in
// applications (team/**) a new fixable critical finding blocks, while findings inherited
// from the base image only warn, for 30 days (critical) or 90 days (high) from the day
// each was first seen in the repository. Exceptions live in exceptions/*.yaml.
const issue7Policy = `version: 1
exceptionProcess: "open a SEC ticket at https://tickets.example/SEC naming the repository, tag and advisory"
exceptionFiles: ["exceptions/*.yaml"]
environments:
  - name: base
    repositories: ["base/**"]
    failMode: closed
  - name: apps
    repositories: ["team/**"]
    failMode: closed
rules:
  - {id: base-debt, type: vulnerability, mode: warn, environments: [base], severity: high, fixable: true, unknown: ignore}
  - {id: no-new-critical, type: vulnerability, mode: block, environments: [apps], severity: critical, fixable: true, unknown: ignore,
     new: true, remediation: {critical: 30d}}
  - {id: new-high, type: vulnerability, mode: warn, environments: [apps], severity: high, unknown: ignore,
     new: true, remediation: {critical: 30d, high: 90d}}
services:
  - {name: app, repositories: [team/app], team: app-team, tier: high}
  - {name: worker, repositories: [team/worker], team: worker-team}
`

// issue7Day0 is day 0 of the scenarios (09:00 UTC); issue7Day(n) is day n.
var issue7Day0 = time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)

func issue7Day(n int) time.Time { return issue7Day0.AddDate(0, 0, n) }

func issue7Date(n int) string { return issue7Day(n).Format(time.DateOnly) }

// workerExceptions are in force from the start: EXC-WRK-1 expired before day 0 and
// EXC-WRK-2 extends it, from day -10 to day 18 (28 days: a reminder window of 14 days,
// so it is reminded of every day from day 5 on; its reminders show that a reminder
// check ran on a given day).
func workerExceptions() string {
	return fmt.Sprintf(`- id: EXC-WRK-1
  scope: {repository: team/worker, vulnerabilities: [CVE-2023-39325], package: golang.org/x/net}
  reason: "the worker serves no HTTP/2"
  owner: worker-team@example.com
  approvedBy: security@example.com
  created: %s
  expires: %s
  severity: high
  closure: "bump golang.org/x/net to 0.17.0"
- id: EXC-WRK-2
  extends: EXC-WRK-1
  scope: {repository: team/worker, vulnerabilities: [CVE-2023-39325], package: golang.org/x/net}
  reason: "the worker serves no HTTP/2; the bump waits for the Q1 release"
  owner: worker-team@example.com
  approvedBy: security@example.com
  created: %s
  expires: %s
  severity: high
  closure: "bump golang.org/x/net to 0.17.0"
  ticket: SEC-5
`, issue7Date(-40), issue7Date(-11), issue7Date(-10), issue7Date(18))
}

// appException is scenario 3's exception: 14 days (day 0 to day 14) for CVE-2024-45337
// in golang.org/x/crypto, in team/app:1.1.1, with an owner and compensating controls.
// Its reminder window is half its length, 7 days (exceptionRules defaults: at least 7,
// at most 14): days 8 to 14.
func appException() string {
	return fmt.Sprintf(`- id: EXC-APP-1
  scope:
    repository: team/app
    tag: "1.1.1"
    vulnerabilities: [CVE-2024-45337]
    package: golang.org/x/crypto
  reason: "the ssh server in 1.1.1 is not exposed; 1.1.2 carries the fix"
  owner: app-team@example.com
  approvedBy: security@example.com
  created: %s
  expires: %s
  severity: critical
  compensatingControls: ["port 22 closed by network policy", "runtime shell detection"]
  closure: "bump golang.org/x/crypto to 0.31.0 and rebuild"
  ticket: SEC-7
`, issue7Date(0), issue7Date(14))
}

// TestIssue7InheritedFindingsAndExceptions runs the six scenarios of issue #7 through
// the real gateway process, with crane, on a clock the test moves (days 0 to 15):
//
//  1. an application rebuilt on an updated base image with 40+ inherited findings (High
//     and Critical among them) is accepted; the inherited findings are reported with
//     their timelines;
//  2. the same change plus one new fixable Critical is denied, naming only it;
//  3. a 14-day exception for it (repository and tag, owner, compensating controls) lets
//     it in, and the audit event names the exception;
//  4. reminders: none on day 5, exactly one on day 8 and on day 12 although reminders
//     are checked every 100 ms; on day 15 it is denied as expired;
//  5. an exception without expiry, one for every repository and a critical one without
//     compensating controls are each refused by `exceptions lint` and by the reload, with
//     field paths, while the previous policy keeps deciding;
//  6. /metrics and `exceptions list` report the counts, ages and overdue share.
func TestIssue7InheritedFindingsAndExceptions(t *testing.T) {
	crane := requireTool(t, "crane")
	dir := t.TempDir()
	testdata := filepath.Join(moduleRootDir(t), "scan", "vulndb", "testdata")

	// The programs, built once. The base image's: one against github.com/docker/docker
	// v24.0.7 (GO-2024-3005, critical) and golang.org/x/net v0.10.0 (GO-2023-2102, high;
	// GHSA-qppj-fm5r-hxr3, medium; and 20 more), one against golang.org/x/text v0.3.5
	// (GO-2022-1059, high) and gopkg.in/yaml.v2 v2.2.2. The application's own binary
	// depends only on golang.org/x/sync v0.10.0 (no advisory); the "sshd" one is built
	// against golang.org/x/crypto v0.30.0 (GO-2024-3321 / CVE-2024-45337, critical, fixed
	// in 0.31.0).
	runtimeBin := scantest.BuildGoProgram(t, scantest.GoProgram{Name: "runtime",
		Require: map[string]string{"github.com/docker/docker": "v24.0.7+incompatible", "golang.org/x/net": "v0.10.0"},
		Imports: []string{"github.com/docker/docker/api/types/versions", "golang.org/x/net/http2", "golang.org/x/net/html"}})
	toolsBin := scantest.BuildGoProgram(t, scantest.GoProgram{Name: "tools",
		Require: map[string]string{"golang.org/x/text": "v0.3.5", "gopkg.in/yaml.v2": "v2.2.2"},
		Imports: []string{"golang.org/x/text/language", "gopkg.in/yaml.v2"}})
	appBin := scantest.BuildGoProgram(t, scantest.GoProgram{Name: "app",
		Require: map[string]string{"golang.org/x/sync": "v0.10.0"}, Imports: []string{"golang.org/x/sync/errgroup"}})
	sshdBin := scantest.BuildGoProgram(t, scantest.GoProgram{Name: "sshd",
		Require: map[string]string{"golang.org/x/crypto": "v0.30.0"}, Imports: []string{"golang.org/x/crypto/ssh"}})
	baseTar := writeTar(t, dir, "base.tar", map[string][]byte{"usr/bin/runtime": readFile(t, runtimeBin), "usr/bin/tools": readFile(t, toolsBin)})
	appTar := writeTar(t, dir, "app.tar", map[string][]byte{"app/app": readFile(t, appBin)})
	sshdTar := writeTar(t, dir, "sshd.tar", map[string][]byte{"app/sshd": readFile(t, sshdBin)})

	// The Go advisories, with GitHub's records giving their severities.
	dbDir := filepath.Join(dir, "vulndb")
	runTool(t, gatewayBin, "db", "import", "--db", dbDir, vulndbtest.GoOSVDir(t),
		filepath.Join(testdata, "ghsa-go"), filepath.Join(testdata, "ghsa-go-crypto-2024"),
		filepath.Join(testdata, "ghsa-go-crypto-2025"), filepath.Join(testdata, "ghsa-go-base"))

	polDir := filepath.Join(dir, "policy")
	if err := os.MkdirAll(filepath.Join(polDir, "exceptions"), 0o755); err != nil {
		t.Fatal(err)
	}
	policyPath := filepath.Join(polDir, "policy.yaml")
	writeFile(t, policyPath, []byte(issue7Policy))
	writeFile(t, filepath.Join(polDir, "exceptions", "worker.yaml"), []byte(workerExceptions()))
	appExceptions := filepath.Join(polDir, "exceptions", "app.yaml")
	refused := filepath.Join(polDir, "exceptions", "zz-refused.yaml")

	clock := newTestClock(t, issue7Day(0))
	cfg := filepath.Join(dir, "portcullis.yaml")
	writeFile(t, cfg, []byte(fmt.Sprintf("scan:\n  db: %q\n", dbDir)))
	data := filepath.Join(dir, "data")
	gw := startGatewayEnv(t, []string{"PORTCULLIS_TEST_CLOCK=" + clock.path},
		"--config", cfg, "--policy", policyPath, "--data-dir", data, "--upstream", regtest.Registry(t))
	auditPath := filepath.Join(data, "audit.log")
	base := gw.addr + "/base/runtime:2"
	// appendApp pushes tag of team/app: the base image plus layers, annotated with the
	// base image (org.opencontainers.image.base.name and .digest), as a build FROM it.
	appendApp := func(tag string, layers ...string) (stdout, stderr string, err error) {
		args := []string{"append", "--insecure", "-b", base, "--set-base-image-annotations", "-t", gw.addr + "/team/app:" + tag}
		for _, l := range layers {
			args = append(args, "-f", l)
		}
		return tryTool(crane, args...)
	}

	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow() // the scenarios build on each other
		}
	}
	var (
		baseDigest  string
		inherited   []auditFinding // scenario 1's inherited findings
		revision    string         // the policy revision with scenario 3's exception
		metricsDay0 []metricSample
	)

	step("1 rebuild on an updated base: accepted, inherited findings warn with their timelines", func(t *testing.T) {
		// The updated base, base/runtime:2, is accepted with its debt (warnings only).
		out, stderr := runTool(t, crane, "append", "--insecure", "--oci-empty-base", "-f", baseTar, "-t", base)
		_, baseDigest, _ = strings.Cut(strings.TrimSpace(out), "@")
		if !strings.Contains(stderr, "[base-debt]") {
			t.Errorf("the base push does not warn about its findings:\n%s", stderr)
		}
		// team/app:1.1.0, rebuilt on it: accepted, warning about what it inherits, each
		// finding with the days left in its remediation window.
		_, stderr, err := appendApp("1.1.0", appTar)
		if err != nil {
			t.Fatalf("push of team/app:1.1.0 on the updated base: %v\n%s", err, stderr)
		}
		for _, want := range []string{
			"[no-new-critical]", "inherited from the base image base/runtime@",
			"GO-2024-3005", "CVE-2024-41110", "github.com/docker/docker", "fixed in 25.0.6",
			"30 days left to fix (first seen " + issue7Date(0) + ", window 30d)",
			"[new-high]", "GO-2023-2102", "GO-2022-1059", "90 days left to fix (first seen " + issue7Date(0) + ", window 90d)",
		} {
			if !strings.Contains(stderr, want) {
				t.Errorf("the warnings of the push of team/app:1.1.0 do not say %q:\n%s", want, stderr)
			}
		}
		ev := lastDecision(t, auditPath, "push", "team/app", "1.1.0")
		if ev.Verdict != "warn" {
			t.Errorf("verdict %q, want warn", ev.Verdict)
		}
		v := ev.Vulnerabilities
		if v == nil {
			t.Fatalf("the audit event has no vulnerabilities field: %+v", ev)
		}
		// The decision used the base image the annotations name.
		if b := v.Baseline; b == nil || b.How != "base-annotation" || b.Repository != "base/runtime" || b.Digest != baseDigest {
			t.Errorf("baseline %+v (note %q), want base-annotation base/runtime@%s", v.Baseline, v.BaselineNote, baseDigest)
		}
		if len(v.New) != 0 {
			t.Errorf("%d new findings, want none (the application's own binary has no vulnerable dependency): %v", len(v.New), v.New)
		}
		inherited = v.Inherited
		sev := map[string]int{}
		for _, f := range inherited {
			sev[f.Severity]++
			if f.FirstSeen != issue7Date(0) {
				t.Errorf("inherited %s in %s first seen %q, want %s", f.ID, f.Package, f.FirstSeen, issue7Date(0))
			}
		}
		// A binary's standard library is one package of its own: count each advisory
		// once per package (module) name.
		distinct := advisories(inherited)
		t.Logf("%d inherited findings, %d distinct advisory-package pairs; by severity: %v", len(inherited), len(distinct), sev)
		if len(distinct) < 40 {
			t.Errorf("%d inherited advisory-package pairs, want at least 40: %v", len(distinct), distinct)
		}
		for id, want := range map[string]string{"GO-2024-3005": "critical", "GO-2023-2102": "high", "GO-2022-1059": "high"} {
			if f, ok := findFinding(inherited, id); !ok || f.Severity != want {
				t.Errorf("inherited %s: %+v (found %v), want severity %s", id, f, ok, want)
			}
		}
		if sev["critical"] < 1 || sev["high"] < 2 {
			t.Errorf("inherited severities %v, want critical and high ones among them", sev)
		}
	})

	step("2 the same change plus one new fixable critical: denied, naming only it", func(t *testing.T) {
		_, stderr, err := appendApp("1.1.1", appTar, sshdTar)
		if err == nil {
			t.Fatal("team/app:1.1.1 with a new fixable critical vulnerability was accepted")
		}
		for _, want := range []string{
			"DENIED", "[no-new-critical] 1 new fixable critical+ vulnerabilities: GO-2024-3321",
			"CVE-2024-45337", "GHSA-v778-237x-gjrc", "golang.org/x/crypto", "bump golang.org/x/crypto to 0.31.0",
		} {
			if !strings.Contains(stderr, want) {
				t.Errorf("the denial does not say %q:\n%s", want, stderr)
			}
		}
		ev := lastDecision(t, auditPath, "push", "team/app", "1.1.1")
		if ev.Verdict != "deny" {
			t.Errorf("verdict %q, want deny", ev.Verdict)
		}
		if v := ev.Vulnerabilities; v == nil || v.Baseline == nil || v.Baseline.Digest != baseDigest {
			t.Errorf("vulnerabilities %+v: want the base image %s as baseline", v, baseDigest)
		} else {
			var critical []string
			for _, f := range v.New {
				if f.Severity == "critical" {
					critical = append(critical, f.ID)
				}
			}
			if !slices.Equal(critical, []string{"GO-2024-3321"}) {
				t.Errorf("new critical findings %v, want exactly GO-2024-3321", critical)
			}
			if got, want := advisories(v.Inherited), advisories(inherited); !slices.Equal(got, want) {
				t.Errorf("inherited advisories %v, want those of team/app:1.1.0, %v", got, want)
			}
		}
		// None of the inherited findings in the denial. The rule that blocks also counts
		// the inherited critical GO-2024-3005, and a failing rule's finding lists the
		// inherited findings still in their window after the new ones ("..., which only
		// warn: GO-2024-3005 ..."); the denial carries that whole finding.
		var named, gaps []string
		for _, id := range append(findingIDs(inherited), "CVE-2024-41110", "GHSA-v23v-6jw2-98fq") {
			if strings.Contains(stderr, id) {
				named = append(named, id)
			}
		}
		if len(named) > 0 {
			gaps = append(gaps, fmt.Sprintf("the denial names inherited findings %v besides the new one:\n%s", named, stderr))
		}
		productGap(t, "a denial names only the findings that block", gaps)
	})

	step("3 a 14-day exception for that vulnerability, repository and tag: accepted, the audit event names it", func(t *testing.T) {
		writeFile(t, appExceptions, []byte(appException()))
		revision = lintRevision(t, policyPath, issue7Date(0))
		reloadPolicy(t, gw, revision)
		_, stderr, err := appendApp("1.1.1", appTar, sshdTar)
		if err != nil {
			t.Fatalf("push of team/app:1.1.1 under exception EXC-APP-1: %v\n%s", err, stderr)
		}
		ev := lastDecision(t, auditPath, "push", "team/app", "1.1.1")
		if ev.Verdict == "deny" || ev.PolicyRevision != revision {
			t.Errorf("verdict %q under policy %s, want allowed under %s", ev.Verdict, ev.PolicyRevision, revision)
		}
		// The audit event names the exception; so do the warnings crane shows.
		r, _ := ev.result("no-new-critical")
		if !strings.Contains(r.Finding, "covered by exception EXC-APP-1") && (r.Exception == nil || r.Exception.ID != "EXC-APP-1") {
			t.Errorf("the no-new-critical result does not name EXC-APP-1: %+v", r)
		}
		if !strings.Contains(stderr, "EXC-APP-1") {
			t.Errorf("the push's warnings do not name EXC-APP-1:\n%s", stderr)
		}
		// The exception as a field of the result (what portcullis_exceptions_applied_total
		// counts), and its owner, end and ticket in what the client sees.
		var gaps []string
		if e := r.Exception; e == nil || e.ID != "EXC-APP-1" || e.Owner != "app-team@example.com" || e.Expires != issue7Date(14) || e.Ticket != "SEC-7" {
			gaps = append(gaps, fmt.Sprintf("the no-new-critical result (outcome %s, mode %s) has exception %+v; EXC-APP-1 is named only in its text: %q", r.Outcome, r.Mode, e, r.Finding))
		}
		if want := "covered by exception EXC-APP-1 (owner app-team@example.com) until " + issue7Date(14); !strings.Contains(stderr, want) {
			gaps = append(gaps, fmt.Sprintf("crane's warnings do not say %q (nor the ticket SEC-7)", want))
		}
		productGap(t, "the applied exception is recorded as such when inherited findings also warn", gaps)
		metricsDay0 = scrapeMetrics(t, gw)
	})

	step("4 reminders on days 8 and 12, none on day 5, exactly one a day; expired on day 15", func(t *testing.T) {
		// Day 5: EXC-WRK-2's reminder shows a check ran on day 5; then ten more checks
		// (the gateway's reminder-check counter). None of them reminded of EXC-APP-1 (window: days 8 to 14).
		clock.set(t, issue7Day(5))
		awaitReminder(t, auditPath, "EXC-WRK-2", 5)
		awaitReminderChecks(t, gw, 10)
		if n := len(reminders(t, auditPath, "EXC-APP-1")); n != 0 {
			t.Errorf("%d exception.expiring events for EXC-APP-1 by day 5, want none", n)
		}
		for _, day := range []int{8, 12} {
			clock.set(t, issue7Day(day))
			awaitReminder(t, auditPath, "EXC-APP-1", day)
			awaitReminderChecks(t, gw, 10) // ten more checks on the same day
			var got []issue7Event
			for _, e := range reminders(t, auditPath, "EXC-APP-1") {
				if e.Time.Format(time.DateOnly) == issue7Date(day) {
					got = append(got, e)
				}
			}
			if len(got) != 1 {
				t.Fatalf("%d exception.expiring events for EXC-APP-1 on day %d, want exactly 1: %+v", len(got), day, got)
			}
			e := got[0]
			if e.DaysLeft != 15-day || e.Repository != "team/app" || e.Exception.Owner != "app-team@example.com" ||
				e.Exception.Expires != issue7Date(14) || e.Exception.Ticket != "SEC-7" || e.Service == nil || e.Service.Team != "app-team" {
				t.Errorf("day %d reminder %+v (exception %+v, service %+v), want %d days left, team/app, app-team@example.com, expires %s, SEC-7, team app-team",
					day, e, e.Exception, e.Service, 15-day, issue7Date(14))
			}
			if n := countOnDay(reminders(t, auditPath, "EXC-WRK-2"), day); n != 1 {
				t.Errorf("%d reminders of EXC-WRK-2 on day %d, want 1", n, day)
			}
		}
		if n := len(reminders(t, auditPath, "EXC-APP-1")); n != 2 {
			t.Errorf("%d reminders of EXC-APP-1 in all (days 5, 8 and 12 seen), want 2", n)
		}

		// Day 15: EXC-APP-1 has expired (no reminder), and the pull of 1.1.1 is denied.
		clock.set(t, issue7Day(15))
		awaitReminder(t, auditPath, "EXC-WRK-2", 15)
		awaitReminderChecks(t, gw, 10)
		if n := len(reminders(t, auditPath, "EXC-APP-1")); n != 2 {
			t.Errorf("%d reminders of EXC-APP-1 after day 15, want still 2 (it has expired)", n)
		}
		_, stderr, err := tryTool(crane, "manifest", "--insecure", gw.addr+"/team/app:1.1.1")
		if err == nil {
			t.Fatal("team/app:1.1.1 is served on day 15, after EXC-APP-1 expired")
		}
		for _, want := range []string{"DENIED", "[no-new-critical] 1 new fixable critical+ vulnerabilities: GO-2024-3321"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("the day-15 denial does not say %q:\n%s", want, stderr)
			}
		}
		ev := lastDecision(t, auditPath, "pull", "team/app", "1.1.1")
		if ev.Verdict != "deny" {
			t.Errorf("day-15 pull: verdict %q, want deny", ev.Verdict)
		}
		// Saying that the exception expired: in the denial, and in the result's
		// expiredException (what portcullis_exceptions_overdue_matches_total counts).
		var gaps []string
		if want := "EXC-APP-1 expired on " + issue7Date(14); !strings.Contains(stderr, want) {
			gaps = append(gaps, fmt.Sprintf("the denial does not say %q", want))
		}
		if r, _ := ev.result("no-new-critical"); r.ExpiredException == nil || r.ExpiredException.ID != "EXC-APP-1" {
			gaps = append(gaps, fmt.Sprintf("the no-new-critical result has no expiredException: %+v", r))
		}
		productGap(t, "a denial after a vulnerability exception expired says so", gaps)
	})

	step("5 no expiry, every repository, critical without compensating controls: refused by lint and reload", func(t *testing.T) {
		info := readyInfo(t, gw)["policy"]
		if !strings.HasPrefix(info, "revision "+revision+" ") {
			t.Fatalf("/readyz policy %q, want revision %s in force", info, revision)
		}
		const src = "exceptionFiles[0] (exceptions/zz-refused.yaml)[0]"
		// Each would cover the day-15 pull of team/app:1.1.1 if it were accepted.
		for _, c := range []struct{ name, yaml, problem string }{
			{"no expiry", `- id: EXC-APP-2
  scope: {repository: team/app, tag: "1.1.1", vulnerabilities: [CVE-2024-45337]}
  reason: "until the next release"
  owner: app-team@example.com
  approvedBy: security@example.com
  created: %[1]s
  severity: high
  closure: "bump golang.org/x/crypto to 0.31.0"
`, src + ".expires: required"},
			{"every repository", `- id: EXC-ALL-1
  scope: {repository: "**", vulnerabilities: [CVE-2024-45337]}
  reason: "no ssh server is exposed anywhere"
  owner: app-team@example.com
  approvedBy: security@example.com
  created: %[1]s
  expires: %[2]s
  severity: high
  closure: "bump golang.org/x/crypto to 0.31.0"
`, src + `.scope.repository: "**" would cover the whole registry`},
			{"critical without compensating controls", `- id: EXC-APP-3
  scope: {repository: team/app, tag: "1.1.1", vulnerabilities: [CVE-2024-45337]}
  reason: "the ssh server is not exposed"
  owner: app-team@example.com
  approvedBy: security@example.com
  created: %[1]s
  expires: %[2]s
  severity: critical
  closure: "bump golang.org/x/crypto to 0.31.0"
`, src + ".compensatingControls: a critical exception needs at least one compensating control"},
		} {
			t.Run(c.name, func(t *testing.T) {
				writeFile(t, refused, fmt.Appendf(nil, c.yaml, issue7Date(15), issue7Date(20)))
				out, stderr, err := tryTool(gatewayBin, "exceptions", "lint", "--now", issue7Date(15), policyPath)
				var exit *exec.ExitError
				if !errors.As(err, &exit) || exit.ExitCode() != 1 {
					t.Errorf("exceptions lint: %v, want exit status 1\n%s%s", err, out, stderr)
				}
				if !strings.Contains(out, c.problem) {
					t.Errorf("exceptions lint does not say %q:\n%s", c.problem, out)
				}
				if err := gw.cmd.Process.Signal(syscall.SIGHUP); err != nil {
					t.Fatal(err)
				}
				var info string
				if !poll(20*time.Second, func() bool {
					info = readyInfo(t, gw)["policy"]
					return strings.Contains(info, "refused") && strings.Contains(info, c.problem)
				}) {
					t.Fatalf("/readyz policy %q does not report the refused reload with %q", info, c.problem)
				}
				if !strings.HasPrefix(info, "revision "+revision+" ") {
					t.Errorf("/readyz policy %q: want revision %s still in force", info, revision)
				}
				// A decision by the previous policy: the pull is still denied (EXC-APP-1
				// has expired), where the refused exception would have let it through.
				_, stderr, err = tryTool(crane, "manifest", "--insecure", gw.addr+"/team/app:1.1.1")
				if err == nil || !strings.Contains(stderr, "DENIED") || !strings.Contains(stderr, "GO-2024-3321") {
					t.Errorf("pull of team/app:1.1.1 after the refused reload: %v\n%s\nwant denied for GO-2024-3321", err, stderr)
				}
				if ev := lastDecision(t, auditPath, "pull", "team/app", "1.1.1"); ev.PolicyRevision != revision || ev.Verdict != "deny" {
					t.Errorf("the pull was decided %q by policy %s, want deny by the previous policy %s", ev.Verdict, ev.PolicyRevision, revision)
				}
			})
		}
		if err := os.Remove(refused); err != nil {
			t.Fatal(err)
		}
		reloadPolicy(t, gw, revision)
	})

	step("6 metrics and exceptions list report counts, ages and the overdue share", func(t *testing.T) {
		// Day 0, after scenario 3: EXC-APP-1 (age 0) and EXC-WRK-2 (age 10) active,
		// EXC-WRK-1 expired and extended once.
		checkExceptionMetrics(t, "day 0", metricsDay0, exceptionHealth{
			active: map[string]float64{
				"app-team@example.com team/app app app-team high":         1,
				"worker-team@example.com team/worker worker worker-team ": 1,
			},
			expired:    map[string]float64{"worker-team@example.com worker-team": 1},
			ageAverage: 5, extensions: 1,
		})
		// Day 15: EXC-APP-1 has expired too; EXC-WRK-2 (age 25) is the only one active.
		m := scrapeMetrics(t, gw)
		checkExceptionMetrics(t, "day 15", m, exceptionHealth{
			active:     map[string]float64{"worker-team@example.com team/worker worker worker-team ": 1},
			expired:    map[string]float64{"app-team@example.com app-team": 1, "worker-team@example.com worker-team": 1},
			ageAverage: 25, extensions: 1,
		})
		// How often EXC-APP-1 applied, and how often it still matched once expired
		// (the day-15 pull and the three pulls of scenario 5): the metrics count the
		// results the audit log records.
		applied, overdue := 0, 0
		pulls := 0
		for _, e := range decisions(t, auditPath) {
			for _, r := range e.Results {
				if r.Exception != nil && r.Exception.ID == "EXC-APP-1" {
					applied++
				}
				if r.ExpiredException != nil && r.ExpiredException.ID == "EXC-APP-1" {
					overdue++
				}
			}
			if e.Action == "pull" && e.Repository == "team/app" && e.Verdict == "deny" {
				pulls++
			}
		}
		if pulls != 4 {
			t.Errorf("%d denied pulls of team/app in the audit log, want 4 (day 15, and one per refused reload)", pulls)
		}
		labels := map[string]string{"exception": "EXC-APP-1", "owner": "app-team@example.com", "service": "app", "team": "app-team"}
		appliedM := sumMetric(m, "portcullis_exceptions_applied_total", labels)
		overdueM := sumMetric(m, "portcullis_exceptions_overdue_matches_total", labels)
		if appliedM != float64(applied) {
			t.Errorf("portcullis_exceptions_applied_total{EXC-APP-1} = %v, want %d (the audit log)", appliedM, applied)
		}
		if overdueM != float64(overdue) {
			t.Errorf("portcullis_exceptions_overdue_matches_total{EXC-APP-1} = %v, want %d (the audit log)", overdueM, overdue)
		}
		var gaps []string
		if applied < 1 {
			gaps = append(gaps, fmt.Sprintf("EXC-APP-1 let team/app:1.1.1 in on day 0, but portcullis_exceptions_applied_total{exception=EXC-APP-1} is %v (no result carries it as its exception)", appliedM))
		}
		if overdue < pulls {
			gaps = append(gaps, fmt.Sprintf("the expired EXC-APP-1 still matched %d denied pulls, but portcullis_exceptions_overdue_matches_total{exception=EXC-APP-1} is %v (no result carries it as expiredException)", pulls, overdueM))
		}
		productGap(t, "the applied and overdue-match counters count vulnerability exceptions", gaps)
		activeN, expiredN := sumMetric(m, "portcullis_exceptions_active", nil), sumMetric(m, "portcullis_exceptions_expired", nil)
		shareM := sumMetric(m, "portcullis_exceptions_overdue_share", nil)
		t.Logf("day 15: %v active, %v expired, overdue share %.2f; EXC-APP-1 applied %v times, matched %v times while overdue",
			activeN, expiredN, shareM, appliedM, overdueM)
		if activeN != 1 || expiredN != 2 {
			t.Errorf("day 15: %v active and %v expired exceptions, want 1 and 2", activeN, expiredN)
		}
		// Overdue: expired and still matching what is pulled. EXC-APP-1 is (the denied
		// pulls above); the other expired exception matches nothing: 1 of 1 + 1 in force.
		if shareM != 0.5 {
			t.Errorf("portcullis_exceptions_overdue_share = %v, want 0.5 (EXC-APP-1 overdue, one exception in force)", shareM)
		}

		// exceptions list: the same counts and ages as the metrics, on day 0 and day 15.
		for _, c := range []struct {
			day  int
			want map[string]listedStatus
		}{
			{0, map[string]listedStatus{
				"EXC-APP-1": {"active", 15, 0, 0, 7},
				"EXC-WRK-1": {"expired", 0, 40, 1, 14},
				"EXC-WRK-2": {"active", 19, 10, 0, 14},
			}},
			{15, map[string]listedStatus{
				"EXC-APP-1": {"expired", 0, 15, 0, 7},
				"EXC-WRK-1": {"expired", 0, 55, 1, 14},
				"EXC-WRK-2": {"active", 4, 25, 0, 14},
			}},
		} {
			got := listExceptions(t, policyPath, issue7Date(c.day))
			if len(got) != len(c.want) {
				t.Errorf("exceptions list on day %d: %v, want %v", c.day, got, c.want)
			}
			for id, want := range c.want {
				if got[id] != want {
					t.Errorf("exceptions list on day %d: %s %+v, want %+v", c.day, id, got[id], want)
				}
			}
			// What the list gives agrees with the metrics of that day.
			var active, expired, ages float64
			for _, e := range got {
				switch e.State {
				case "active":
					active++
					ages += float64(e.Age)
				case "expired":
					expired++
				}
			}
			ms := map[int][]metricSample{0: metricsDay0, 15: m}[c.day]
			mActive, mExpired := sumMetric(ms, "portcullis_exceptions_active", nil), sumMetric(ms, "portcullis_exceptions_expired", nil)
			if active != mActive || expired != mExpired || ages/active != sumMetric(ms, "portcullis_exceptions_age_average_days", nil) {
				t.Errorf("day %d: exceptions list gives %v active (average age %v) and %v expired; the metrics %v, %v and %v",
					c.day, active, ages/active, expired, mActive, sumMetric(ms, "portcullis_exceptions_age_average_days", nil), mExpired)
			}
			t.Logf("day %d: %v active, average age %v days, %v expired (expired share %.2f)", c.day, active, ages/active, expired, expired/(active+expired))
		}
		out, _ := runTool(t, gatewayBin, "exceptions", "list", "--policy", policyPath, "--now", issue7Date(15))
		if !regexp.MustCompile(`(?m)^EXC-APP-1\s+expired\s+app-team@example\.com\s+team/app:1\.1\.1\s+app\s+app-team\s.*\s15d\s+0$`).MatchString(out) {
			t.Errorf("exceptions list (table) on day 15 does not show EXC-APP-1 expired, aged 15 days:\n%s", out)
		}
	})
}

// productGap fails the test with each shortfall gaps lists: assertions that the product
// did not meet when the scenarios were first written (they are met now).
func productGap(t *testing.T, what string, gaps []string) {
	t.Helper()
	for _, g := range gaps {
		t.Errorf("%s: %s", what, g)
	}
}

// issue7Event is the part of an audit event these scenarios read.
type issue7Event struct {
	Time            time.Time      `json:"time"`
	Type            string         `json:"type"`
	Action          string         `json:"action"`
	Repository      string         `json:"repository"`
	Reference       string         `json:"reference"`
	Digest          string         `json:"digest"`
	Verdict         string         `json:"verdict"`
	PolicyRevision  string         `json:"policyRevision"`
	Results         []issue7Result `json:"results"`
	Vulnerabilities *struct {
		Baseline *struct {
			How        string `json:"how"`
			Repository string `json:"repository"`
			Digest     string `json:"digest"`
		} `json:"baseline"`
		BaselineNote string         `json:"baselineNote"`
		New          []auditFinding `json:"new"`
		Inherited    []auditFinding `json:"inherited"`
	} `json:"vulnerabilities"`
	Exception *issue7Exception `json:"exception"`
	DaysLeft  int              `json:"daysLeft"`
	Service   *struct {
		Name string `json:"name"`
		Team string `json:"team"`
		Tier string `json:"tier"`
	} `json:"service"`
}

type issue7Result struct {
	Rule             string           `json:"rule"`
	Mode             string           `json:"mode"`
	Outcome          string           `json:"outcome"`
	Finding          string           `json:"finding"`
	Exception        *issue7Exception `json:"exception"`
	ExpiredException *issue7Exception `json:"expiredException"`
}

type issue7Exception struct {
	ID      string `json:"id"`
	Owner   string `json:"owner"`
	Expires string `json:"expires"`
	Ticket  string `json:"ticket"`
}

type auditFinding struct {
	ID        string `json:"id"`
	Package   string `json:"package"`
	Version   string `json:"version"`
	Severity  string `json:"severity"`
	FirstSeen string `json:"firstSeen"`
}

// result returns the event's result for rule.
func (e issue7Event) result(rule string) (issue7Result, bool) {
	for _, r := range e.Results {
		if r.Rule == rule {
			return r, true
		}
	}
	return issue7Result{}, false
}

// issue7Events reads the complete lines of the audit log (the gateway may be writing
// the next one).
func issue7Events(t *testing.T, path string) []issue7Event {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	var out []issue7Event
	for _, line := range lines[:len(lines)-1] {
		var e issue7Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}

// decisions returns the decision events of the audit log.
func decisions(t *testing.T, path string) []issue7Event {
	t.Helper()
	var out []issue7Event
	for _, e := range issue7Events(t, path) {
		if e.Type == "decision" {
			out = append(out, e)
		}
	}
	return out
}

// lastDecision returns the last decision event for action on repo:ref.
func lastDecision(t *testing.T, path, action, repo, ref string) issue7Event {
	t.Helper()
	ds := decisions(t, path)
	for i := len(ds) - 1; i >= 0; i-- {
		if e := ds[i]; e.Action == action && e.Repository == repo && e.Reference == ref {
			return e
		}
	}
	t.Fatalf("no %s decision for %s:%s in the audit log", action, repo, ref)
	return issue7Event{}
}

// reminders returns the exception.expiring events for exception id.
func reminders(t *testing.T, path, id string) []issue7Event {
	t.Helper()
	var out []issue7Event
	for _, e := range issue7Events(t, path) {
		if e.Type == "exception.expiring" && e.Exception != nil && e.Exception.ID == id {
			out = append(out, e)
		}
	}
	return out
}

// countOnDay counts the events of scenario day day.
func countOnDay(es []issue7Event, day int) int {
	n := 0
	for _, e := range es {
		if e.Time.UTC().Format(time.DateOnly) == issue7Date(day) {
			n++
		}
	}
	return n
}

// awaitReminder waits (up to 20 s) for the reminder of exception id on scenario day day.
func awaitReminder(t *testing.T, path, id string, day int) {
	t.Helper()
	if !poll(20*time.Second, func() bool { return countOnDay(reminders(t, path, id), day) > 0 }) {
		t.Fatalf("no exception.expiring event for %s on day %d (%s)", id, day, issue7Date(day))
	}
}

func findFinding(fs []auditFinding, id string) (auditFinding, bool) {
	for _, f := range fs {
		if f.ID == id {
			return f, true
		}
	}
	return auditFinding{}, false
}

// advisories returns the distinct "ID in package" of findings, sorted.
func advisories(fs []auditFinding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.ID+" in "+f.Package)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func findingIDs(fs []auditFinding) []string {
	var ids []string
	for _, f := range fs {
		if !slices.Contains(ids, f.ID) {
			ids = append(ids, f.ID)
		}
	}
	return ids
}

// lintRevision runs `exceptions lint` on the policy (on day) and returns its revision;
// the policy must be valid.
func lintRevision(t *testing.T, policyPath, day string) string {
	t.Helper()
	out, _ := runTool(t, gatewayBin, "exceptions", "lint", "--now", day, "--output", "json", policyPath)
	var res []struct {
		Valid    bool   `json:"valid"`
		Revision string `json:"revision"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res) != 1 || !res[0].Valid || res[0].Revision == "" {
		t.Fatalf("exceptions lint --output json: %v\n%s", err, out)
	}
	return res[0].Revision
}

// reloadPolicy sends SIGHUP (the watcher polls the policy file, not the exception files
// it names) and waits until /readyz shows revision in force with no refused reload.
func reloadPolicy(t *testing.T, gw *gateway, revision string) {
	t.Helper()
	if err := gw.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	var info string
	if !poll(20*time.Second, func() bool {
		info = readyInfo(t, gw)["policy"]
		return strings.HasPrefix(info, "revision "+revision+" ") && !strings.Contains(info, "refused")
	}) {
		t.Fatalf("/readyz policy %q: want revision %s in force", info, revision)
	}
}

// listedStatus is what `exceptions list --output json` says of one exception.
type listedStatus struct {
	State          string
	DaysLeft, Age  int
	Extensions     int
	ReminderWindow int
}

func listExceptions(t *testing.T, policyPath, day string) map[string]listedStatus {
	t.Helper()
	out, _ := runTool(t, gatewayBin, "exceptions", "list", "--policy", policyPath, "--now", day, "--output", "json")
	var l struct {
		Exceptions []struct {
			ID             string `json:"id"`
			Extensions     int    `json:"extensions"`
			ReminderWindow int    `json:"reminderWindow"`
			Status         struct {
				State    string `json:"state"`
				DaysLeft int    `json:"daysLeft"`
				AgeDays  int    `json:"ageDays"`
			} `json:"status"`
		} `json:"exceptions"`
	}
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("exceptions list --output json: %v\n%s", err, out)
	}
	got := map[string]listedStatus{}
	for _, e := range l.Exceptions {
		got[e.ID] = listedStatus{e.Status.State, e.Status.DaysLeft, e.Status.AgeDays, e.Extensions, e.ReminderWindow}
	}
	return got
}

// metricSample is one sample of the Prometheus text format.
type metricSample struct {
	name   string
	labels map[string]string
	value  float64
}

var (
	sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)`)
	labelPair  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)
)

// scrapeMetrics reads the gateway's /metrics.
func scrapeMetrics(t *testing.T, gw *gateway) []metricSample {
	t.Helper()
	resp, err := http.Get(gw.adminURL("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out []metricSample
	for _, line := range strings.Split(string(b), "\n") {
		m := sampleLine.FindStringSubmatch(line)
		if m == nil || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		s := metricSample{name: m[1], labels: map[string]string{}, value: v}
		for _, p := range labelPair.FindAllStringSubmatch(m[2], -1) {
			s.labels[p[1]] = p[2]
		}
		out = append(out, s)
	}
	return out
}

// sumMetric sums the samples of name whose labels include labels.
func sumMetric(ms []metricSample, name string, labels map[string]string) float64 {
	sum := 0.0
	for _, s := range ms {
		if s.name != name {
			continue
		}
		ok := true
		for k, v := range labels {
			ok = ok && s.labels[k] == v
		}
		if ok {
			sum += s.value
		}
	}
	return sum
}

// exceptionHealth is what the exception gauges should show: active series keyed
// "owner repository service team tier", expired series keyed "owner team".
type exceptionHealth struct {
	active, expired        map[string]float64
	ageAverage, extensions float64
}

func checkExceptionMetrics(t *testing.T, when string, ms []metricSample, want exceptionHealth) {
	t.Helper()
	active, expired := map[string]float64{}, map[string]float64{}
	for _, s := range ms {
		l := s.labels
		switch s.name {
		case "portcullis_exceptions_active":
			active[strings.Join([]string{l["owner"], l["repository"], l["service"], l["team"], l["tier"]}, " ")] += s.value
		case "portcullis_exceptions_expired":
			expired[l["owner"]+" "+l["team"]] += s.value
		}
	}
	if !maps.Equal(active, want.active) {
		t.Errorf("%s: portcullis_exceptions_active %v, want %v", when, active, want.active)
	}
	if !maps.Equal(expired, want.expired) {
		t.Errorf("%s: portcullis_exceptions_expired %v, want %v", when, expired, want.expired)
	}
	if got := sumMetric(ms, "portcullis_exceptions_age_average_days", nil); got != want.ageAverage {
		t.Errorf("%s: portcullis_exceptions_age_average_days %v, want %v", when, got, want.ageAverage)
	}
	if got := sumMetric(ms, "portcullis_exceptions_extensions", nil); got != want.extensions {
		t.Errorf("%s: portcullis_exceptions_extensions %v, want %v", when, got, want.extensions)
	}
}
