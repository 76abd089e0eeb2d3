package policy

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// signaturePolicy has, in prod, a threshold-1 rule "one" over release and
// security (security with its own sign command) and a threshold-2 rule
// "two" over release, security and qa, both in mode.
func signaturePolicy(t *testing.T, mode Mode, extra string) *Policy {
	t.Helper()
	return mustParse(t, `
version: 1
exceptionProcess: "ask #platform for an exception"
`+authoritiesYAML("release", "security=cosign sign --key k8s://security/release-key", "qa")+`
environments:
  - {name: prod, repositories: ["prod/**"]}
  - {name: dev, repositories: ["**"], failMode: open}
rules:
  - id: one
    type: signature
    mode: `+string(mode)+`
    environments: [prod]
    authorities: [release, security]
`+extra)
}

func TestSignatureRule(t *testing.T) {
	p := signaturePolicy(t, ModeBlock, "")
	pp := signaturePolicy(t, ModeBlock, "    perPlatform: true\n")
	ref := "gw.example:5000/prod/app@" + digestA
	signBoth := "sign it with release: cosign sign --key release.key " + ref +
		"; or with security: cosign sign --key k8s://security/release-key " + ref
	required := "requires a signature by one of release, security; found "
	ev := func(verified []string, kinds ...string) *SignatureEvidence {
		e := &SignatureEvidence{Verified: verified}
		for _, k := range kinds {
			e.Findings = append(e.Findings, SignatureFinding{Kind: k, Detail: "detail of " + k})
		}
		return e
	}
	tests := []struct {
		name    string
		p       *Policy
		ev      *SignatureEvidence
		outcome Outcome
		finding string
		fix     string
	}{
		{"no evidence gathered", p, nil, OutcomeFail,
			"requires a signature by one of release, security; signatures were not checked (the gateway gathered no signature evidence)",
			"this is not a problem with the image: tell the platform team that signature verification did not run"},
		{"no signature", p, ev(nil), OutcomeFail, required + "no signature", signBoth},
		{"signed by a required authority", p, ev([]string{"release"}), OutcomePass, "signed by release", ""},
		{"signed by both, listed in rule order", p, ev([]string{"security", "release"}), OutcomePass, "signed by release and security", ""},
		{"signed, other findings ignored", p, ev([]string{"security"}, "tampered"), OutcomePass, "signed by security", ""},
		{"signed by an authority the rule does not list", p, ev([]string{"qa"}), OutcomeFail,
			required + "a signature by qa, which this rule does not accept", signBoth},
		{"unknown key", p, ev(nil, "unknown-key"), OutcomeFail, required + "a signature by an unknown key", signBoth},
		{"other digest", p, ev(nil, "other-digest"), OutcomeFail, required + "a signature for another digest (replayed from another image)", signBoth},
		{"tampered", p, ev(nil, "tampered"), OutcomeFail, required + "a tampered signature", signBoth},
		{"attestation only", p, ev(nil, "attestation"), OutcomeFail, required + "only an attestation, which is not a signature", signBoth},
		{"wrong payload type", p, ev(nil, "wrong-payload-type"), OutcomeFail, required + "a signed payload of the wrong type (not a signature)", signBoth},
		{"malformed", p, ev(nil, "malformed"), OutcomeFail, required + "a malformed signature artifact", signBoth},
		{"too large", p, ev(nil, "too-large"), OutcomeFail, required + "a signature artifact too large to read", signBoth},
		{"a kind this build does not know", p, ev(nil, "quantum"), OutcomeFail, required + `a signature artifact that did not verify ("quantum")`, signBoth},
		{"each kind once, in a fixed order", p, ev([]string{"qa"}, "malformed", "tampered", "unknown-key", "tampered", "attestation", "malformed"), OutcomeFail,
			required + "a signature by qa, which this rule does not accept, a signature by an unknown key, a tampered signature, " +
				"an attestation, which is not a signature and a malformed signature artifact", signBoth},
		{"covered by a signed index", p, &SignatureEvidence{Verified: []string{"release"}, CoveredBy: digestB}, OutcomePass,
			"covered by the signature of index sha256:bbbbbbbbbbbb… (release)", ""},
		{"covered by an index signed by the wrong authority", p, &SignatureEvidence{Verified: []string{"qa"}, CoveredBy: digestB}, OutcomeFail,
			required + "a signature by qa, which this rule does not accept (on this manifest and its index sha256:bbbbbbbbbbbb…)", signBoth},
		{"perPlatform: the index's signature does not cover", pp, &SignatureEvidence{Verified: []string{"release"}, CoveredBy: digestB}, OutcomeFail,
			required + "the signature of index sha256:bbbbbbbbbbbb… (release), which does not count: this rule requires every platform manifest to carry its own (perPlatform)",
			signBoth + " (or re-sign index sha256:bbbbbbbbbbbb… with cosign sign --recursive, which signs every platform manifest too)"},
		{"perPlatform: a manifest's own signature counts", pp, ev([]string{"release"}), OutcomePass, "signed by release", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{Action: ActionPull, Host: "gw.example:5000", Repository: "prod/app", Tag: "1.4.2", Digest: digestA, Signatures: tt.ev}
			d := tt.p.Evaluate(in, today)
			if len(d.Results) != 1 {
				t.Fatalf("results = %+v", d.Results)
			}
			r := d.Results[0]
			if r.Rule != "one" || r.Type != TypeSignature || r.Outcome != tt.outcome || r.Finding != tt.finding || r.Fix != tt.fix {
				t.Errorf("result:\n%s | %s | %s\nwant:\n%s | %s | %s", r.Outcome, r.Finding, r.Fix, tt.outcome, tt.finding, tt.fix)
			}
			want := map[Outcome]Verdict{OutcomePass: VerdictAllow, OutcomeFail: VerdictDeny}[tt.outcome]
			if d.Verdict != want {
				t.Errorf("verdict %s, want %s", d.Verdict, want)
			}
		})
	}
}

