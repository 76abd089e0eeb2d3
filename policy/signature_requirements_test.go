package policy

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSignatureRequirements(t *testing.T) {
	p := mustParse(t, `
version: 1
`+authoritiesYAML("release", "security", "qa")+`
environments:
  - {name: prod, repositories: ["prod/**"]}
  - {name: edge, hosts: ["edge.example"]}
rules:
  - {id: prod, type: signature, mode: observe, environments: [prod], authorities: [release, security]}
  - {id: prod-two, type: signature, mode: block, environments: [prod], authorities: [security, qa, release], threshold: 2}
  - {id: edge, type: signature, mode: off, environments: [edge], authorities: [release]}
  - {id: keyless, type: signature, mode: block, repositories: ["keyless/**"]}
  - {id: team, type: signature, mode: warn, repositories: ["team/**"], authorities: [qa]}
`)
	tests := []struct {
		repo, host string
		want       []SignatureRequirement
	}{
		{"prod/app", "", []SignatureRequirement{
			{Rule: "prod", Authorities: []string{"release", "security"}, Threshold: 1},
			{Rule: "prod-two", Authorities: []string{"security", "qa", "release"}, Threshold: 2},
		}},
		{"dev/app", "", nil},
		{"x/app", "edge.example", nil}, // mode off
		{"keyless/app", "", nil},       // no authorities: nothing can satisfy it
		{"team/app", "edge.example", []SignatureRequirement{{Rule: "team", Authorities: []string{"qa"}, Threshold: 1}}},
	}
	for _, tt := range tests {
		if got := p.SignatureRequirements(tt.repo, tt.host); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("SignatureRequirements(%s, %q) = %+v, want %+v", tt.repo, tt.host, got, tt.want)
		}
	}
}

func TestOverBudgetFindingIsNamed(t *testing.T) {
	p := signaturePolicy(t, ModeBlock, "")
	in := Input{Action: ActionPull, Repository: "prod/app", Digest: digestA,
		Signatures: &SignatureEvidence{Findings: []SignatureFinding{{Kind: "unknown-key"}, {Kind: "over-budget"}}}}
	d := p.Evaluate(in, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	if len(d.Results) != 1 || d.Results[0].Outcome != OutcomeFail ||
		!strings.Contains(d.Results[0].Finding, "a signature by an unknown key and signature artifacts left unread (over the gateway's verification budget)") {
		t.Fatalf("results %+v", d.Results)
	}
}
