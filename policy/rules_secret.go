package policy

import (
	"fmt"
	"strings"
)

// What a secret rule does with layer files the secret search did not read in full (its
// unsearched field).
const (
	// UnsearchedIgnore judges the image by what was searched; the result names how many
	// files were not. It is the default.
	UnsearchedIgnore = "ignore"
	// UnsearchedWarn warns, even in block mode, when a file was not searched.
	UnsearchedWarn = "warn"
	// UnsearchedFail fails the rule when a file was not searched: every file must be.
	UnsearchedFail = "fail"
)

var unsearchedNames = []string{UnsearchedIgnore, UnsearchedWarn, UnsearchedFail}

// readSecretParam reads a parameter of a secret rule.
func (r *reader) readSecretParam(ru *rule, f field) {
	switch f.key {
	case "types":
		r.notEmpty(f)
		for _, it := range r.strList(f.path, f.value) {
			ru.SecretTypes = append(ru.SecretTypes, it.value)
		}
	case "incomplete":
		if s, ok := r.enum(f.path, f.value, incompleteNames); ok {
			ru.Incomplete = s
		}
	case "unsearched":
		if s, ok := r.enum(f.path, f.value, unsearchedNames); ok {
			ru.Unsearched = s
		}
	default:
		r.add(f.path, f.keyN, "unknown field: secret rules take types, incomplete and unsearched (line %d)", f.keyN.Line)
	}
}

// checkSecretRule fills in the defaults of incomplete and unsearched.
func (r *reader) checkSecretRule(ru *rule) {
	if ru.Incomplete == "" {
		ru.Incomplete = IncompleteFail
	}
	if ru.Unsearched == "" {
		ru.Unsearched = UnsearchedIgnore
	}
}

// maxSecretsListed bounds how many secrets a finding names; maxUnsearchedListed how many
// unsearched files.
const (
	maxSecretsListed    = 5
	maxUnsearchedListed = 5
)

// secretVerdict is what a secret rule concluded.
type secretVerdict struct {
	outcome      Outcome
	finding, fix string
	// couldNotCheck, with OutcomeFail: the rule failed only because layers could not be
	// searched in full (Result.CouldNotCheck).
	couldNotCheck string
	// warnOnly: unsearched files are all that fails the rule (unsearched: warn).
	warnOnly bool
}

// evaluateSecret checks the image evidence against a secret rule. An image whose layers
// could not all be searched never passes unless the rule says incomplete: pass.
func (ru *rule) evaluateSecret(in Input) secretVerdict {
	ev := in.Image
	switch {
	case ev == nil:
		return secretVerdict{outcome: OutcomeFail, finding: "the image was not searched for secrets (the gateway gathered no image evidence)",
			fix: "this is not a problem with the image: tell the platform team that secret checks did not run"}
	case ev.Index:
		return secretVerdict{outcome: OutcomePass, finding: "an image index: its platform manifests are checked on their own"}
	case len(ev.Mismatched) > 0:
		finding, fix := mismatchVerdict(ev.Mismatched)
		return secretVerdict{outcome: OutcomeFail, finding: finding, fix: fix}
	}
	var found []string
	inLayers, inConfig := false, false
	for _, s := range ev.Secrets {
		if len(ru.SecretTypes) > 0 && !oneOf(s.Type, ru.SecretTypes) {
			continue
		}
		d := s.Type + " in " + s.Where()
		if s.Excerpt != "" {
			d += " (" + s.Excerpt + ")"
		}
		found = append(found, d)
		if s.Layer != "" {
			inLayers = true
		} else {
			inConfig = true
		}
	}
	if len(found) > 0 {
		return secretsFound(found, inLayers, inConfig)
	}
	where := "the image configuration and layers"
	if !ev.LayersScanned {
		return secretVerdict{outcome: OutcomePass, finding: "no secrets in the image configuration (Env, labels, build history; layer files are not searched yet)"}
	}
	var notes []string
	if ev.LayersIncomplete != "" {
		if ru.Incomplete != IncompletePass {
			why := "not every layer could be searched: " + ev.LayersIncomplete
			return secretVerdict{outcome: OutcomeFail, couldNotCheck: why,
				finding: "no secrets in what was searched, but " + why + "; the rest may hold some",
				fix:     "this is not necessarily a problem with the image: tell the platform team the layers could not be searched in full, or ask for an exception"}
		}
		notes = append(notes, "not every layer file was searched: "+ev.LayersIncomplete)
	}
	if n := len(ev.Unsearched) + ev.UnsearchedOmitted; n > 0 {
		list := unsearchedList(ev)
		switch ru.Unsearched {
		case UnsearchedFail, UnsearchedWarn:
			return secretVerdict{outcome: OutcomeFail, warnOnly: ru.Unsearched == UnsearchedWarn,
				finding: fmt.Sprintf("no secrets in what was searched, but %d layer file(s) were not searched in full: %s", n, list),
				fix:     "the policy requires every file to be searched: leave such files out of the image (multi-stage builds), or ask for an exception"}
		}
		notes = append(notes, fmt.Sprintf("%d file(s) not searched in full: %s", n, list))
	}
	if len(notes) > 0 {
		return secretVerdict{outcome: OutcomePass, finding: "no secrets in what was searched of " + where + ", but the image is not known to be clean (" + strings.Join(notes, "; ") + ")"}
	}
	return secretVerdict{outcome: OutcomePass, finding: "no secrets in " + where}
}

// unsearchedList names the first unsearched files of ev.
func unsearchedList(ev *ImageEvidence) string {
	var names []string
	for i, u := range ev.Unsearched {
		if i == maxUnsearchedListed {
			break
		}
		names = append(names, u.String())
	}
	if more := len(ev.Unsearched) + ev.UnsearchedOmitted - len(names); more > 0 {
		names = append(names, fmt.Sprintf("and %d more", more))
	}
	return strings.Join(names, "; ")
}

// secretsFound is the failure naming the secrets found.
func secretsFound(found []string, inLayers, inConfig bool) secretVerdict {
	n := len(found)
	if n > maxSecretsListed {
		found = append(found[:maxSecretsListed], fmt.Sprintf("and %d more", n-maxSecretsListed))
	}
	var fix []string
	if inLayers {
		fix = append(fix, "remove the file in the Dockerfile stage that adds it and rotate the credential; "+
			"deleting it in a later layer does not remove it from the image (use a build secret, RUN --mount=type=secret, for what a build needs)")
	}
	if inConfig {
		fix = append(fix, "remove secrets from the image configuration (ENV and build arguments end up in it), rotate them, and pass secrets at run time instead")
	}
	return secretVerdict{outcome: OutcomeFail, finding: fmt.Sprintf("%d secret(s): %s", n, strings.Join(found, "; ")), fix: strings.Join(fix, "; ")}
}

// secretChecks describes what a secret rule checks.
func (ru *rule) secretChecks() string {
	s := "no secrets of any type"
	if len(ru.SecretTypes) > 0 {
		s = "no secrets of types [" + strings.Join(ru.SecretTypes, ", ") + "]"
	}
	s += " in the configuration and layer files; layers not searched in full " +
		map[string]string{IncompleteFail: "fail", IncompletePass: "pass on what was searched"}[ru.Incomplete]
	s += "; files not searched in full " + map[string]string{UnsearchedIgnore: "are noted", UnsearchedWarn: "warn", UnsearchedFail: "fail"}[ru.Unsearched]
	return s
}