func TestSignatureThreshold(t *testing.T) {
	p := signaturePolicy(t, ModeBlock, `  - id: two
    type: signature
    mode: block
    authorities: [release, security, qa]
    threshold: 2
`)
	ref := "<gateway>/prod/app@sha256:<digest>"
	with := map[string]string{
		"release":  "with release: cosign sign --key release.key " + ref,
		"security": "with security: cosign sign --key k8s://security/release-key " + ref,
		"qa":       "with qa: cosign sign --key qa.key " + ref,
	}
	required := "requires signatures by 2 distinct authorities of release, security, qa; found "
	tests := []struct {
		name     string
		verified []string
		outcome  Outcome
		finding  string
		fix      string
	}{
		{"none", nil, OutcomeFail, required + "no signature",
			"2 more distinct authorities must sign (of release, security, qa): " + with["release"] + "; " + with["security"] + "; " + with["qa"]},
		{"one of two", []string{"release"}, OutcomeFail, required + "a signature by release",
			"1 more distinct authority must sign (of security, qa): " + with["security"] + "; " + with["qa"]},
		{"the same authority twice is one", []string{"qa", "qa"}, OutcomeFail, required + "a signature by qa",
			"1 more distinct authority must sign (of release, security): " + with["release"] + "; " + with["security"]},
		{"two of two", []string{"qa", "release"}, OutcomePass, "signed by release and qa", ""},
		{"three", []string{"qa", "security", "release"}, OutcomePass, "signed by release, security and qa", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// No host, no digest: the fix shows placeholders.
			in := Input{Action: ActionPull, Repository: "prod/app", Tag: "1.4.2", Signatures: &SignatureEvidence{Verified: tt.verified}}
			d := p.Evaluate(in, today)
			if len(d.Results) != 2 || d.Results[1].Rule != "two" {
				t.Fatalf("results = %+v", d.Results)
			}
			r := d.Results[1]
			if r.Outcome != tt.outcome || r.Finding != tt.finding || r.Fix != tt.fix {
				t.Errorf("result:\n%s | %s | %s\nwant:\n%s | %s | %s", r.Outcome, r.Finding, r.Fix, tt.outcome, tt.finding, tt.fix)
			}
		})
	}
}

func TestSignatureRuleScope(t *testing.T) {
	p := signaturePolicy(t, ModeBlock, "")
	unsigned := &SignatureEvidence{}
	sigTag := "sha256-" + digestA[7:] + ".sig"
	tests := []struct {
		name string
		in   Input
		want int // results
	}{
		{"pull in prod", Input{Action: ActionPull, Repository: "prod/app", Tag: "1", Digest: digestA, Signatures: unsigned}, 1},
		{"pull in dev", Input{Action: ActionPull, Repository: "dev/app", Tag: "1", Digest: digestA, Signatures: unsigned}, 0},
		{"push in prod", Input{Action: ActionPush, Repository: "prod/app", Tag: "1", Digest: digestA, Signatures: unsigned}, 0},
		{"artifact pull in prod", Input{Action: ActionPull, Repository: "prod/app", Tag: sigTag, Digest: digestB, Kind: KindSignature}, 0},
		{"artifact push in prod", Input{Action: ActionPush, Repository: "prod/app", Tag: sigTag, Digest: digestB, Kind: KindSignature}, 0},
	}
	for _, tt := range tests {
		d := p.Evaluate(tt.in, today)
		if len(judged(d)) != tt.want || (tt.want == 0 && d.Verdict != VerdictAllow) || (tt.want == 1 && d.Verdict != VerdictDeny) {
			t.Errorf("%s: %+v", tt.name, d)
		}
	}
	x := p.Explain(ActionPush, "prod/app", "", "1.0.0", "", today)
	if r := x.Rules[0]; r.Applies || r.Reason != "action push is not one of [pull]" {
		t.Errorf("push explained: %+v", r)
	}
	x = p.Explain(ActionPull, "prod/app", "", sigTag, "", today)
	if r := x.Rules[0]; r.Applies || !strings.Contains(r.Reason, "the manifest is a signature") {
		t.Errorf("artifact pull explained: %+v", r)
	}
}

