package policy

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

var (
	digestA = "sha256:" + strings.Repeat("a", 64)
	digestB = "sha256:" + strings.Repeat("b", 64)
	digestC = "sha256:" + strings.Repeat("c", 64)
	today   = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
)

// matrixPolicy has one rule of type typ in mode, scoped to prod and edge.
func matrixPolicy(t *testing.T, typ string, mode Mode) *Policy {
	params := map[string]string{
		TypeTag:           "forbidden: [latest]",
		TypeImmutable:     "",
		TypeSignature:     "authorities: [release]",
		TypeVulnerability: "severity: critical",
		TypeSecret:        "",
		TypeConfig:        "check: root",
		TypePlatform:      "",
	}[typ]
	return mustParse(t, fmt.Sprintf(`
version: 1
exceptionProcess: open a PSEC ticket
`+authoritiesYAML("release")+`
environments:
  - name: prod
    repositories: ["prod/**"]
    platforms: [linux/arm64/v8]
  - name: edge
    hosts: ["edge.example"]
    failMode: open
    platforms: [linux/arm64/v8]
  - name: dev
    repositories: ["dev/**"]
    failMode: open
    platforms: [linux/arm64/v8]
rules:
  - id: r
    type: %s
    mode: %s
    environments: [prod, edge]
    %s
`, typ, mode, params))
}

func TestEvaluateMatrix(t *testing.T) {
	// A push that violates every enforced push rule: it pushes "latest"
	// and moves it from digest B to digest A. Signature rules concern
	// pulls: an unsigned pull violates them.
	bad := func(typ, repo, host string) Input {
		if typ == TypeSignature {
			return Input{Action: ActionPull, Repository: repo, Host: host, Tag: "1.0.0", Digest: digestA, Signatures: &SignatureEvidence{}}
		}
		// Config and secret rules: an image that runs as root with a secret in its config.
		img := &ImageEvidence{RunsAsRoot: true, RootReason: "no USER is set",
			Secrets: []SecretFinding{{Type: "aws-access-key-id", Location: "config Env AWS_ACCESS_KEY_ID", Excerpt: "AKIA…XY"}}}
		// Vulnerability rules: a critical vulnerability.
		vulns := &VulnerabilityEvidence{DBRevision: "r1", Findings: []VulnerabilityFinding{{ID: "CVE-2024-1", Package: "openssl",
			Ecosystem: "Debian:12", Version: "3.0.11-1~deb12u2", Fixed: "3.0.15-1~deb12u1", Fixable: true, Severity: SeverityCritical, OS: true}}}
		// Platform rules: an image for another platform than the nodes'.
		plat := &PlatformEvidence{Platforms: []Platform{{OS: "linux", Architecture: "amd64"}}}
		return Input{Action: ActionPush, Repository: repo, Host: host, Tag: "latest", Digest: digestA, CurrentDigest: digestB, Image: img, Vulnerabilities: vulns, Platform: plat}
	}
	envs := []struct {
		env, repo, host string
		selected        bool
	}{
		{"prod", "prod/app", "gw.example", true},
		{"edge", "team/app", "EDGE.example:5000", true}, // selected by host, port and case ignored
		{"dev", "dev/app", "gw.example", false},
		{"default", "other/app", "gw.example", false},
	}
	for _, typ := range typeNames {
		for _, mode := range []Mode{ModeOff, ModeObserve, ModeWarn, ModeBlock} {
			p := matrixPolicy(t, typ, mode)
			for _, e := range envs {
				t.Run(fmt.Sprintf("%s/%s/%s", typ, mode, e.env), func(t *testing.T) {
					d := p.Evaluate(bad(typ, e.repo, e.host), today)
					if d.Environment != e.env {
						t.Fatalf("environment = %q, want %q", d.Environment, e.env)
					}
					if d.PolicyRevision != p.Revision() {
						t.Errorf("PolicyRevision = %q", d.PolicyRevision)
					}
					applies := e.selected && mode != ModeOff
					if !applies {
						if len(judged(d)) != 0 || d.Verdict != VerdictAllow || len(d.Results) != 1 || d.Results[0].Rule != NoRule {
							t.Fatalf("rule should not apply: %+v", d)
						}
						return
					}
					if len(d.Results) != 1 {
						t.Fatalf("results = %+v, want one", d.Results)
					}
					r := d.Results[0]
					if r.Rule != "r" || r.Type != typ || r.Mode != mode {
						t.Errorf("result = %+v", r)
					}
					// Every rule type is enforced.
					wantOutcome := OutcomeFail
					wantVerdict := map[Mode]Verdict{ModeObserve: VerdictAllow, ModeWarn: VerdictWarn, ModeBlock: VerdictDeny}[mode]
					if r.Outcome != wantOutcome || d.Verdict != wantVerdict {
						t.Errorf("outcome %s verdict %s, want %s %s", r.Outcome, d.Verdict, wantOutcome, wantVerdict)
					}
					if r.Fix == "" {
						t.Errorf("failed result without a fix: %+v", r)
					}
					if r.Exception != "open a PSEC ticket" {
						t.Errorf("exception = %q", r.Exception)
					}
					if got := len(d.Denials()); got != map[bool]int{true: 1}[wantVerdict == VerdictDeny] {
						t.Errorf("%d denials", got)
					}
					if got := len(d.Warnings()); got != map[bool]int{true: 1}[wantVerdict == VerdictWarn] {
						t.Errorf("%d warnings", got)
					}
				})
			}
		}
	}
}

