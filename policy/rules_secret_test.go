package policy

import (
	"strings"
	"testing"
)

const (
	layerA = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	layerB = "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
)

// secretDecision evaluates a blocking secret rule in prod against ev.
func secretDecision(t *testing.T, ev *ImageEvidence) Decision {
	t.Helper()
	p := mustParse(t, `version: 1
environments:
  - {name: prod, repositories: ["prod/**"]}
rules:
  - {id: no-secrets, type: secret, mode: block}
`)
	return p.Evaluate(Input{Action: ActionPush, Repository: "prod/api", Tag: "1.0.0", Image: ev}, today)
}

func TestSecretInALayerFileNamesTypePathAndLayer(t *testing.T) {
	ev := &ImageEvidence{LayersScanned: true, Secrets: []SecretFinding{
		{Type: "private-key", Location: "/app/id_rsa:1", Excerpt: "-----BEGIN PRIVATE KEY----- MIGH…==", Layer: layerB, LayerNumber: 3},
	}}
	d := secretDecision(t, ev)
	if d.Verdict != VerdictDeny {
		t.Fatalf("verdict %s, want deny", d.Verdict)
	}
	msg := d.DenyMessage()
	for _, want := range []string{
		"[no-secrets] 1 secret(s): private-key in /app/id_rsa:1 in layer 3 (sha256:fedcba987654…) (-----BEGIN PRIVATE KEY----- MIGH…==)",
		"remove the file in the Dockerfile stage that adds it and rotate the credential",
		"deleting it in a later layer does not remove it from the image",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("denial lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "ENV and build arguments") {
		t.Errorf("a layer-file secret is not about the configuration:\n%s", msg)
	}
}

func TestSecretInADeletedFileSaysTheBlobStillHasIt(t *testing.T) {
	ev := &ImageEvidence{LayersScanned: true, Secrets: []SecretFinding{
		{Type: "aws-access-key-id", Location: "/build/.aws/credentials:2", Excerpt: "AKIA…Q7", Layer: layerA, LayerNumber: 1, Deleted: true},
	}}
	d := secretDecision(t, ev)
	msg := d.DenyMessage()
	if d.Verdict != VerdictDeny || !strings.Contains(msg, "aws-access-key-id in /build/.aws/credentials:2 in layer 1 (sha256:0123456789ab…), deleted in a later layer but still in the image's blobs (AKIA…Q7)") {
		t.Fatalf("%s:\n%s", d.Verdict, msg)
	}
}

func TestSecretsInConfigAndLayersGetBothNextSteps(t *testing.T) {
	ev := &ImageEvidence{LayersScanned: true, Secrets: []SecretFinding{
		{Type: "github-token", Location: "config.Env[1] GH_TOKEN", Excerpt: "ghp_…9Z"},
		{Type: "private-key", Location: "/root/.ssh/id_ed25519:1", Layer: layerA, LayerNumber: 2},
	}}
	r := secretDecision(t, ev).Results[0]
	for _, want := range []string{"github-token in config.Env[1] GH_TOKEN (ghp_…9Z)", "private-key in /root/.ssh/id_ed25519:1 in layer 2 (sha256:0123456789ab…)"} {
		if !strings.Contains(r.Finding, want) {
			t.Errorf("finding lacks %q: %q", want, r.Finding)
		}
	}
	for _, want := range []string{"remove the file in the Dockerfile stage", "ENV and build arguments"} {
		if !strings.Contains(r.Fix, want) {
			t.Errorf("fix lacks %q: %q", want, r.Fix)
		}
	}
}

func TestSecretRulePassSaysWhatWasSearched(t *testing.T) {
	r := secretDecision(t, &ImageEvidence{LayersScanned: true}).Results[0]
	if r.Outcome != OutcomePass || r.Finding != "no secrets in the image configuration and layers" {
		t.Errorf("layers scanned, none found: %s %q", r.Outcome, r.Finding)
	}
}

// secretOutcomePolicy has a closed and an open environment and a blocking secret rule
// whose parameters are params.
func secretOutcomePolicy(t *testing.T, params string) *Policy {
	t.Helper()
	return mustParse(t, `version: 1
environments:
  - {name: prod, repositories: ["prod/**"], failMode: closed}
  - {name: dev, repositories: ["dev/**"], failMode: open}
rules:
  - {id: no-secrets, type: secret, mode: block`+params+`}
`)
}

// An image that could not be searched in full is never clean: the secret rule answers
// "could not check", which a closed environment refuses and an open one warns about; a
// layer whose content is not what the configuration claims is refused everywhere.
func TestSecretRuleNeverPassesWhatItCouldNotSearch(t *testing.T) {
	incomplete := &ImageEvidence{LayersScanned: true, LayersIncomplete: "layer 2 (sha256:…): the zstd frame declares a 256 MiB window"}
	mismatched := &ImageEvidence{LayersScanned: true, Mismatched: []LayerMismatch{{Number: 2, Blob: layerA, Claimed: layerB, Actual: digestA}}}
	unsearched := &ImageEvidence{LayersScanned: true, Unsearched: []UnsearchedFile{
		{Path: "/app/blob.bin", Layer: layerA, LayerNumber: 1, Reason: "binary"}, {Path: "/app/big.txt", LayerNumber: 1, Reason: "over 1 MiB"}},
		UnsearchedOmitted: 5}
	tests := []struct {
		name, params, repo string
		ev                 *ImageEvidence
		verdict            Verdict
		couldNotCheck      bool
		finding            []string
	}{
		{"incomplete, closed", "", "prod/api", incomplete, VerdictDeny, true,
			[]string{"not every layer could be searched: layer 2 (sha256:…): the zstd frame declares a 256 MiB window", "environment prod fails closed"}},
		{"incomplete, open", "", "dev/api", incomplete, VerdictWarn, true,
			[]string{"not every layer could be searched", "environment dev fails open, so this only warns"}},
		{"incomplete: fail, open", ", incomplete: fail", "dev/api", incomplete, VerdictWarn, true, []string{"the rest may hold some"}},
		{"incomplete: pass", ", incomplete: pass", "prod/api", incomplete, VerdictAllow, false,
			[]string{"not known to be clean", "not every layer file was searched: layer 2"}},
		{"mismatch, closed", "", "prod/api", mismatched, VerdictDeny, false,
			[]string{"layer 2 (blob " + layerA + "): the image configuration says diffID " + layerB + ", its content is " + digestA}},
		{"mismatch, open: still denied", ", incomplete: pass", "dev/api", mismatched, VerdictDeny, false, []string{"not the ones its configuration names"}},
		{"unsearched ignored by default", "", "prod/api", unsearched, VerdictAllow, false,
			[]string{"7 file(s) not searched in full: /app/blob.bin in layer 1 (binary); /app/big.txt in layer 1 (over 1 MiB); and 5 more"}},
		{"unsearched: warn", ", unsearched: warn", "prod/api", unsearched, VerdictWarn, false, []string{"7 layer file(s) were not searched in full"}},
		{"unsearched: fail", ", unsearched: fail", "prod/api", unsearched, VerdictDeny, false, []string{"7 layer file(s) were not searched in full"}},
		{"unsearched: fail, nothing unsearched", ", unsearched: fail", "prod/api", &ImageEvidence{LayersScanned: true}, VerdictAllow, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := secretOutcomePolicy(t, tt.params).Evaluate(Input{Action: ActionPush, Repository: tt.repo, Tag: "1.0.0", Image: tt.ev}, today)
			r := d.Results[0]
			if d.Verdict != tt.verdict || (r.CouldNotCheck != "") != tt.couldNotCheck {
				t.Fatalf("verdict %s (could not check %q), want %s (could not check: %v): %q", d.Verdict, r.CouldNotCheck, tt.verdict, tt.couldNotCheck, r.Finding)
			}
			if tt.verdict != VerdictAllow && r.Outcome != OutcomeFail {
				t.Errorf("outcome %s, want fail", r.Outcome)
			}
			for _, want := range tt.finding {
				if !strings.Contains(r.Finding, want) {
					t.Errorf("finding lacks %q:\n%s", want, r.Finding)
				}
			}
		})
	}
}