func TestSignatureModes(t *testing.T) {
	unsigned := Input{Action: ActionPull, Host: "gw.example", Repository: "prod/app", Digest: digestA, Signatures: &SignatureEvidence{}}
	signed := unsigned
	signed.Signatures = &SignatureEvidence{Verified: []string{"security"}}
	for _, tt := range []struct {
		mode             Mode
		unsigned, signed Verdict
		results          int
	}{
		{ModeOff, VerdictAllow, VerdictAllow, 0},
		{ModeObserve, VerdictAllow, VerdictAllow, 1},
		{ModeWarn, VerdictWarn, VerdictAllow, 1},
		{ModeBlock, VerdictDeny, VerdictAllow, 1},
	} {
		p := signaturePolicy(t, tt.mode, "")
		du, ds := p.Evaluate(unsigned, today), p.Evaluate(signed, today)
		if du.Verdict != tt.unsigned || ds.Verdict != tt.signed || len(judged(du)) != tt.results || len(judged(ds)) != tt.results {
			t.Errorf("mode %s: unsigned %s (%d results), signed %s, want %s %s", tt.mode, du.Verdict, len(du.Results), ds.Verdict, tt.unsigned, tt.signed)
		}
		if tt.results == 1 && du.Results[0].Outcome != OutcomeFail {
			t.Errorf("mode %s: an observed failure must still be recorded as a failure: %+v", tt.mode, du.Results[0])
		}
	}

	p := signaturePolicy(t, ModeBlock, "    enforceFrom: 2026-12-15\n")
	fix := "sign it with release: cosign sign --key release.key gw.example/prod/app@" + digestA +
		"; or with security: cosign sign --key k8s://security/release-key gw.example/prod/app@" + digestA
	before := p.Evaluate(unsigned, time.Date(2026, 12, 14, 23, 59, 0, 0, time.UTC))
	wantWarn := "[one] requires a signature by one of release, security; found no signature: " + fix + " (blocking from 2026-12-15). ask #platform for an exception"
	if before.Verdict != VerdictWarn || len(before.Warnings()) != 1 || before.Warnings()[0].Message() != wantWarn {
		t.Errorf("day before: %s\n%+v\nwant message %s", before.Verdict, before.Results, wantWarn)
	}
	on := p.Evaluate(unsigned, time.Date(2026, 12, 15, 0, 0, 0, 0, time.UTC))
	wantDeny := "denied by policy (environment prod): [one] requires a signature by one of release, security; found no signature: " + fix + ". ask #platform for an exception"
	if on.Verdict != VerdictDeny || on.DenyMessage() != wantDeny {
		t.Errorf("day of: %s\n%s\nwant\n%s", on.Verdict, on.DenyMessage(), wantDeny)
	}
	if d := p.Evaluate(signed, time.Date(2026, 12, 15, 0, 0, 0, 0, time.UTC)); d.Verdict != VerdictAllow {
		t.Errorf("signed, day of: %+v", d)
	}
}

