package policy

import (
	"fmt"
	"sort"
	"strings"
)

// readSignatureParam reads a parameter of a signature rule.
func (r *reader) readSignatureParam(ru *rule, f field) {
	switch f.key {
	case "authorities":
		r.notEmpty(f)
		for _, it := range r.strList(f.path, f.value) {
			if oneOf(it.value, ru.Authorities) {
				r.add(it.path, it.node, "%q is listed twice", it.value)
				continue
			}
			ru.Authorities = append(ru.Authorities, it.value)
			ru.authItems = append(ru.authItems, it)
		}
	case "threshold":
		ru.Threshold, ru.thresholdSet = r.integer(f.path, f.value)
	case "perPlatform":
		ru.PerPlatform = r.boolean(f.path, f.value)
	default:
		r.add(f.path, f.keyN, "unknown field: signature rules take authorities, threshold and perPlatform (line %d)", f.keyN.Line)
	}
}

// checkSignatureRule sets a signature rule's defaults (actions [pull],
// threshold 1) and reports a threshold out of range or actions with push.
func (r *reader) checkSignatureRule(ru *rule) {
	if f, ok := ru.fields["actions"]; ok {
		if ru.selectsAction(ActionPush) && len(ru.Actions) > 0 {
			r.add(f.path, f.value, "signature rules apply to pulls (signatures are pushed after the image)")
		}
	} else {
		ru.Actions = []Action{ActionPull}
	}
	f := ru.fields["threshold"]
	_, hasAuthorities := ru.fields["authorities"]
	switch {
	case !ru.thresholdSet:
		ru.Threshold = 1
	case !hasAuthorities:
		r.add(f.path, f.value, "needs authorities to count")
	case ru.Threshold < 1 || ru.Threshold > len(ru.Authorities):
		r.add(f.path, f.value, "want 1 to %d (the number of authorities listed), got %d", len(ru.Authorities), ru.Threshold)
	}
}

// evaluateSignature checks the signature evidence of a pull against a
// signature rule.
func (ru *rule) evaluateSignature(in Input) (Outcome, string, string) {
	if len(ru.auths) == 0 {
		return OutcomeFail, "no signing keys are configured for this rule yet",
			"add your release keys under authorities and list them in rule " + ru.ID
	}
	required := ru.requirement()
	ev := in.Signatures
	if ev == nil {
		return OutcomeFail, required + "; signatures were not checked (the gateway gathered no signature evidence)",
			"this is not a problem with the image: tell the platform team that signature verification did not run"
	}
	indexIgnored := ev.CoveredBy != "" && ru.PerPlatform
	var got, others []string
	if !indexIgnored {
		for _, a := range ru.Authorities {
			if oneOf(a, ev.Verified) {
				got = append(got, a)
			}
		}
		for _, v := range ev.Verified {
			if !oneOf(v, ru.Authorities) && !oneOf(v, others) {
				others = append(others, v)
			}
		}
	}
	if len(got) >= ru.Threshold {
		if ev.CoveredBy != "" {
			return OutcomePass, fmt.Sprintf("covered by the signature of index %s (%s)", shortDigest(ev.CoveredBy), strings.Join(got, ", ")), ""
		}
		return OutcomePass, "signed by " + andList(got), ""
	}

	var found []string
	if len(got) > 0 {
		found = append(found, signaturesBy(got))
	}
	if indexIgnored {
		by := ""
		if names := distinct(ev.Verified); len(names) > 0 {
			by = " (" + strings.Join(names, ", ") + ")"
		}
		found = append(found, fmt.Sprintf("the signature of index %s%s, which does not count: this rule requires every platform manifest to carry its own (perPlatform)",
			shortDigest(ev.CoveredBy), by))
	}
	if len(others) > 0 {
		found = append(found, signaturesBy(others)+", which this rule does not accept")
	}
	kinds := findingPhrases(ev.Findings)
	if len(found) == 0 && len(kinds) == 1 && kinds[0] == findingKinds[3].phrase {
		kinds[0] = "only " + kinds[0]
	}
	found = append(found, kinds...)
	if len(found) == 0 {
		found = []string{"no signature"}
	}
	finding := required + "; found " + andList(found)
	if ev.CoveredBy != "" && !indexIgnored {
		finding += fmt.Sprintf(" (on this manifest and its index %s)", shortDigest(ev.CoveredBy))
	}

	ref := imageRef(in)
	var missing []Authority
	for _, a := range ru.auths {
		if !oneOf(a.Name, got) {
			missing = append(missing, a)
		}
	}
	cmds := make([]string, len(missing))
	names := make([]string, len(missing))
	for i, a := range missing {
		cmds[i] = "with " + a.Name + ": " + signCommand(a) + " " + ref
		if a.Keyless != nil {
			cmds[i] += " signed in as " + a.Keyless.Identity()
		}
		names[i] = a.Name
	}
	var fix string
	if ru.Threshold == 1 {
		fix = "sign it " + strings.Join(cmds, "; or ")
	} else {
		need := ru.Threshold - len(got)
		noun := "authorities"
		if need == 1 {
			noun = "authority"
		}
		fix = fmt.Sprintf("%d more distinct %s must sign (of %s): %s", need, noun, strings.Join(names, ", "), strings.Join(cmds, "; "))
	}
	if indexIgnored {
		fix += fmt.Sprintf(" (or re-sign index %s with cosign sign --recursive, which signs every platform manifest too)", shortDigest(ev.CoveredBy))
	}
	return OutcomeFail, finding, fix
}

