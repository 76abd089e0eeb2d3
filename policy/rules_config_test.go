package policy

import (
	"errors"
	"strings"
	"testing"
)

const configRules = `version: 1
rules:
  - id: no-root
    type: config
    mode: block
    check: root
  - id: labels
    type: config
    mode: block
    check: labels
    labels: [org.opencontainers.image.source, team]
  - id: base
    type: config
    mode: block
    check: base-image
    baseImages: ["registry.example:5000/base/**", "gcr.io/distroless/*"]
  - id: no-secrets
    type: secret
    mode: block
`

func TestConfigAndSecretRules(t *testing.T) {
	p := mustParse(t, configRules)
	good := ImageEvidence{User: "65532", BaseImage: "registry.example:5000/base/debian:12@sha256:abc",
		Labels: map[string]string{"org.opencontainers.image.source": "x", "team": "a"}}
	outcome := func(ev *ImageEvidence, rule string) Result {
		t.Helper()
		d := p.Evaluate(Input{Action: ActionPush, Repository: "team/app", Tag: "1.0.0", Image: ev}, today)
		for _, r := range d.Results {
			if r.Rule == rule {
				return r
			}
		}
		t.Fatalf("no result for %s in %+v", rule, d.Results)
		return Result{}
	}
	for _, rule := range []string{"no-root", "labels", "base", "no-secrets"} {
		if r := outcome(&good, rule); r.Outcome != OutcomePass {
			t.Errorf("%s on a compliant image: %s %q", rule, r.Outcome, r.Finding)
		}
	}
	cases := []struct {
		name, rule string
		edit       func(e *ImageEvidence)
		finding    string
		fix        string
	}{
		{"root", "no-root", func(e *ImageEvidence) { e.User, e.RunsAsRoot, e.RootReason = "", true, "no USER is set" },
			"the image runs as root (no USER is set)", "USER 65532:65532"},
		{"missing label", "labels", func(e *ImageEvidence) { delete(e.Labels, "team") }, "missing labels: team", "LABEL team="},
		{"base not allowed", "base", func(e *ImageEvidence) { e.BaseImage = "docker.io/library/ubuntu:24.04" },
			"base image docker.io/library/ubuntu is not allowed here", "gcr.io/distroless/*, registry.example:5000/base/**"},
		{"base unknown", "base", func(e *ImageEvidence) { e.BaseImage = "" }, "the base image is unknown", "org.opencontainers.image.base.name"},
		{"secret", "no-secrets", func(e *ImageEvidence) {
			e.Secrets = []SecretFinding{{Type: "github-token", Location: "config Env GH_TOKEN", Excerpt: "ghp_…9Z"}}
		}, "1 secret(s): github-token in config Env GH_TOKEN (ghp_…9Z)", "rotate them"},
	}
	for _, c := range cases {
		ev := good
		ev.Labels = map[string]string{"org.opencontainers.image.source": "x", "team": "a"}
		c.edit(&ev)
		r := outcome(&ev, c.rule)
		if r.Outcome != OutcomeFail || !strings.Contains(r.Finding, c.finding) || !strings.Contains(r.Fix, c.fix) {
			t.Errorf("%s: %s %q / %q, want fail with %q / %q", c.name, r.Outcome, r.Finding, r.Fix, c.finding, c.fix)
		}
	}
	// An index is judged through its platform manifests; no evidence means it did not run.
	for _, rule := range []string{"no-root", "no-secrets"} {
		if r := outcome(&ImageEvidence{Index: true}, rule); r.Outcome != OutcomePass {
			t.Errorf("%s on an index: %s", rule, r.Outcome)
		}
		if r := outcome(nil, rule); r.Outcome != OutcomeFail || !strings.Contains(r.Finding, "gathered no image evidence") {
			t.Errorf("%s without evidence: %s %q", rule, r.Outcome, r.Finding)
		}
	}
	if r := outcome(&good, "no-secrets"); !strings.Contains(r.Finding, "layer files are not searched yet") {
		t.Errorf("a pass without layer scanning must say so: %q", r.Finding)
	}
	// Artifacts are not images.
	d := p.Evaluate(Input{Action: ActionPush, Repository: "team/app", Tag: "sha256-x.sig", Kind: KindSignature}, today)
	if len(judged(d)) != 0 || len(d.Results) != 4 || d.Verdict != VerdictAllow {
		t.Errorf("artifact judged by config/secret rules: %+v", d.Results)
	}
}

func TestSecretRuleTypes(t *testing.T) {
	p := mustParse(t, "version: 1\nrules:\n  - {id: keys, type: secret, mode: block, types: [private-key]}\n")
	ev := &ImageEvidence{Secrets: []SecretFinding{{Type: "jwt", Location: "config Env X"}}}
	if d := p.Evaluate(Input{Action: ActionPush, Repository: "a/b", Tag: "1", Image: ev}, today); d.Verdict != VerdictAllow {
		t.Errorf("a jwt under a private-key-only rule: %s", d.Verdict)
	}
	ev.Secrets = append(ev.Secrets, SecretFinding{Type: "private-key", Location: "/root/.ssh/id_rsa"})
	if d := p.Evaluate(Input{Action: ActionPush, Repository: "a/b", Tag: "1", Image: ev}, today); d.Verdict != VerdictDeny {
		t.Errorf("a private key: %s", d.Verdict)
	}
}

func TestConfigRuleValidation(t *testing.T) {
	_, err := Parse([]byte(`version: 1
rules:
  - {id: a, type: config, mode: block}
  - {id: b, type: config, mode: block, check: healthcheck}
  - {id: c, type: config, mode: block, check: labels}
  - {id: d, type: config, mode: block, check: base-image, baseImages: ["a/**/**x"]}
  - {id: e, type: secret, mode: block, paths: [x]}
`))
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v", err)
	}
	got := err.Error()
	for _, want := range []string{
		"rules[0].check: required (want root, labels, base-image)",
		`rules[1].check: unknown check "healthcheck" (want root, labels, base-image)`,
		`rules[2].labels: required by check "labels"`,
		"rules[3].baseImages[0]: invalid glob",
		"rules[4].paths: unknown field: secret rules take types",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
}

func TestImageName(t *testing.T) {
	for in, want := range map[string]string{
		"registry.example:5000/base/debian:12@sha256:abc": "registry.example:5000/base/debian",
		"registry.example:5000/base/debian":               "registry.example:5000/base/debian",
		"ubuntu:24.04":                                    "ubuntu",
		"gcr.io/distroless/static@sha256:abc":             "gcr.io/distroless/static",
		"":                                                "",
	} {
		if got := imageName(in); got != want {
			t.Errorf("imageName(%q) = %q, want %q", in, got, want)
		}
	}
}
