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
	r = secretDecision(t, &ImageEvidence{LayersScanned: true, LayersIncomplete: "layer 1 (sha256:…): over 1,000,000 entries"}).Results[0]
	if r.Outcome != OutcomePass || !strings.Contains(r.Finding, "not every layer file was searched: layer 1 (sha256:…): over 1,000,000 entries") {
		t.Errorf("an incomplete layer must be named: %s %q", r.Outcome, r.Finding)
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
