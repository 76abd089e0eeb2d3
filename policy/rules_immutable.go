package policy

import "fmt"

// evaluateImmutable checks that a push does not move an existing tag.
func (ru *rule) evaluateImmutable(in Input) (Outcome, string, string) {
	switch {
	case in.Tag == "":
		return OutcomePass, "pushed by digest; no tag moves", ""
	case in.CurrentDigest == "":
		return OutcomePass, fmt.Sprintf("tag %s is new", in.Tag), ""
	case in.CurrentDigest == in.Digest:
		return OutcomePass, fmt.Sprintf("tag %s already points at this digest; re-pushing the same image is accepted", in.Tag), ""
	}
	finding := fmt.Sprintf("tag %s already points at %s; tags are immutable here", in.Tag, shortDigest(in.CurrentDigest))
	fix := fmt.Sprintf("push a new tag such as %s, or re-push the same image (an identical digest is accepted)", nextTag(in.Tag))
	return OutcomeFail, finding, fix
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
