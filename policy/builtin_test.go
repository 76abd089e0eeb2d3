package policy

import (
	"reflect"
	"strings"
	"testing"
)

func TestBuiltinNames(t *testing.T) {
	if got, want := BuiltinNames(), []string{"observe", "starter"}; !reflect.DeepEqual(got, want) {
		t.Errorf("BuiltinNames() = %q, want %q", got, want)
	}
	_, err := Builtin("strict")
	if err == nil || err.Error() != `no built-in policy named "strict" (want observe or starter)` {
		t.Errorf("Builtin(strict) error = %v", err)
	}
}

func TestBuiltinStarter(t *testing.T) {
	p, err := Builtin(BuiltinDefault)
	if err != nil {
		t.Fatal(err)
	}
	type rule struct {
		id, typ string
		mode    Mode
		envs    []string
	}
	var got []rule
	for _, r := range p.Rules() {
		got = append(got, rule{r.ID, r.Type, r.Mode, r.Environments})
	}
	want := []rule{
		{"no-latest", TypeTag, ModeBlock, nil},
		{"immutable-tags", TypeImmutable, ModeBlock, nil},
		{"prod-signatures", TypeSignature, ModeWarn, []string{"prod"}},
		{"critical-fixable", TypeVulnerability, ModeBlock, []string{"prod"}},
		{"runs-as-root", TypeConfig, ModeWarn, nil},
		{"no-secrets", TypeSecret, ModeBlock, nil},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("starter rules = %+v\nwant %+v", got, want)
	}
	rules := p.Rules()
	if !reflect.DeepEqual(rules[0].Actions, []Action{ActionPush, ActionPull}) || !reflect.DeepEqual(rules[0].Forbidden, []string{"latest"}) {
		t.Errorf("no-latest = %+v", rules[0])
	}
	if v := rules[3]; v.Severity != SeverityCritical || !v.Fixable || v.Unknown != UnknownCount || v.Incomplete != IncompleteFail {
		t.Errorf("critical-fixable = %+v", v)
	}
	if rules[4].Check != ConfigCheckRoot {
		t.Errorf("runs-as-root check = %q", rules[4].Check)
	}
	if p.Environment("prod/app", "") != "prod" || p.FailMode("prod") != FailClosed ||
		p.Environment("team/app", "") != "dev" || p.FailMode("dev") != FailOpen {
		t.Errorf("starter environments = %+v", p.Environments())
	}
	d := p.Evaluate(Input{Action: ActionPull, Repository: "team/app", Tag: "latest"}, today)
	if d.Verdict != VerdictDeny || !strings.HasPrefix(d.DenyMessage(), `denied by policy (environment dev): [no-latest] tag "latest" is forbidden in environment dev`) {
		t.Errorf("starter pull of latest: %s", d.DenyMessage())
	}
}

func TestBuiltinObserveHasEveryRuleInObserve(t *testing.T) {
	starter, err := Builtin("starter")
	if err != nil {
		t.Fatal(err)
	}
	observe, err := Builtin("observe")
	if err != nil {
		t.Fatal(err)
	}
	sr, or := starter.Rules(), observe.Rules()
	if len(sr) != len(or) || len(or) == 0 {
		t.Fatalf("observe has %d rules, starter %d", len(or), len(sr))
	}
	for i, r := range or {
		if r.Mode != ModeObserve || !r.EnforceFrom.IsZero() || !r.ObserveUntil.IsZero() {
			t.Errorf("observe rule %s: mode %s, dates %v %v", r.ID, r.Mode, r.EnforceFrom, r.ObserveUntil)
		}
		s := sr[i]
		s.Mode = ModeObserve
		if !reflect.DeepEqual(r, s) {
			t.Errorf("observe rule %d differs from starter beyond its mode:\n%+v\n%+v", i, r, s)
		}
	}
	if !reflect.DeepEqual(observe.Environments(), starter.Environments()) {
		t.Error("observe environments differ from starter")
	}
	if observe.Revision() == starter.Revision() {
		t.Error("observe and starter share a revision")
	}
	d := observe.Evaluate(Input{Action: ActionPush, Repository: "prod/app", Tag: "latest", Digest: digestA, CurrentDigest: digestB}, today)
	// Five results: the signature rule concerns pulls only.
	if d.Verdict != VerdictAllow || len(d.Results) != 5 || d.Results[0].Outcome != OutcomeFail || d.Results[1].Outcome != OutcomeFail {
		t.Errorf("observe push: %+v", d)
	}
}