// requirement says what a signature rule with authorities requires.
func (ru *rule) requirement() string {
	switch {
	case ru.Threshold > 1:
		return fmt.Sprintf("requires signatures by %d distinct authorities of %s", ru.Threshold, strings.Join(ru.Authorities, ", "))
	case len(ru.Authorities) == 1:
		return "requires a signature by " + ru.Authorities[0]
	}
	return "requires a signature by one of " + strings.Join(ru.Authorities, ", ")
}

// signCommand is how to sign with a: its signCommand, keyless cosign for a
// keyless authority, or cosign with a placeholder key file named after it.
func signCommand(a Authority) string {
	if a.SignCommand != "" {
		return a.SignCommand
	}
	if a.Keyless != nil {
		return "cosign sign"
	}
	return "cosign sign --key " + a.Name + ".key"
}

// imageRef is address/repo@digest for the request (the address the client used, else the
// door's host), with placeholders for an unknown address or digest: every fix text that
// names an image names it as the client would write it.
func imageRef(in Input) string {
	host := in.Address
	if host == "" {
		host = in.Host
	}
	if host == "" {
		host = "<gateway>"
	}
	return host + "/" + digestRef(in)
}

// signaturesBy is "a signature by x" or "signatures by x and y".
func signaturesBy(names []string) string {
	if len(names) == 1 {
		return "a signature by " + names[0]
	}
	return "signatures by " + andList(names)
}

// findingPhrases names each distinct kind of findings once: known kinds in
// findingKinds order, then unknown kinds sorted.
func findingPhrases(findings []SignatureFinding) []string {
	seen := map[string]bool{}
	for _, f := range findings {
		seen[f.Kind] = true
	}
	var out []string
	for _, k := range findingKinds {
		if !seen[k.kind] {
			continue
		}
		delete(seen, k.kind)
		if k.kind == kindWrongIdentity {
			if ds := identityDetails(findings); len(ds) > 0 {
				out = append(out, ds...)
				continue
			}
		}
		out = append(out, k.phrase)
	}
	var unknown []string
	for k := range seen {
		unknown = append(unknown, k)
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		out = append(out, fmt.Sprintf("a signature artifact that did not verify (%q)", k))
	}
	return out
}

// maxIdentityDetails bounds how many wrong identities a denial lists.
const maxIdentityDetails = 3

// identityDetails returns the distinct details of wrong-identity findings
// (the identity found and the one required), without the "layer N: " prefix
// of a legacy signature's, as "a keyless signature by ...".
func identityDetails(findings []SignatureFinding) []string {
	var out []string
	for _, f := range findings {
		if f.Kind != kindWrongIdentity || f.Detail == "" {
			continue
		}
		d := f.Detail
		if strings.HasPrefix(d, "layer ") {
			if _, rest, ok := strings.Cut(d, ": "); ok {
				d = rest
			}
		}
		if !strings.HasPrefix(d, "a ") {
			d = "a " + d
		}
		if !oneOf(d, out) {
			out = append(out, d)
		}
		if len(out) == maxIdentityDetails {
			break
		}
	}
	return out
}

// distinct returns s without repeated values, in first-seen order.
func distinct(s []string) []string {
	var out []string
	for _, x := range s {
		if !oneOf(x, out) {
			out = append(out, x)
		}
	}
	return out
}

// andList joins "a", "a and b", "a, b and c".
func andList(s []string) string {
	if len(s) <= 1 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// signatureChecks describes what a signature rule requires, for explanations.
func (ru *rule) signatureChecks() string {
	if len(ru.Authorities) == 0 {
		return "no authorities listed: fails until keys are configured"
	}
	s := "signed by " + ru.Authorities[0]
	switch {
	case ru.Threshold > 1:
		s = fmt.Sprintf("signed by %d distinct of %s", ru.Threshold, strings.Join(ru.Authorities, ", "))
	case len(ru.Authorities) > 1:
		s = "signed by one of " + strings.Join(ru.Authorities, ", ")
	}
	if ru.PerPlatform {
		s += "; each platform manifest signed on its own"
	}
	return s
}

// SignatureRequirement is what one signature rule needs of a pull: valid signatures by at
// least Threshold distinct authorities among Authorities.
type SignatureRequirement struct {
	// Rule is the rule's id.
	Rule string
	// Authorities are the names of the authorities the rule accepts.
	Authorities []string
	// Threshold is how many distinct authorities must have signed.
	Threshold int
}

// SignatureRequirements returns what the signature rules that apply to a pull of repo
// through host require, whatever their mode: a signature verifier may stop looking as
// soon as all are met. Rules without authorities are left out (they fail whatever is
// found); nil when no signature rule applies.
func (p *Policy) SignatureRequirements(repo, host string) []SignatureRequirement {
	env := p.Environment(repo, host)
	var out []SignatureRequirement
	for i := range p.rules {
		r := &p.rules[i]
		if r.Type != TypeSignature || len(r.auths) == 0 || r.mismatch(env, ActionPull, repo) != "" {
			continue
		}
		out = append(out, SignatureRequirement{Rule: r.ID, Authorities: append([]string(nil), r.Authorities...), Threshold: r.Threshold})
	}
	return out
}
