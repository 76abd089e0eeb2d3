package policy

import (
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// tagNameRE is the OCI distribution grammar for a tag.
var tagNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

// readTagParam reads a parameter of a tag rule.
func (r *reader) readTagParam(ru *rule, f field) {
	switch f.key {
	case "forbidden":
		r.notEmpty(f)
		for _, it := range r.strList(f.path, f.value) {
			if !tagNameRE.MatchString(it.value) {
				r.add(it.path, it.node, "%q is not a valid tag name", it.value)
				continue
			}
			if ru.forbidden == nil {
				ru.forbidden = map[string]bool{}
			}
			ru.Forbidden = append(ru.Forbidden, it.value)
			ru.forbidden[it.value] = true
		}
	case "allowed":
		r.notEmpty(f)
		for _, it := range r.strList(f.path, f.value) {
			re, err := regexp.Compile(it.value)
			if err != nil {
				r.add(it.path, it.node, "invalid regular expression: %v", err)
				continue
			}
			ru.Allowed = append(ru.Allowed, it.value)
			ru.allowed = append(ru.allowed, re)
		}
	case "requireDigest":
		ru.RequireDigest = r.boolean(f.path, f.value)
	default:
		r.add(f.path, f.keyN, "unknown field: tag rules take forbidden, allowed and requireDigest (line %d)", f.keyN.Line)
	}
}

// checkTagRule reports a tag rule that checks nothing or asks for digests
// on an action that has none.
func (r *reader) checkTagRule(ru *rule, n *yaml.Node) {
	_, hasF := ru.fields["forbidden"]
	_, hasA := ru.fields["allowed"]
	if !hasF && !hasA && !ru.RequireDigest {
		r.add(ru.path, n, "a tag rule needs forbidden, allowed or requireDigest")
	}
	if ru.RequireDigest && len(ru.Actions) > 0 && !ru.selectsAction(ActionPull) {
		f := ru.fields["requireDigest"]
		r.add(f.path, f.value, "only applies to pulls, but actions are [%s]", joinActions(ru.Actions))
	}
}

// joinActions formats actions for messages.
func joinActions(as []Action) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}

// evaluateTag checks the tag of a request against a tag rule.
func (ru *rule) evaluateTag(in Input, env string) (Outcome, string, string) {
	if in.Tag == "" {
		return OutcomePass, "reference is a digest; tag rules check tags only", ""
	}
	tag := in.Tag
	pullByDigest := "pull by digest: " + imageRef(in)
	if ru.forbidden[tag] {
		finding := fmt.Sprintf("tag %q is forbidden in environment %s", tag, env)
		if in.Action == ActionPull {
			return OutcomeFail, finding, "pull an immutable tag such as 1.4.2, or " + pullByDigest
		}
		return OutcomeFail, finding, "push an immutable tag such as 1.4.2 or 1.4.2-3f9c2ab instead"
	}
	matched := len(ru.allowed) == 0
	for _, re := range ru.allowed {
		if re.MatchString(tag) {
			matched = true
			break
		}
	}
	pullRule := in.Action == ActionPull && ru.RequireDigest
	switch {
	case !matched && pullRule:
		return OutcomeFail, fmt.Sprintf("tag %q does not match %s, and environment %s only serves such tags or digests", tag, patterns(ru.Allowed), env), pullByDigest
	case !matched:
		return OutcomeFail, fmt.Sprintf("tag %q does not match %s", tag, patterns(ru.Allowed)), "use a tag matching " + patterns(ru.Allowed) + ", such as 1.4.2"
	case pullRule && len(ru.allowed) == 0:
		return OutcomeFail, fmt.Sprintf("pulled by tag %q, but environment %s requires pulling by digest", tag, env), pullByDigest
	case len(ru.allowed) > 0:
		return OutcomePass, fmt.Sprintf("tag %q matches %s", tag, patterns(ru.Allowed)), ""
	}
	return OutcomePass, fmt.Sprintf("tag %q is not forbidden", tag), ""
}

// patterns formats the allowed patterns for messages.
func patterns(res []string) string {
	if len(res) == 1 {
		return "the allowed pattern " + res[0]
	}
	return "any allowed pattern (" + strings.Join(res, ", ") + ")"
}

// digestRef is repo@digest for the request, with a placeholder when the
// digest is not known.
func digestRef(in Input) string {
	d := in.Digest
	if d == "" {
		d = "sha256:<digest>"
	}
	return in.Repository + "@" + d
}
