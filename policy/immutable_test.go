package policy

import (
	"strings"
	"testing"
)

func TestImmutability(t *testing.T) {
	p := mustParse(t, `
version: 1
rules:
  - {id: immutable-tags, type: immutable, mode: block}
`)
	sigTag := "sha256-" + strings.Repeat("a", 64) + ".sig"
	tests := []struct {
		name    string
		in      Input
		want    Verdict
		finding string
		fix     string
	}{
		{"moving a tag", Input{Action: ActionPush, Repository: "app", Tag: "1.0.0", Digest: digestA, CurrentDigest: digestB}, VerdictDeny,
			"tag 1.0.0 already points at sha256:bbbbbbbbbbbb…; tags are immutable here",
			"push a new tag such as 1.0.1, or re-push the same image (an identical digest is accepted)"},
		{"re-pushing the same digest", Input{Action: ActionPush, Repository: "app", Tag: "1.0.0", Digest: digestA, CurrentDigest: digestA}, VerdictAllow,
			"tag 1.0.0 already points at this digest; re-pushing the same image is accepted", ""},
		{"new tag", Input{Action: ActionPush, Repository: "app", Tag: "1.0.0", Digest: digestA}, VerdictAllow, "tag 1.0.0 is new", ""},
		{"push by digest", Input{Action: ActionPush, Repository: "app", Digest: digestA}, VerdictAllow, "pushed by digest; no tag moves", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Evaluate(tt.in, today)
			if d.Verdict != tt.want || len(d.Results) != 1 || d.Results[0].Finding != tt.finding || d.Results[0].Fix != tt.fix {
				t.Errorf("got %+v", d)
			}
		})
	}
	t.Run("artifact tags are not subject", func(t *testing.T) {
		d := p.Evaluate(Input{Action: ActionPush, Repository: "app", Tag: sigTag, Digest: digestA, CurrentDigest: digestB, Artifact: true}, today)
		if d.Verdict != VerdictAllow || len(d.Results) != 0 {
			t.Errorf("got %+v", d)
		}
	})
	t.Run("pulls are not subject", func(t *testing.T) {
		d := p.Evaluate(Input{Action: ActionPull, Repository: "app", Tag: "1.0.0", Digest: digestA, CurrentDigest: digestB}, today)
		if d.Verdict != VerdictAllow || len(d.Results) != 0 {
			t.Errorf("got %+v", d)
		}
	})
}

func TestNextTag(t *testing.T) {
	tests := map[string]string{
		"1.0.0":         "1.0.1",
		"v2.3":          "v2.4",
		"1.4.2-3f9c2ab": "1.4.3",
		"v1.9-rc1":      "v1.10",
		"7":             "8",
		"20240101":      "20240102",
		"main":          "1.4.2",
		"1234567890":    "1.4.2",
		"":              "1.4.2",
	}
	for tag, want := range tests {
		if got := nextTag(tag); got != want {
			t.Errorf("nextTag(%q) = %q, want %q", tag, got, want)
		}
	}
}
