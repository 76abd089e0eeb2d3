package policy

import (
	"fmt"
	"sort"
	"strings"
)

// The checks a config rule can make.
const (
	ConfigCheckRoot      = "root"
	ConfigCheckLabels    = "labels"
	ConfigCheckBaseImage = "base-image"
)

var configChecks = []string{ConfigCheckRoot, ConfigCheckLabels, ConfigCheckBaseImage}

// readConfigParam reads a parameter of a config rule.
func (r *reader) readConfigParam(ru *rule, f field) {
	switch f.key {
	case "check":
		if s, ok := r.str(f.path, f.value); ok {
			if !oneOf(s, configChecks) {
				r.add(f.path, f.value, "unknown check %q (want %s)", s, strings.Join(configChecks, ", "))
			}
			ru.Check = s
		}
	case "labels":
		r.notEmpty(f)
		for _, it := range r.strList(f.path, f.value) {
			ru.Labels = append(ru.Labels, it.value)
		}
	case "baseImages":
		r.notEmpty(f)
		for _, it := range r.strList(f.path, f.value) {
			if err := ValidGlob(it.value); err != nil {
				r.add(it.path, it.node, "invalid glob: %v", err)
				continue
			}
			ru.BaseImages = append(ru.BaseImages, it.value)
			ru.baseGlobs = append(ru.baseGlobs, compileGlob(it.value))
		}
	default:
		r.add(f.path, f.keyN, "unknown field: config rules take check, labels and baseImages (line %d)", f.keyN.Line)
	}
}

// checkConfigRule reports a config rule without a check or without the list its check needs.
func (r *reader) checkConfigRule(ru *rule) {
	path := ru.path + ".check"
	switch ru.Check {
	case "":
		if _, ok := ru.fields["check"]; !ok {
			r.add(path, nil, "required (want %s)", strings.Join(configChecks, ", "))
		}
	case ConfigCheckLabels:
		if len(ru.Labels) == 0 {
			r.add(ru.path+".labels", nil, "required by check %q", ru.Check)
		}
	case ConfigCheckBaseImage:
		if len(ru.BaseImages) == 0 {
			r.add(ru.path+".baseImages", nil, "required by check %q", ru.Check)
		}
	}
}

// evaluateConfig checks the image evidence against a config rule.
func (ru *rule) evaluateConfig(in Input) (Outcome, string, string) {
	ev := in.Image
	switch {
	case ev == nil:
		return OutcomeFail, "the image configuration was not examined (the gateway gathered no image evidence)",
			"this is not a problem with the image: tell the platform team that config checks did not run"
	case ev.Index:
		return OutcomePass, "an image index: its platform manifests are checked on their own", ""
	}
	switch ru.Check {
	case ConfigCheckRoot:
		if ev.RunsAsRoot {
			return OutcomeFail, "the image runs as root (" + ev.RootReason + ")",
				"add a non-root user to the Dockerfile, e.g. USER 65532:65532, and make what it needs readable by it"
		}
		return OutcomePass, fmt.Sprintf("runs as user %q", ev.User), ""
	case ConfigCheckLabels:
		var missing []string
		for _, l := range ru.Labels {
			if _, ok := ev.Labels[l]; !ok {
				missing = append(missing, l)
			}
		}
		if len(missing) > 0 {
			return OutcomeFail, "missing labels: " + strings.Join(missing, ", "),
				fmt.Sprintf("add them to the image, e.g. LABEL %s=... in the Dockerfile or --label at build time", missing[0])
		}
		return OutcomePass, "has the required labels " + strings.Join(ru.Labels, ", "), ""
	case ConfigCheckBaseImage:
		base := imageName(ev.BaseImage)
		if base == "" {
			return OutcomeFail, "the base image is unknown (no org.opencontainers.image.base.name annotation or label)",
				"build with BuildKit (docker buildx), which records the base image, or add the label org.opencontainers.image.base.name"
		}
		if anyGlob(ru.baseGlobs, base) {
			return OutcomePass, "base image " + base + " is allowed", ""
		}
		allowed := append([]string(nil), ru.BaseImages...)
		sort.Strings(allowed)
		return OutcomeFail, "base image " + base + " is not allowed here",
			"rebuild FROM an allowed base image: " + strings.Join(allowed, ", ")
	}
	return OutcomeInert, "unknown config check " + ru.Check, ""
}

// imageName strips the digest and tag from an image reference, keeping a registry port
// (host:5000/x:tag is host:5000/x).
func imageName(ref string) string {
	if at := strings.Index(ref, "@"); at >= 0 {
		ref = ref[:at]
	}
	if c := strings.LastIndex(ref, ":"); c > strings.LastIndex(ref, "/") {
		ref = ref[:c]
	}
	return ref
}
