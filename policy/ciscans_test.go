package policy

import (
	"strings"
	"testing"
	"time"
)

func ciScansPolicy(envs string) string {
	return "version: 1\nauthorities:\n  - name: ci-key\n    key: |\n" + indent(signerKey(0), 6) +
		"environments:\n" + envs + "rules:\n  - {id: no-latest, type: tag, mode: block, forbidden: [latest]}\n"
}

func TestCIScansParsed(t *testing.T) {
	p := mustParse(t, ciScansPolicy(`  - {name: prod, repositories: ["prod/**"], ciScans: {authorities: [ci-key]}}
  - {name: staging, repositories: ["staging/**"], ciScans: {authorities: [ci-key], predicateTypes: ["https://in-toto.io/attestation/vulns/v0.2"], maxAge: 36h}}
  - {name: dev, repositories: ["**"], ciScans: {authorities: [ci-key], maxAge: 2d}}
`))
	prod := p.CIScans("prod")
	if prod == nil || prod.MaxAge != DefaultCIScanMaxAge || len(prod.Trusted) != 1 || prod.Trusted[0].Name != "ci-key" || prod.Trusted[0].PublicKey == nil {
		t.Fatalf("prod: %+v", prod)
	}
	if got := strings.Join(prod.PredicateTypes, " "); got != PredicateCosignVuln+" "+PredicateCosignVulnBare+" "+PredicateInTotoVulns {
		t.Errorf("default predicate types %s", got)
	}
	if s := p.CIScans("staging"); s.MaxAge != 36*time.Hour || len(s.PredicateTypes) != 1 {
		t.Errorf("staging: %+v", s)
	}
	if d := p.CIScans("dev"); d.MaxAge != 48*time.Hour {
		t.Errorf("dev: %+v", d)
	}
	if p.CIScans(DefaultEnvironment) != nil {
		t.Error("the default environment takes CI scans")
	}
	if envs := p.Environments(); envs[0].CIScans == nil || envs[0].CIScans.MaxAge != DefaultCIScanMaxAge {
		t.Errorf("Environments() lost ciScans: %+v", envs[0])
	}
}

func TestCIScansRefused(t *testing.T) {
	_, err := Parse([]byte(ciScansPolicy(`  - {name: a, repositories: ["a/**"], ciScans: {authorities: [nobody]}}
  - {name: b, repositories: ["b/**"], ciScans: {authorities: [ci-key], maxAge: 7 days}}
  - {name: c, repositories: ["c/**"], ciScans: {authorities: [ci-key], maxAge: 100d}}
  - {name: d, repositories: ["d/**"], ciScans: {authorities: [ci-key], predicateTypes: ["https://slsa.dev/provenance/v1"]}}
  - {name: e, repositories: ["e/**"], ciScans: {maxAge: 1d}}
  - {name: f, repositories: ["f/**"], ciScans: {authorities: [], trust: all}}
  - {name: g, repositories: ["g/**"], ciScans: {authorities: [ci-key, ci-key], maxAge: 0s}}
`)))
	got := strings.Join(problemStrings(t, err), "\n")
	for _, want := range []string{
		`environments[0].ciScans.authorities[0]: no authority named "nobody" (want one of ci-key)`,
		`environments[1].ciScans.maxAge: "7 days" is not a duration`,
		`environments[2].ciScans.maxAge: 100d is out of range`,
		`environments[3].ciScans.predicateTypes[0]: predicate type "https://slsa.dev/provenance/v1" is not a vulnerability scan predicate`,
		`environments[4].ciScans.authorities: required`,
		`environments[5].ciScans.authorities`,
		`environments[5].ciScans.trust: unknown field: ciScans takes authorities, predicateTypes and maxAge`,
		`environments[6].ciScans.authorities[1]: "ci-key" is listed twice`,
		`environments[6].ciScans.maxAge: 0s is out of range`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
}
