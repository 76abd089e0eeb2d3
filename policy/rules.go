package policy

import (
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// commonRuleKeys are the fields every rule type accepts.
var commonRuleKeys = []string{
	"id", "type", "description", "mode", "enforceFrom", "observeUntil",
	"environments", "repositories", "actions", "exceptionProcess",
}

// nameRE is what an environment name or rule id may look like.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// checkName reports an environment name or rule id that is not a plain name.
func (r *reader) checkName(path string, n *yaml.Node, s string) {
	if !nameRE.MatchString(s) {
		r.add(path, n, "invalid name %q (want up to 63 letters, digits, '.', '_' or '-', starting with a letter or digit)", s)
	}
}

// readRule reads rules[i]. ok is false when n is not a mapping.
func (r *reader) readRule(path string, n *yaml.Node) (ru rule, ok bool) {
	fields, ok := r.mapping(path, n)
	if !ok {
		return ru, false
	}
	ru.path = path
	ru.fields = map[string]field{}
	for _, f := range fields {
		ru.fields[f.key] = f
	}
	if f, ok := ru.fields["type"]; ok {
		if t, ok := r.str(f.path, f.value); ok {
			ru.Type = t
			if !oneOf(t, typeNames) {
				r.add(f.path, f.value, "unknown rule type %q (want %s)", t, strings.Join(typeNames, ", "))
			}
		}
	}
	for _, f := range fields {
		if oneOf(f.key, commonRuleKeys) {
			r.readCommon(&ru, f)
			continue
		}
		switch ru.Type {
		case TypeTag:
			r.readTagParam(&ru, f)
		case TypeSignature:
			r.readSignatureParam(&ru, f)
		case TypeConfig:
			r.readConfigParam(&ru, f)
		case TypeSecret:
			r.readSecretParam(&ru, f)
		case TypeVulnerability:
			r.readVulnerabilityParam(&ru, f)
		case TypeImmutable:
			r.add(f.path, f.keyN, "unknown field: immutable rules take no parameters (line %d)", f.keyN.Line)
		case TypePlatform:
			r.add(f.path, f.keyN, "unknown field: platform rules take no parameters; the platforms are the environment's (environments[].platforms) (line %d)", f.keyN.Line)
		case "":
			r.unknown(f)
		}
	}
	for _, key := range []string{"id", "type", "mode"} {
		if f, ok := ru.fields[key]; !ok {
			r.add(path+"."+key, n, "required%s", wantList(key))
		} else if isNull(r.resolve(f.value)) {
			r.add(f.path, f.value, "required%s", wantList(key))
		}
	}
	r.checkDates(&ru)
	switch ru.Type {
	case TypeTag:
		r.checkTagRule(&ru, n)
	case TypeSignature:
		r.checkSignatureRule(&ru)
	case TypeConfig:
		r.checkConfigRule(&ru)
	case TypeVulnerability:
		r.checkVulnerabilityRule(&ru)
	case TypeSecret:
		r.checkSecretRule(&ru)
	}
	return ru, true
}

// wantList is the list of accepted values appended to a "required" message.
func wantList(key string) string {
	switch key {
	case "type":
		return " (want " + strings.Join(typeNames, ", ") + ")"
	case "mode":
		return " (want " + strings.Join(modeNames, ", ") + ")"
	}
	return ""
}

// readCommon reads one of commonRuleKeys.
func (r *reader) readCommon(ru *rule, f field) {
	switch f.key {
	case "id":
		if s, ok := r.str(f.path, f.value); ok {
			ru.ID = s
			r.checkName(f.path, f.value, s)
		}
	case "type":
		// read first, by readRule
	case "description":
		ru.Description, _ = r.str(f.path, f.value)
	case "exceptionProcess":
		ru.ExceptionProcess, _ = r.str(f.path, f.value)
	case "mode":
		if s, ok := r.str(f.path, f.value); ok {
			if !oneOf(s, modeNames) {
				r.add(f.path, f.value, "unknown mode %q (want %s)", s, strings.Join(modeNames, ", "))
			}
			ru.Mode = Mode(s)
		}
	case "enforceFrom":
		ru.EnforceFrom = r.date(f.path, f.value)
	case "observeUntil":
		ru.ObserveUntil = r.date(f.path, f.value)
	case "environments":
		r.notEmpty(f)
		for _, it := range r.strList(f.path, f.value) {
			ru.Environments = append(ru.Environments, it.value)
			ru.envItems = append(ru.envItems, it)
		}
	case "repositories":
		r.notEmpty(f)
		for _, it := range r.strList(f.path, f.value) {
			if err := ValidGlob(it.value); err != nil {
				r.add(it.path, it.node, "%v", err)
				continue
			}
			ru.Repositories = append(ru.Repositories, it.value)
			ru.repos = append(ru.repos, compileGlob(it.value))
		}
	case "actions":
		r.notEmpty(f)
		for _, it := range r.strList(f.path, f.value) {
			if !oneOf(it.value, actionNames) {
				r.add(it.path, it.node, "unknown action %q (want %s)", it.value, strings.Join(actionNames, ", "))
				continue
			}
			ru.Actions = append(ru.Actions, Action(it.value))
		}
	}
}

// checkDates reports dates that contradict each other or the mode.
func (r *reader) checkDates(ru *rule) {
	eff, obs := ru.fields["enforceFrom"], ru.fields["observeUntil"]
	if !ru.EnforceFrom.IsZero() && ru.Mode != ModeBlock && oneOf(string(ru.Mode), modeNames) {
		r.add(eff.path, eff.value, "only meaningful with mode block (mode is %s)", ru.Mode)
	}
	if !ru.ObserveUntil.IsZero() && (ru.Mode == ModeOff || ru.Mode == ModeObserve) {
		r.add(obs.path, obs.value, "has no effect with mode %s", ru.Mode)
	}
	if !ru.EnforceFrom.IsZero() && !ru.ObserveUntil.IsZero() && !ru.ObserveUntil.Before(ru.EnforceFrom) {
		r.add(obs.path, obs.value, "must be before enforceFrom (%s is not before %s)",
			ru.ObserveUntil.Format(dateLayout), ru.EnforceFrom.Format(dateLayout))
	}
}
