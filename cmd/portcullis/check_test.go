package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/proxy"
)

// A finding quotes what is in the image: nothing in it may start a workflow command of
// its own or rewrite the terminal.
func TestCheckGitHubAnnotationsCannotBeInjected(t *testing.T) {
	rep := &proxy.DecisionReport{Verdict: "deny", Environment: "prod", Action: "pull", Digest: "sha256:aa",
		Results: []proxy.RuleResult{{Rule: "no-secrets", Mode: "block", Outcome: "fail",
			Message: "secret in /etc/x\n::add-mask::hidden\r\n::error::forged 100%\x1b[2J"}}}
	var b bytes.Buffer
	if err := writeGitHub(&b, "r.example/team/app:1.0.0", rep); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "::error title=portcullis no-secrets%3A r.example/team/app%3A1.0.0::") {
		t.Fatalf("annotations:\n%s", out)
	}
	if strings.ContainsAny(out[:len(out)-1], "\r\x1b") || !strings.Contains(out, "100%25") {
		t.Errorf("not escaped: %q", out)
	}

	b.Reset()
	if err := printCheckTable(&b, "r.example/team/app:1.0.0", rep); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(b.String(), "\r\x1b") || strings.Contains(b.String(), "\n::add-mask") {
		t.Errorf("table not escaped:\n%s", b.String())
	}
}

func TestCheckExit(t *testing.T) {
	unchecked := proxy.RuleResult{Rule: "vulns", Mode: "block", Outcome: "fail", CouldNotCheck: "no database imported"}
	denied := proxy.RuleResult{Rule: "no-latest", Mode: "block", Outcome: "fail"}
	for _, tc := range []struct {
		name   string
		rep    proxy.DecisionReport
		failOn string
		want   int
	}{
		{"allow", proxy.DecisionReport{Verdict: "allow"}, "deny", 0},
		{"warn", proxy.DecisionReport{Verdict: "warn"}, "deny", 0},
		{"warn, --fail-on warn", proxy.DecisionReport{Verdict: "warn"}, "warn", 1},
		{"deny", proxy.DecisionReport{Verdict: "deny", Results: []proxy.RuleResult{denied}}, "deny", 1},
		{"deny, only unchecked", proxy.DecisionReport{Verdict: "deny", Results: []proxy.RuleResult{unchecked},
			Undecided: &proxy.Undecided{Reason: "x", Lasting: true, FailMode: "closed"}}, "deny", 3},
		{"deny, unchecked and denied", proxy.DecisionReport{Verdict: "deny", Results: []proxy.RuleResult{unchecked, denied}}, "deny", 1},
		{"unavailable", proxy.DecisionReport{Verdict: "deny", Undecided: &proxy.Undecided{Reason: "x", Unavailable: true}}, "deny", 3},
		{"open fail mode", proxy.DecisionReport{Verdict: "warn", Undecided: &proxy.Undecided{Reason: "x", FailMode: "open"}}, "deny", 0},
	} {
		if got := checkExit(&tc.rep, tc.failOn); got != tc.want {
			t.Errorf("%s: exit %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestCheckUndecidedInMachineFormats(t *testing.T) {
	rep := &proxy.DecisionReport{Verdict: "deny", Environment: "prod", Action: "pull", Repository: "team/app",
		Undecided: &proxy.Undecided{Reason: "no vulnerability database imported", Lasting: true, FailMode: "closed"},
		Results:   []proxy.RuleResult{{Rule: "vulns", Type: "vulnerability", Mode: "block", Outcome: "fail", Message: "could not check", CouldNotCheck: "no db"}}}
	gl := gitlabReport("r/team/app:1", "Dockerfile", rep)
	if len(gl) != 2 || gl[1].CheckName != "portcullis/undecided" || gl[1].Severity != "blocker" || gl[0].Fingerprint == gl[1].Fingerprint {
		t.Errorf("gitlab: %+v", gl)
	}
	tomorrow := *rep
	tomorrow.Results = []proxy.RuleResult{rep.Results[0]}
	tomorrow.Results[0].Message = "could not check, a day later"
	if gl2 := gitlabReport("r/team/app:1", "Dockerfile", &tomorrow); gl2[0].Fingerprint != gl[0].Fingerprint {
		t.Errorf("the fingerprint changes with the message: %s, %s", gl[0].Fingerprint, gl2[0].Fingerprint)
	}
	s := sarifOfDecision("r/team/app:1", "Dockerfile", rep)
	inv := s["runs"].([]any)[0].(map[string]any)["invocations"].([]any)[0].(map[string]any)
	if inv["executionSuccessful"] != false || len(inv["toolExecutionNotifications"].([]any)) != 1 {
		t.Errorf("sarif invocation: %v", inv)
	}
}

func TestCheckHelpAndUsage(t *testing.T) {
	for _, args := range [][]string{{"check", "-h"}, {"check", "--help"}} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 0 || stderr.Len() != 0 ||
			!strings.Contains(stdout.String(), "Example:\n  docker push") || !strings.Contains(stdout.String(), "-fail-on") {
			t.Errorf("%v: exit %d\nstdout:\n%s\nstderr:\n%s", args, code, stdout.String(), stderr.String())
		}
	}
	for _, args := range [][]string{
		{"check"}, {"check", "a/b:1", "c/d:2"}, {"check", "--format", "xml", "r.example/a:1"}, {"check", "--action", "delete", "r.example/a:1"},
		{"check", "--fail-on", "allow", "r.example/a:1"}, {"check", "r.example/a"}, {"check", "app:1"}, {"check", "--timeout", "0s", "r.example/a:1"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 2 || stdout.Len() != 0 || stderr.Len() == 0 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, stdout.String(), stderr.String())
		}
	}
}

// The table lists the decisions the records store holds about the digest, escaped.
func TestCheckTableListsRecordedDecisions(t *testing.T) {
	rep := &proxy.DecisionReport{Verdict: "allow", Environment: "prod", Action: "pull", Digest: "sha256:aa",
		Recorded: []gate.RecordedDecision{{Time: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC), Action: "push",
			Reference: "1.0.0\x1b[2J", Environment: "prod", Verdict: "warn", DecisionID: "4f2a"}}}
	var b bytes.Buffer
	if err := printCheckTable(&b, "r.example/team/app:1.0.0", rep); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "Recorded decisions on this digest") ||
		!strings.Contains(b.String(), "2026-12-03 push 1.0.0") || !strings.Contains(b.String(), "in prod: warn (decision 4f2a)") ||
		strings.Contains(b.String(), "\x1b") {
		t.Errorf("table:\n%s", b.String())
	}
}
