package policy

import (
	"fmt"
	"strings"
)

// evaluateImmutable checks that a push does not move an existing tag, that
// signature, attestation and SBOM tags only grow, that the referrers fallback
// tag is left to the gateway, and that nothing is deleted.
func (ru *rule) evaluateImmutable(in Input) (Outcome, string, string) {
	if in.Action == ActionDelete {
		return evaluateDelete(in)
	}
	switch k := ArtifactTagKind(in.Tag); {
	case k == KindReferrers:
		return OutcomeFail, fmt.Sprintf("tag %s is the referrers fallback index of %s, which portcullis maintains itself", in.Tag, subjectOfTag(in.Tag)),
			"push the artifact with a subject field naming the image; portcullis adds it to the referrers index"
	case k != "":
		return evaluateArtifactTag(in, k)
	}
	switch {
	case in.Tag == "":
		return OutcomePass, "pushed by digest; no tag moves", ""
	case in.CurrentDigest == "":
		return OutcomePass, fmt.Sprintf("tag %s is new", in.Tag), ""
	case in.CurrentDigest == in.Digest:
		return OutcomePass, fmt.Sprintf("tag %s already points at this digest; re-pushing the same image is accepted", in.Tag), ""
	}
	finding := fmt.Sprintf("tag %s already points at %s; tags are immutable here, so it cannot be moved to %s", in.Tag, in.CurrentDigest, in.Digest)
	fix := fmt.Sprintf("push a new tag such as %s, or re-push the same image (an identical digest is accepted)", nextTag(in.Tag))
	return OutcomeFail, finding, fix
}

// evaluateArtifactTag judges a push to a signature, attestation or SBOM tag
// (kind k): it must hold that kind of artifact, and may only add layers (new
// signatures beside the old ones), as cosign does when it signs again.
func evaluateArtifactTag(in Input, k Kind) (Outcome, string, string) {
	if in.Kind != k {
		what := "a " + string(in.Kind)
		switch in.Kind {
		case KindUnknown:
			what = "a manifest of unknown content"
		case KindImage, KindIndex, KindArtifact, KindAttestation:
			what = "an " + string(in.Kind)
		}
		return OutcomeFail, fmt.Sprintf("tag %s is reserved for the %s of %s, but this manifest is %s", in.Tag, k, subjectOfTag(in.Tag), what),
			"push images under a version tag; signatures, attestations and SBOMs under these tags are written by cosign"
	}
	if in.CurrentDigest == "" || in.CurrentDigest == in.Digest {
		return OutcomePass, fmt.Sprintf("%s tag %s is new or unchanged", k, in.Tag), ""
	}
	have := make(map[string]bool, len(in.Layers))
	for _, l := range in.Layers {
		have[l] = true
	}
	for _, l := range in.CurrentLayers {
		if !have[l] {
			d, _, _ := strings.Cut(l, "#")
			return OutcomeFail, fmt.Sprintf("the push would replace or remove %s layer %s (with its annotations) under tag %s (it points at %s): %s tags only grow here", k, shortDigest(d), in.Tag, in.CurrentDigest, k),
				"sign again with cosign, which keeps the existing signatures and adds yours"
		}
	}
	if len(in.CurrentLayers) == 0 {
		return OutcomeFail, fmt.Sprintf("tag %s points at %s, whose layers could not be read, so the push cannot be shown to keep them", in.Tag, in.CurrentDigest),
			"retry; if it persists, tell the platform team"
	}
	return OutcomePass, fmt.Sprintf("adds %d %s layer(s) beside the %d already under %s", len(in.Layers)-len(in.CurrentLayers), k, len(in.CurrentLayers), in.Tag), ""
}

// evaluateDelete refuses deletes where tags are immutable: a deleted tag
// could be pushed again with other content, and deleting a manifest by
// digest deletes every tag that points at it, signatures included.
func evaluateDelete(in Input) (Outcome, string, string) {
	fix := "deletes go through the registry's own retention (garbage collection) outside the gateway; ask the platform team"
	if in.Tag != "" {
		return OutcomeFail, fmt.Sprintf("deleting tag %s is refused: tags are immutable here, and a deleted tag could be pushed again with other content", in.Tag), fix
	}
	what := "manifest"
	if in.Kind.IsArtifact() {
		what = string(in.Kind)
	}
	return OutcomeFail, fmt.Sprintf("deleting %s %s is refused: tags are immutable here, and deleting a manifest removes every tag that points at it", what, in.Digest), fix
}

// subjectOfTag is the digest an artifact-shaped tag is about: "sha256-<hex>.sig" → "sha256:<hex>".
func subjectOfTag(tag string) string {
	for i := 0; i < len(tag); i++ {
		if tag[i] == '-' {
			d := tag[:i] + ":" + tag[i+1:]
			for j := len(d) - 1; j > i; j-- {
				if d[j] == '.' {
					return d[:j]
				}
			}
			return d
		}
	}
	return tag
}

// shortDigest abbreviates a digest to its algorithm and 12 hex digits.
func shortDigest(d string) string {
	for i := 0; i < len(d); i++ {
		if d[i] == ':' {
			if len(d)-i-1 > 12 {
				return d[:i+13] + "…"
			}
			break
		}
	}
	return d
}
