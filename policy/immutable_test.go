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
			"tag 1.0.0 already points at " + digestB + "; tags are immutable here, so it cannot be moved to " + digestA,
			"push a new tag such as 1.0.1, or re-push the same image (an identical digest is accepted)"},
		{"re-pushing the same digest", Input{Action: ActionPush, Repository: "app", Tag: "1.0.0", Digest: digestA, CurrentDigest: digestA}, VerdictAllow,
			"tag 1.0.0 already points at this digest; re-pushing the same image is accepted", ""},
		{"new tag", Input{Action: ActionPush, Repository: "app", Tag: "1.0.0", Digest: digestA}, VerdictAllow, "tag 1.0.0 is new", ""},
		{"push by digest", Input{Action: ActionPush, Repository: "app", Digest: digestA}, VerdictAllow, "pushed by digest; no tag moves", ""},
		{"deleting a tag", Input{Action: ActionDelete, Repository: "app", Tag: "1.0.0"}, VerdictDeny,
			"deleting tag 1.0.0 is refused: tags are immutable here, and a deleted tag could be pushed again with other content", deleteFix},
		{"deleting a manifest", Input{Action: ActionDelete, Repository: "app", Digest: digestA}, VerdictDeny,
			"deleting manifest " + digestA + " is refused: tags are immutable here, and deleting a manifest removes every tag that points at it", deleteFix},
		{"deleting a signature", Input{Action: ActionDelete, Repository: "app", Digest: digestA, Kind: KindSignature}, VerdictDeny,
			"deleting signature " + digestA + " is refused: tags are immutable here, and deleting a manifest removes every tag that points at it", deleteFix},
		{"an image under a signature tag", Input{Action: ActionPush, Repository: "app", Tag: sigTag, Digest: digestA, Kind: KindImage}, VerdictDeny,
			"tag " + sigTag + " is reserved for the signature of sha256:" + strings.Repeat("a", 64) + ", but this manifest is an image",
			"push images under a version tag; signatures, attestations and SBOMs under these tags are written by cosign"},
		{"the referrers fallback tag", Input{Action: ActionPush, Repository: "app", Tag: strings.TrimSuffix(sigTag, ".sig"), Digest: digestA, Kind: KindReferrers}, VerdictDeny,
			"tag " + strings.TrimSuffix(sigTag, ".sig") + " is the referrers fallback index of sha256:" + strings.Repeat("a", 64) + ", which portcullis maintains itself",
			"push the artifact with a subject field naming the image; portcullis adds it to the referrers index"},
		{"a signature replacing another", Input{Action: ActionPush, Repository: "app", Tag: sigTag, Digest: digestA, CurrentDigest: digestB, Kind: KindSignature,
			Layers: []string{digestC}, CurrentLayers: []string{digestB}}, VerdictDeny,
			"the push would replace or remove signature layer sha256:bbbbbbbbbbbb… (with its annotations) under tag " + sigTag + " (it points at " + digestB + "): signature tags only grow here",
			"sign again with cosign, which keeps the existing signatures and adds yours"},
		{"a signature added beside another", Input{Action: ActionPush, Repository: "app", Tag: sigTag, Digest: digestA, CurrentDigest: digestB, Kind: KindSignature,
			Layers: []string{digestB, digestC}, CurrentLayers: []string{digestB}}, VerdictAllow,
			"adds 1 signature layer(s) beside the 1 already under " + sigTag, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Evaluate(tt.in, today)
			if d.Verdict != tt.want || len(d.Results) != 1 || d.Results[0].Finding != tt.finding || d.Results[0].Fix != tt.fix {
				t.Errorf("got %+v", d)
			}
		})
	}
	t.Run("pulls are not subject", func(t *testing.T) {
		d := p.Evaluate(Input{Action: ActionPull, Repository: "app", Tag: "1.0.0", Digest: digestA, CurrentDigest: digestB}, today)
		if d.Verdict != VerdictAllow || len(judged(d)) != 0 {
			t.Errorf("got %+v", d)
		}
	})
}

const deleteFix = "deletes go through the registry's own retention (garbage collection) outside the gateway; ask the platform team"

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
