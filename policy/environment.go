package policy

import (
	"net"
	"strings"
)

// Environment returns the name of the first environment that repo (a
// repository path such as "prod/app") and host (the Host the client used;
// a port is ignored) match, or DefaultEnvironment when none does. An
// environment matches when its repositories are empty or one matches repo,
// and its hosts are empty or one matches host.
func (p *Policy) Environment(repo, host string) string {
	if e := p.environment(repo, host); e != nil {
		return e.Name
	}
	return DefaultEnvironment
}

// FailMode returns FailClosed or FailOpen: the declared fail mode of the
// named environment, FailClosed for DefaultEnvironment and for names the
// policy does not declare.
func (p *Policy) FailMode(env string) string {
	for i := range p.envs {
		if p.envs[i].Name == env {
			return p.envs[i].FailMode
		}
	}
	return FailClosed
}

// Scanner returns who scans the named environment's images: ScannerBuiltin, ScannerBoth
// or an adapter name (see Environment.Scanner); ScannerBuiltin when the policy says nothing.
func (p *Policy) Scanner(env string) string {
	for i := range p.envs {
		if p.envs[i].Name == env && p.envs[i].Scanner != "" {
			return p.envs[i].Scanner
		}
	}
	return ScannerBuiltin
}

// UnscannedPull returns how the named environment answers the pull of an image not
// scanned yet (see Environment.Unscanned); nil when the policy leaves it to the gateway.
func (p *Policy) UnscannedPull(env string) *Unscanned {
	for i := range p.envs {
		if p.envs[i].Name == env && p.envs[i].Unscanned != nil {
			u := *p.envs[i].Unscanned
			return &u
		}
	}
	return nil
}

// environment returns the first matching environment or nil.
func (p *Policy) environment(repo, host string) *environment {
	h := normalizeHost(host)
	for i := range p.envs {
		if p.envs[i].matches(repo, h) {
			return &p.envs[i]
		}
	}
	return nil
}

// matches reports whether a repository and a normalised host select e.
func (e *environment) matches(repo, host string) bool {
	if len(e.repos) > 0 && !anyGlob(e.repos, repo) {
		return false
	}
	if len(e.hosts) == 0 {
		return true
	}
	for _, h := range e.hosts {
		if matchSegment(h, host) {
			return true
		}
	}
	return false
}

// anyGlob reports whether name matches one of globs.
func anyGlob(globs []glob, name string) bool {
	for _, g := range globs {
		if g.match(name) {
			return true
		}
	}
	return false
}

// normalizeHost drops the port, IPv6 brackets and a trailing dot from a
// Host header value and lower-cases it.
func normalizeHost(host string) string {
	host = strings.TrimSpace(host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimPrefix(host, "[")
	host = strings.TrimSuffix(host, "]")
	host = strings.TrimSuffix(host, ".")
	return strings.ToLower(host)
}