func TestSecretRuleParameters(t *testing.T) {
	_, err := Parse([]byte(`version: 1
rules:
  - {id: a, type: secret, mode: block, incomplete: maybe}
  - {id: b, type: secret, mode: block, unsearched: sometimes}
  - {id: c, type: secret, mode: block, osUnknown: pass}
`))
	for _, want := range []string{`rules[0].incomplete: unknown value "maybe" (want fail or pass)`,
		`rules[1].unsearched: unknown value "sometimes" (want ignore, warn, fail)`,
		"rules[2].osUnknown: unknown field: secret rules take types, incomplete and unsearched"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("problems lack %q: %v", want, err)
		}
	}
}

func TestManyLayerSecretsAreCounted(t *testing.T) {
	ev := &ImageEvidence{LayersScanned: true}
	for range 7 {
		ev.Secrets = append(ev.Secrets, SecretFinding{Type: "private-key", Location: "/keys/k.pem:1", Layer: layerA, LayerNumber: 1})
	}
	r := secretDecision(t, ev).Results[0]
	if !strings.HasPrefix(r.Finding, "7 secret(s): ") || !strings.HasSuffix(r.Finding, "; and 2 more") {
		t.Errorf("finding %q, want 7 counted, 5 named and 2 more", r.Finding)
	}
}
