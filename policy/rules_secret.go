package policy

import (
	"fmt"
	"strings"
)

// readSecretParam reads a parameter of a secret rule.
func (r *reader) readSecretParam(ru *rule, f field) {
	switch f.key {
	case "types":
		r.notEmpty(f)
		for _, it := range r.strList(f.path, f.value) {
			ru.SecretTypes = append(ru.SecretTypes, it.value)
		}
	default:
		r.add(f.path, f.keyN, "unknown field: secret rules take types (line %d)", f.keyN.Line)
	}
}

// maxSecretsListed bounds how many secrets a finding names.
const maxSecretsListed = 5

// evaluateSecret checks the image evidence against a secret rule.
func (ru *rule) evaluateSecret(in Input) (Outcome, string, string) {
	ev := in.Image
	switch {
	case ev == nil:
		return OutcomeFail, "the image was not searched for secrets (the gateway gathered no image evidence)",
			"this is not a problem with the image: tell the platform team that secret checks did not run"
	case ev.Index:
		return OutcomePass, "an image index: its platform manifests are checked on their own", ""
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
	if len(found) == 0 {
		where := "the image configuration and layers"
		if !ev.LayersScanned {
			where = "the image configuration (Env, labels, build history; layer files are not searched yet)"
		} else if ev.LayersIncomplete != "" {
			where += " (not every layer file was searched: " + ev.LayersIncomplete + ")"
		}
		return OutcomePass, "no secrets in " + where, ""
	}
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
	return OutcomeFail, fmt.Sprintf("%d secret(s): %s", n, strings.Join(found, "; ")), strings.Join(fix, "; ")
}