func TestStarterSignatureRuleWarnsUntilKeysAreConfigured(t *testing.T) {
	p, err := Builtin("starter")
	if err != nil {
		t.Fatal(err)
	}
	clean := &ImageEvidence{User: "65532"} // keeps the config and secret rules quiet
	scanned := &VulnerabilityEvidence{}    // and the vulnerability rule
	in := Input{Action: ActionPull, Repository: "prod/app", Tag: "1.4.2", Digest: digestA, Image: clean, Vulnerabilities: scanned}
	if n := p.Needs(ActionPull, "prod/app", ""); n.Signatures {
		t.Error("a rule without authorities needs no signature evidence")
	}
	d := p.Evaluate(in, today)
	want := "[prod-signatures] no signing keys are configured for this rule yet: add your release keys under authorities and list them in rule prod-signatures. " +
		"Ask the platform team for a time-limited exception naming the repository, the digest and the rule id"
	if d.Verdict != VerdictWarn || len(d.Warnings()) != 1 || d.Warnings()[0].Message() != want {
		t.Errorf("starter prod pull: %s %+v\nwant warning %s", d.Verdict, d.Results, want)
	}
	// Evidence changes nothing: there is no key to check it against.
	in.Signatures = &SignatureEvidence{Verified: []string{"release"}}
	if d := p.Evaluate(in, today); d.Verdict != VerdictWarn {
		t.Errorf("starter prod pull with evidence: %+v", d)
	}
	if d := p.Evaluate(Input{Action: ActionPull, Repository: "team/app", Tag: "1.4.2", Image: clean}, today); d.Verdict != VerdictAllow {
		t.Errorf("starter dev pull: %+v", d)
	}
	if d := p.Evaluate(Input{Action: ActionPush, Repository: "prod/app", Tag: "1.4.2", Image: clean, Vulnerabilities: scanned}, today); d.Verdict != VerdictAllow {
		t.Errorf("starter prod push: %+v", d)
	}
}

func TestNeedsSignatures(t *testing.T) {
	p := mustParse(t, `
version: 1
`+authoritiesYAML("release")+`
environments:
  - {name: prod, repositories: ["prod/**"]}
  - {name: edge, hosts: ["edge.example"]}
rules:
  - {id: prod, type: signature, mode: observe, environments: [prod], authorities: [release]}
  - {id: edge, type: signature, mode: off, environments: [edge], authorities: [release]}
  - {id: keyless, type: signature, mode: block, repositories: ["keyless/**"]}
  - {id: team, type: signature, mode: warn, repositories: ["team/**"], authorities: [release]}
`)
	tests := []struct {
		a          Action
		repo, host string
		want       bool
	}{
		{ActionPull, "prod/app", "", true}, // observe still needs evidence
		{ActionPush, "prod/app", "", false},
		{ActionPull, "dev/app", "", false},
		{ActionPull, "x/app", "edge.example", false}, // mode off
		{ActionPull, "keyless/app", "", false},       // no authorities
		{ActionPull, "team/app", "", true},
		{ActionPull, "team/app", "edge.example", true}, // environment edge: its rule is off, but the team rule applies everywhere
	}
	for _, tt := range tests {
		if got := p.Needs(tt.a, tt.repo, tt.host).Signatures; got != tt.want {
			t.Errorf("Needs(%s, %s, %q).Signatures = %v, want %v", tt.a, tt.repo, tt.host, got, tt.want)
		}
	}
}

func TestExplainSignatureRules(t *testing.T) {
	p, err := parseFile(t, "signatures.yaml")
	if err != nil {
		t.Fatal(err)
	}
	x := p.Explain(ActionPull, "prod/app", "gw.example", "1.4.2", digestA, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	if x.Input.Signatures == nil || !reflect.DeepEqual(*x.Input.Signatures, SignatureEvidence{}) {
		t.Errorf("explained input = %+v, want empty signature evidence", x.Input)
	}
	type row struct {
		applies                  bool
		checks, schedule, reason string
		outcome                  Outcome
	}
	want := []row{
		{true, "signed by 2 distinct of release, security; each platform manifest signed on its own", "warn until 2026-12-15, then block",
			"assumes the image is unsigned: only the gateway reads and verifies signatures", OutcomeFail},
		{false, "signed by one of release, legacy-rsa, edge", "warn", "environment prod is not one of [dev]", ""},
		{true, "no authorities listed: fails until keys are configured", "observe", "", OutcomeFail},
	}
	var got []row
	for _, r := range x.Rules {
		var o Outcome
		if r.Result != nil {
			o = r.Result.Outcome
		}
		got = append(got, row{r.Applies, r.Checks, r.Schedule, r.Reason, o})
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rules:\n%+v\nwant\n%+v", got, want)
	}
	if x.Verdict != VerdictWarn {
		t.Errorf("verdict %s, want warn (blocking from 2026-12-15)", x.Verdict)
	}
	if f := x.Rules[0].Result.Fix; !strings.Contains(f, "with security: cosign sign --key k8s://security/release-key gw.example/prod/app@"+digestA) {
		t.Errorf("fix = %s", f)
	}
	b, err := json.Marshal(x)
	if err != nil || !strings.Contains(string(b), `"checks":"signed by 2 distinct of release, security; each platform manifest signed on its own"`) {
		t.Errorf("json: %v %s", err, b)
	}
}