func TestEvaluateCompliantRequestsPass(t *testing.T) {
	for _, typ := range typeNames {
		p := matrixPolicy(t, typ, ModeBlock)
		in := Input{Action: ActionPush, Repository: "prod/app", Tag: "1.4.2", Digest: digestA,
			Image: &ImageEvidence{User: "65532"}, Vulnerabilities: &VulnerabilityEvidence{DBRevision: "r1",
				Findings: []VulnerabilityFinding{{ID: "CVE-2024-2", Package: "zlib", Severity: SeverityHigh, Fixable: true, Fixed: "1.3"}}},
			Platform: &PlatformEvidence{Platforms: []Platform{{OS: "linux", Architecture: "arm64"}}}}
		if typ == TypeSignature {
			in.Action, in.Signatures = ActionPull, &SignatureEvidence{Verified: []string{"release"}}
		}
		d := p.Evaluate(in, today)
		if d.Verdict != VerdictAllow || len(d.Results) != 1 || d.Results[0].Outcome != OutcomePass {
			t.Errorf("%s: %+v", typ, d)
		}
	}
}

func TestEnvironmentSelection(t *testing.T) {
	p := mustParse(t, `
version: 1
environments:
  - name: prod-edge
    repositories: ["prod/**"]
    hosts: ["edge.example", "*.edge.example"]
  - name: prod
    repositories: ["prod/**", "*/release/**"]
  - name: mirror
    hosts: ["[::1]"]
  - name: dev
    repositories: ["**"]
    failMode: open
`)
	tests := []struct{ repo, host, want string }{
		{"prod/app", "edge.example", "prod-edge"},
		{"prod/app", "edge.example.:443", "prod-edge"},
		{"prod/app", "a.edge.example", "prod-edge"},
		{"prod/app", "gw.example", "prod"},
		{"team/release/app", "edge.example", "prod"},
		{"team/app", "[::1]:5000", "mirror"},
		{"team/app", "gw.example", "dev"},
		{"/bad", "gw.example", "default"},
	}
	for _, tt := range tests {
		if got := p.Environment(tt.repo, tt.host); got != tt.want {
			t.Errorf("Environment(%q, %q) = %q, want %q", tt.repo, tt.host, got, tt.want)
		}
	}
	for env, want := range map[string]string{"prod": FailClosed, "dev": FailOpen, "default": FailClosed, "nope": FailClosed} {
		if got := p.FailMode(env); got != want {
			t.Errorf("FailMode(%q) = %q, want %q", env, got, want)
		}
	}
}

