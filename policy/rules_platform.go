package policy

import (
	"fmt"
	"strings"
)

// readPlatforms reads an environment's platforms: the os/arch[/variant] its nodes run.
func (r *reader) readPlatforms(e *environment, f field) {
	r.notEmpty(f)
	for _, it := range r.strList(f.path, f.value) {
		p, err := ParsePlatform(it.value)
		if err != nil {
			r.add(it.path, it.node, "%v", err)
			continue
		}
		e.Platforms = append(e.Platforms, it.value)
		e.platforms = append(e.platforms, p)
	}
}

// checkPlatformRule reports a platform rule that would judge nothing: one naming an
// environment that declares no platforms, or one applying everywhere when no environment
// declares any. It records which environments the rule judges (ru.platformEnvs).
func (r *reader) checkPlatformRule(ru *rule, envs []environment) {
	ru.platformEnvs = map[string]bool{}
	declared := map[string]bool{}
	for _, e := range envs {
		if len(e.platforms) > 0 {
			declared[e.Name] = true
		}
	}
	for _, it := range ru.envItems {
		known := it.value == DefaultEnvironment
		for _, e := range envs {
			known = known || e.Name == it.value
		}
		if known && !declared[it.value] {
			r.add(it.path, it.node, "environment %q declares no platforms: add platforms: [os/arch[/variant], ...] to it (the platforms its nodes run)", it.value)
		}
	}
	if len(ru.envItems) == 0 && len(declared) == 0 {
		r.add(ru.path, nil, "a platform rule judges images against the platforms an environment's nodes run, and no environment declares platforms: add platforms: [linux/amd64] (for example) to the environments it concerns")
	}
	for name := range declared {
		ru.platformEnvs[name] = true
	}
}

// platformsOf returns the platforms the named environment declares.
func (p *Policy) platformsOf(env string) []Platform {
	for i := range p.envs {
		if p.envs[i].Name == env {
			return p.envs[i].platforms
		}
	}
	return nil
}

// PlatformDeferred reports whether platform rules leave a manifest to be judged later: an
// image manifest pushed by digest is a platform manifest of an index to come (clients
// push those before the index), judged through the index that names it and on its own
// when it is pulled. The gate gathers no platform evidence for it.
func PlatformDeferred(a Action, tag string, k Kind) bool {
	return a == ActionPush && tag == "" && k != KindIndex
}

// evaluatePlatform checks the platform evidence against the platforms the environment's
// nodes run.
func (ru *rule) evaluatePlatform(in Input, env string, nodes []Platform) (Outcome, string, string) {
	want := platformList(nodes)
	ev := in.Platform
	if ev == nil {
		return OutcomeFail, "the platforms of the image were not examined (the gateway gathered no platform evidence)",
			"this is not a problem with the image: tell the platform team that platform checks did not run"
	}
	build := fmt.Sprintf("build for %s and push again, e.g. docker buildx build --platform %s --push",
		nodes[0], strings.Join(platformNames(nodes), ","))
	if ev.Index {
		uncounted := ""
		if ev.Uncounted != "" {
			uncounted = " (not counted: " + ev.Uncounted + ")"
		}
		if len(ev.Platforms) == 0 {
			return OutcomeFail, fmt.Sprintf("the index names no platform that counts among its %d entries%s; environment %s's nodes run %s", ev.Entries, uncounted, env, want),
				"push an index whose image entries carry their platform: " + build
		}
		for _, p := range ev.Platforms {
			if runsAny(nodes, p) {
				return OutcomePass, fmt.Sprintf("the index has %s, which environment %s's nodes (%s) run", p, env, want), ""
			}
		}
		return OutcomeFail, fmt.Sprintf("the index has %s%s; environment %s's nodes run %s, which none of them is for", platformList(ev.Platforms), uncounted, env, want),
			"add an image for the nodes' platform to the index: " + build
	}
	if len(ev.Platforms) == 0 {
		return OutcomeFail, fmt.Sprintf("the image configuration names no valid platform (os and architecture); environment %s's nodes run %s", env, want),
			"build the image with a standard builder, which records its platform: " + build
	}
	p := ev.Platforms[0]
	if runsAny(nodes, p) {
		return OutcomePass, fmt.Sprintf("the image is for %s, which environment %s's nodes (%s) run", p, env, want), ""
	}
	return OutcomeFail, fmt.Sprintf("the image is for %s (its configuration says so); environment %s's nodes run %s", p, env, want),
		"build it for the nodes' platform, or push an index that has it: " + build
}

// platformNames are the platforms as os/arch[/variant] strings.
func platformNames(ps []Platform) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}
