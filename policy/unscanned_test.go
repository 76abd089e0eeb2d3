package policy

import (
	"strings"
	"testing"
	"time"
)

func TestUnscannedParsed(t *testing.T) {
	p := mustParse(t, `version: 1
environments:
  - {name: prod, repositories: ["prod/**"], unscanned: {wait: 20s, then: retry}}
  - {name: dev, repositories: ["**"], failMode: open, unscanned: {wait: 0s}}
rules:
  - {id: no-latest, type: tag, mode: block, forbidden: [latest]}
`)
	if u := p.UnscannedPull("prod"); u == nil || u.Wait != 20*time.Second || u.Then != UnscannedRetry {
		t.Errorf("prod: %+v", u)
	}
	if u := p.UnscannedPull("dev"); u == nil || u.Wait != 0 || u.Then != "" {
		t.Errorf("dev: %+v", u)
	}
	if u := p.UnscannedPull(DefaultEnvironment); u != nil {
		t.Errorf("an environment without the setting: %+v", u)
	}
	// Callers get copies.
	p.UnscannedPull("prod").Wait = time.Hour
	p.Environments()[0].Unscanned.Wait = time.Hour
	if p.UnscannedPull("prod").Wait != 20*time.Second {
		t.Error("a caller changed the policy's setting")
	}
}

func TestUnscannedRefused(t *testing.T) {
	_, err := Parse([]byte(`version: 1
environments:
  - {name: a, repositories: ["a/**"], unscanned: {wait: soon, then: retry}}
  - {name: b, repositories: ["b/**"], unscanned: {wait: 10m}}
  - {name: c, repositories: ["c/**"], unscanned: {wait: 1s, then: ignore}}
  - {name: d, repositories: ["d/**"], unscanned: {then: allow}}
  - {name: e, repositories: ["e/**"], unscanned: {wait: 1s, retry: true}}
rules:
  - {id: no-latest, type: tag, mode: block, forbidden: [latest]}
`))
	got := strings.Join(problemStrings(t, err), "\n")
	for _, want := range []string{
		`environments[0].unscanned.wait: "soon" is not a duration`,
		`environments[1].unscanned.wait: 10m is out of range (want 0s to 5m0s)`,
		`environments[2].unscanned.then: unknown value "ignore" (want retry or allow)`,
		`environments[3].unscanned.wait: required`,
		`environments[4].unscanned.retry`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
}
