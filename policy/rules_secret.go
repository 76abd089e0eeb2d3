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
	for _, s := range ev.Secrets {
		if len(ru.SecretTypes) > 0 && !oneOf(s.Type, ru.SecretTypes) {
			continue
		}
		d := s.Type + " in " + s.Location
		if s.Excerpt != "" {
			d += " (" + s.Excerpt + ")"
		}
		found = append(found, d)
	}
	if len(found) == 0 {
		where := "the image configuration and layers"
		if !ev.LayersScanned {
			where = "the image configuration (Env, labels, build history; layer files are not searched yet)"
		}
		return OutcomePass, "no secrets in " + where, ""
	}
	n := len(found)
	if n > maxSecretsListed {
		found = append(found[:maxSecretsListed], fmt.Sprintf("and %d more", n-maxSecretsListed))
	}
	return OutcomeFail, fmt.Sprintf("%d secret(s): %s", n, strings.Join(found, "; ")),
		"remove them from the image (ENV and build arguments end up in its configuration), rotate them, and pass secrets at run time instead"
}