func TestRulesWithoutEnvironmentsApplyInDefault(t *testing.T) {
	p := mustParse(t, `
version: 1
environments:
  - {name: prod, repositories: ["prod/**"]}
rules:
  - {id: everywhere, type: tag, mode: block, forbidden: [latest]}
  - {id: only-default, type: tag, mode: warn, forbidden: [edge], environments: [default]}
`)
	d := p.Evaluate(Input{Action: ActionPull, Repository: "x/app", Tag: "latest"}, today)
	if d.Environment != "default" || d.Verdict != VerdictDeny || len(d.Results) != 2 {
		t.Errorf("%+v", d)
	}
	d = p.Evaluate(Input{Action: ActionPull, Repository: "prod/app", Tag: "edge"}, today)
	if d.Verdict != VerdictAllow || len(d.Results) != 1 || d.Results[0].Rule != "everywhere" {
		t.Errorf("%+v", d)
	}
}

func TestTagRule(t *testing.T) {
	p, err := parseFile(t, "example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	after := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	type res struct {
		rule    string
		outcome Outcome
		finding string
		fix     string
	}
	tests := []struct {
		name string
		in   Input
		want []res
	}{
		{"push latest to prod", Input{Action: ActionPush, Repository: "prod/app", Tag: "latest", Digest: digestA},
			[]res{
				{"no-latest", OutcomeFail, `tag "latest" is forbidden in environment prod`, "push an immutable tag such as 1.4.2 or 1.4.2-3f9c2ab instead"},
				{"release-tags", OutcomeFail, `tag "latest" does not match the allowed pattern ^v?\d+\.\d+\.\d+(-[0-9a-f]{7,40})?$`, `use a tag matching the allowed pattern ^v?\d+\.\d+\.\d+(-[0-9a-f]{7,40})?$, such as 1.4.2`},
			}},
		{"push release tag to prod", Input{Action: ActionPush, Repository: "prod/app", Tag: "v1.4.2-3f9c2ab", Digest: digestA},
			[]res{
				{"no-latest", OutcomePass, `tag "v1.4.2-3f9c2ab" is not forbidden`, ""},
				{"release-tags", OutcomePass, `tag "v1.4.2-3f9c2ab" matches the allowed pattern ^v?\d+\.\d+\.\d+(-[0-9a-f]{7,40})?$`, ""},
			}},
		{"pull latest in dev", Input{Action: ActionPull, Address: "registry.example.com:5000", Repository: "team/app", Tag: "latest", Digest: digestA},
			[]res{{"no-latest", OutcomeFail, `tag "latest" is forbidden in environment dev`, "pull an immutable tag such as 1.4.2, or pull by digest: registry.example.com:5000/team/app@" + digestA}}},
		{"pull branch tag in prod", Input{Action: ActionPull, Host: "prod.registry.example", Repository: "prod/app", Tag: "main", Digest: digestA},
			[]res{
				{"no-latest", OutcomePass, `tag "main" is not forbidden`, ""},
				{"prod-pull-pinned", OutcomeFail, `tag "main" does not match the allowed pattern ^v?\d+\.\d+\.\d+(-[0-9a-f]{7,40})?$, and environment prod only serves such tags or digests`, "pull by digest: prod.registry.example/prod/app@" + digestA},
			}},
		{"pull branch tag in prod, digest unknown", Input{Action: ActionPull, Repository: "prod/app", Tag: "main"},
			[]res{
				{"no-latest", OutcomePass, `tag "main" is not forbidden`, ""},
				{"prod-pull-pinned", OutcomeFail, `tag "main" does not match the allowed pattern ^v?\d+\.\d+\.\d+(-[0-9a-f]{7,40})?$, and environment prod only serves such tags or digests`, "pull by digest: <gateway>/prod/app@sha256:<digest>"},
			}},
		{"pull release tag in prod", Input{Action: ActionPull, Repository: "prod/app", Tag: "1.4.2", Digest: digestA},
			[]res{
				{"no-latest", OutcomePass, `tag "1.4.2" is not forbidden`, ""},
				{"prod-pull-pinned", OutcomePass, `tag "1.4.2" matches the allowed pattern ^v?\d+\.\d+\.\d+(-[0-9a-f]{7,40})?$`, ""},
			}},
		{"pull by digest in prod", Input{Action: ActionPull, Repository: "prod/app", Digest: digestA},
			[]res{
				{"no-latest", OutcomePass, "reference is a digest; tag rules check tags only", ""},
				{"prod-pull-pinned", OutcomePass, "reference is a digest; tag rules check tags only", ""},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Evaluate(tt.in, after)
			var got []res
			for _, r := range d.Results {
				if r.Type == TypeTag {
					got = append(got, res{r.Rule, r.Outcome, r.Finding, r.Fix})
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("tag results:\n%q\nwant:\n%q", got, tt.want)
			}
		})
	}
}

func TestRequireDigestWithoutAllowed(t *testing.T) {
	p := mustParse(t, `
version: 1
rules:
  - {id: pinned, type: tag, mode: block, requireDigest: true}
`)
	d := p.Evaluate(Input{Action: ActionPull, Address: "localhost:5000", Repository: "app", Tag: "1.0.0", Digest: digestA}, today)
	if d.Verdict != VerdictDeny || d.Results[0].Finding != `pulled by tag "1.0.0", but environment default requires pulling by digest` ||
		d.Results[0].Fix != "pull by digest: localhost:5000/app@"+digestA {
		t.Errorf("%+v", d)
	}
	if d := p.Evaluate(Input{Action: ActionPush, Repository: "app", Tag: "1.0.0", Digest: digestA}, today); d.Verdict != VerdictAllow {
		t.Errorf("requireDigest must not affect pushes: %+v", d)
	}
	if d := p.Evaluate(Input{Action: ActionPull, Repository: "app", Digest: digestA}, today); d.Verdict != VerdictAllow {
		t.Errorf("pull by digest: %+v", d)
	}
}

func TestArtifactsSkipTagRules(t *testing.T) {
	p := mustParse(t, `
version: 1
rules:
  - {id: release-only, type: tag, mode: block, allowed: ['^\d+\.\d+\.\d+$']}
  - {id: immutable, type: immutable, mode: block}
  - {id: signed, type: signature, mode: warn}
`)
	tag := "sha256-" + strings.Repeat("c", 64) + ".sig"
	// A signature under its .sig tag, adding a layer beside the one already there.
	d := p.Evaluate(Input{Action: ActionPush, Repository: "app", Tag: tag, Digest: digestA, CurrentDigest: digestB,
		Kind: KindSignature, Layers: []string{digestB, digestC}, CurrentLayers: []string{digestB}}, today)
	if d.Verdict != VerdictAllow || len(d.Results) != 2 || d.Results[0].Outcome != OutcomeExempt || d.Results[1].Outcome != OutcomePass {
		t.Errorf("artifact push: %+v", d)
	}
	// The same tag replacing the signature already there.
	d = p.Evaluate(Input{Action: ActionPush, Repository: "app", Tag: tag, Digest: digestA, CurrentDigest: digestB,
		Kind: KindSignature, Layers: []string{digestC}, CurrentLayers: []string{digestB}}, today)
	if d.Verdict != VerdictDeny || len(d.Denials()) != 1 || d.Denials()[0].Rule != "immutable" {
		t.Errorf("replacing a signature: %+v", d)
	}
	// An image under a .sig tag is judged as an image: every rule applies.
	d = p.Evaluate(Input{Action: ActionPush, Repository: "app", Tag: tag, Digest: digestA, Kind: KindImage}, today)
	if d.Verdict != VerdictDeny || len(d.Denials()) != 2 {
		t.Errorf("an image under a signature tag must be checked: %+v", d)
	}
	d = p.Evaluate(Input{Action: ActionPull, Repository: "app", Tag: tag, Digest: digestA, Kind: KindSignature}, today)
	if d.Verdict != VerdictAllow || len(judged(d)) != 0 || len(d.Results) != 2 {
		t.Errorf("artifact pull: %+v", d)
	}
	// An attestation under a .sig tag is not what the tag is for: tag rules apply.
	d = p.Evaluate(Input{Action: ActionPull, Repository: "app", Tag: tag, Digest: digestA, Kind: KindAttestation}, today)
	if d.Verdict != VerdictDeny || len(d.Denials()) != 1 || d.Denials()[0].Rule != "release-only" {
		t.Errorf("attestation under a .sig tag: %+v", d)
	}
}

func TestVerdictPrecedence(t *testing.T) {
	p := mustParse(t, `
version: 1
rules:
  - {id: observed, type: tag, mode: observe, forbidden: [latest]}
  - {id: warned, type: tag, mode: warn, forbidden: [latest, dev]}
  - {id: blocked, type: tag, mode: block, forbidden: [latest, dev, tmp]}
  - {id: disabled, type: tag, mode: off, forbidden: [latest, dev, tmp, x]}
`)
	tests := []struct {
		tag   string
		want  Verdict
		fails []string
	}{
		{"latest", VerdictDeny, []string{"observed", "warned", "blocked"}},
		{"dev", VerdictDeny, []string{"warned", "blocked"}},
		{"tmp", VerdictDeny, []string{"blocked"}},
		{"x", VerdictAllow, nil},
	}
	for _, tt := range tests {
		d := p.Evaluate(Input{Action: ActionPush, Repository: "app", Tag: tt.tag}, today)
		var fails []string
		for _, r := range d.Results {
			if r.Outcome == OutcomeFail {
				fails = append(fails, r.Rule)
			}
		}
		if d.Verdict != tt.want || !reflect.DeepEqual(fails, tt.fails) || len(d.Results) != 3 {
			t.Errorf("tag %s: verdict %s fails %v (%d results), want %s %v", tt.tag, d.Verdict, fails, len(d.Results), tt.want, tt.fails)
		}
	}
	// Only observe and warn fail: warn.
	p = mustParse(t, `
version: 1
rules:
  - {id: observed, type: tag, mode: observe, forbidden: [latest]}
  - {id: warned, type: tag, mode: warn, forbidden: [latest]}
`)
	if d := p.Evaluate(Input{Action: ActionPush, Repository: "app", Tag: "latest"}, today); d.Verdict != VerdictWarn || len(d.Warnings()) != 1 || d.Warnings()[0].Rule != "warned" {
		t.Errorf("%+v", d)
	}
}

func TestSelectors(t *testing.T) {
	p := mustParse(t, `
version: 1
rules:
  - {id: team-a-push, type: tag, mode: block, forbidden: [latest], repositories: ["team-a/**"], actions: [push]}
`)
	tests := []struct {
		action Action
		repo   string
		want   Verdict
	}{
		{ActionPush, "team-a/app", VerdictDeny},
		{ActionPull, "team-a/app", VerdictAllow},
		{ActionPush, "team-b/app", VerdictAllow},
	}
	for _, tt := range tests {
		if d := p.Evaluate(Input{Action: tt.action, Repository: tt.repo, Tag: "latest"}, today); d.Verdict != tt.want {
			t.Errorf("%s %s: %s, want %s", tt.action, tt.repo, d.Verdict, tt.want)
		}
	}
}

func TestNeeds(t *testing.T) {
	p, err := Builtin("starter")
	if err != nil {
		t.Fatal(err)
	}
	// The starter's runs-as-root and no-secrets rules need the image evidence both
	// ways; its critical-fixable rule needs the scan in prod, both ways, and only there.
	if got := p.Needs(ActionPush, "prod/app", ""); got != (Needs{CurrentTagDigest: true, Image: true, Scan: true}) {
		t.Errorf("push: %+v", got)
	}
	if got := p.Needs(ActionPull, "prod/app", ""); got != (Needs{Image: true, Scan: true}) {
		t.Errorf("pull: %+v", got)
	}
	if got := p.Needs(ActionPull, "team/app", ""); got != (Needs{Image: true}) {
		t.Errorf("dev pull: %+v", got)
	}
	vulnOff := mustParse(t, "version: 1\nrules:\n  - {id: v, type: vulnerability, mode: off, severity: low}\n")
	if got := vulnOff.Needs(ActionPull, "app", ""); got != (Needs{}) {
		t.Errorf("vulnerability rule off: %+v", got)
	}
	off := mustParse(t, "version: 1\nrules:\n  - {id: i, type: immutable, mode: off}\n")
	if got := off.Needs(ActionPush, "app", ""); got != (Needs{}) {
		t.Errorf("off rule: %+v", got)
	}
	scoped := mustParse(t, "version: 1\nrules:\n  - {id: i, type: immutable, mode: observe, repositories: ['a/**']}\n")
	if got := scoped.Needs(ActionPush, "b/app", ""); got != (Needs{}) {
		t.Errorf("other repository: %+v", got)
	}
	if got := scoped.Needs(ActionPush, "a/app", ""); got != (Needs{CurrentTagDigest: true}) {
		t.Errorf("observed rule still needs evidence: %+v", got)
	}
}

func TestMessages(t *testing.T) {
	p, err := parseFile(t, "example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	in := Input{Action: ActionPush, Repository: "prod/app", Tag: "latest", Digest: digestA, Vulnerabilities: &VulnerabilityEvidence{}}
	d := p.Evaluate(in, time.Date(2026, 12, 10, 0, 0, 0, 0, time.UTC))
	w := d.Warnings()
	if len(w) != 1 {
		t.Fatalf("warnings = %+v", w)
	}
	want := `[no-latest] tag "latest" is forbidden in environment prod: push an immutable tag such as 1.4.2 or 1.4.2-3f9c2ab instead (blocking from 2026-12-15). ` +
		`Request an exception: open a PSEC ticket at https://jira.example/PSEC with the repository, digest and rule id`
	if got := w[0].Message(); got != want {
		t.Errorf("Message() =\n%s\nwant\n%s", got, want)
	}
	wantDeny := `denied by policy (environment prod): [release-tags] tag "latest" does not match the allowed pattern ^v?\d+\.\d+\.\d+(-[0-9a-f]{7,40})?$: ` +
		`use a tag matching the allowed pattern ^v?\d+\.\d+\.\d+(-[0-9a-f]{7,40})?$, such as 1.4.2. ` +
		`Request an exception: open a PSEC ticket at https://jira.example/PSEC with the repository, digest and rule id`
	if got := d.DenyMessage(); got != wantDeny {
		t.Errorf("DenyMessage() =\n%s\nwant\n%s", got, wantDeny)
	}
	// A rule's own exceptionProcess wins, and is phrased as a sentence.
	d = p.Evaluate(Input{Action: ActionPull, Address: "registry.example.com", Repository: "prod/app", Tag: "main", Digest: digestA, Vulnerabilities: &VulnerabilityEvidence{}}, time.Date(2026, 12, 10, 0, 0, 0, 0, time.UTC))
	wantDeny = "denied by policy (environment prod): [prod-pull-pinned] tag \"main\" does not match the allowed pattern ^v?\\d+\\.\\d+\\.\\d+(-[0-9a-f]{7,40})?$, and environment prod only serves such tags or digests: " +
		"pull by digest: registry.example.com/prod/app@" + digestA + ". To request an exception: ask #prod-release on chat"
	if got := d.DenyMessage(); got != wantDeny {
		t.Errorf("DenyMessage() =\n%s\nwant\n%s", got, wantDeny)
	}
	if (Decision{}).DenyMessage() != "" {
		t.Error("DenyMessage of an allow decision is not empty")
	}
	// Observed failures say so.
	d = p.Evaluate(in, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	if got := d.Results[0].Message(); !strings.Contains(got, "(observed only, not enforced yet; blocking from 2026-12-15)") {
		t.Errorf("observed Message() = %s", got)
	}
}

func TestEvaluateConcurrently(t *testing.T) {
	p, err := parseFile(t, "example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := p.Evaluate(Input{Action: ActionPush, Repository: "prod/app", Tag: "latest"}, today)
	done := make(chan Decision)
	for i := 0; i < 8; i++ {
		go func() {
			var d Decision
			for j := 0; j < 100; j++ {
				d = p.Evaluate(Input{Action: ActionPush, Repository: "prod/app", Tag: "latest"}, today)
				p.Needs(ActionPush, "prod/app", "")
				p.Explain(ActionPull, "team/app", "", "1.0.0", "", today)
			}
			done <- d
		}()
	}
	for i := 0; i < 8; i++ {
		if d := <-done; !reflect.DeepEqual(d, want) {
			t.Errorf("concurrent decision differs: %+v", d)
		}
	}
}
