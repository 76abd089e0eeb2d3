package policy

import (
	"strings"
	"testing"
	"time"
)

func TestExplain(t *testing.T) {
	p, err := parseFile(t, "example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 10, 0, 0, 0, 0, time.UTC)
	x := p.Explain(ActionPush, "prod/app", "gw.example", "latest", "", now)
	if x.Environment != "prod" || x.FailMode != FailClosed || x.Verdict != VerdictDeny ||
		x.EnvironmentReason != "first environment whose repositories [prod/**, */release/**] match" || x.PolicyRevision != p.Revision() {
		t.Errorf("explanation = %+v", x)
	}
	type row struct {
		applies          bool
		mode, effective  Mode
		schedule, reason string
		outcome          Outcome
	}
	want := map[string]row{
		"no-latest":        {true, ModeBlock, ModeWarn, "observe until 2026-12-01, warn until 2026-12-15, then block", "", OutcomeFail},
		"release-tags":     {true, ModeBlock, ModeBlock, "block", "", OutcomeFail},
		"prod-pull-pinned": {false, ModeBlock, ModeBlock, "block", "action push is not one of [pull]", ""},
		"immutable-tags":   {true, ModeBlock, ModeBlock, "block", "assumes the tag is new: only the gateway knows whether it already exists upstream", OutcomePass},
		"prod-signed":      {false, ModeWarn, ModeWarn, "warn", "action push is not one of [pull]", ""},
		"critical-fixable": {true, ModeBlock, ModeBlock, "block", "assumes the gateway could not check the image's content: its fail mode decides blocking rules", OutcomeFail},
		"no-root":          {false, ModeOff, ModeOff, "off", "mode is off", ""},
		"no-secrets":       {false, ModeObserve, ModeObserve, "observe", "repository prod/app matches none of [team-a/**]", ""},
	}
	if len(x.Rules) != len(want) {
		t.Fatalf("%d rules explained, want %d", len(x.Rules), len(want))
	}
	for _, r := range x.Rules {
		var outcome Outcome
		if r.Result != nil {
			outcome = r.Result.Outcome
		}
		got := row{r.Applies, r.Mode, r.EffectiveMode, r.Schedule, r.Reason, outcome}
		if got != want[r.Rule] {
			t.Errorf("%s: %+v\nwant %+v", r.Rule, got, want[r.Rule])
		}
	}

	checks := map[string]string{
		"no-latest":        "forbidden [latest]",
		"release-tags":     `allowed [^v?\d+\.\d+\.\d+(-[0-9a-f]{7,40})?$]`,
		"prod-pull-pinned": `allowed [^v?\d+\.\d+\.\d+(-[0-9a-f]{7,40})?$]; pulls by digest or an allowed tag`,
		"immutable-tags":   "a pushed tag never moves to another digest",
		"prod-signed":      "signed by one of release, security",
		"critical-fixable": "no fixable critical+ vulnerabilities; unknown severity counts; an incomplete scan fails; an unknown OS fails",
		"no-secrets":       "no secrets of any type in the configuration and layer files; layers not searched in full fail; files not searched in full are noted",
	}
	for _, r := range x.Rules {
		if r.Checks != checks[r.Rule] {
			t.Errorf("%s checks %q, want %q", r.Rule, r.Checks, checks[r.Rule])
		}
	}

	dev := p.Explain(ActionPull, "team/app", "edge-registry.example:443", "sha256-"+digestA[7:]+".sig", "", now)
	if dev.Environment != "edge" || dev.EnvironmentReason != "first environment whose hosts [edge-registry.example] match" || !dev.Input.Kind.IsArtifact() {
		t.Errorf("edge explanation = %+v", dev)
	}
	for _, r := range dev.Rules {
		if r.Rule == "no-latest" && (r.Applies || !strings.Contains(r.Reason, "is the signature tag cosign and the referrers API use")) {
			t.Errorf("artifact: %+v", r)
		}
	}
	none := mustParse(t, "version: 1\nenvironments:\n  - {name: prod, repositories: ['prod/**']}\n")
	if x := none.Explain(ActionPull, "x", "", "1", "", now); x.Environment != "default" || x.EnvironmentReason != "matches no environment" || x.FailMode != FailClosed {
		t.Errorf("default explanation = %+v", x)
	}
}
