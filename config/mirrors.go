package config

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Mirror is one public registry the gateway mirrors on demand (pull-through): a pull of a
// name under its prefix that the upstream lacks is fetched from the source, judged, then
// served.
type Mirror struct {
	// Registry is the source's name as clients know it (docker.io, ghcr.io, quay.io) and as
	// containerd sends it in the ns query parameter.
	Registry string `yaml:"registry"`
	// Endpoint is where the source is reached, http(s)://host[:port]; empty means
	// https://<registry> (https://registry-1.docker.io for docker.io).
	Endpoint string `yaml:"endpoint"`
	// Prefix is the first part of the on-prem names: "" means "mirror"
	// (docker.io/library/nginx → mirror/docker.io/library/nginx); "-" means none.
	Prefix string `yaml:"prefix"`
	// Credentials authenticate the gateway to the source; empty means anonymous.
	Credentials MirrorCredentials `yaml:"credentials"`
	// Repositories are globs of the source's repositories that may be fetched
	// (library/*, bitnami/**); a repository no glob matches is never fetched.
	Repositories []string `yaml:"repositories,omitempty"`
	// RateLimit is the budget of requests the gateway sends to the source.
	RateLimit MirrorRateLimit `yaml:"rateLimit"`
	// Authorities name the policy's authorities (policy file, authorities[].name) whose
	// signatures vouch for this source's publishers; signature rules on the prefix use them.
	Authorities []string `yaml:"authorities,omitempty"`
	// TagFreshness is how long a fetched tag is served before the source is asked again
	// (with HEAD) whether it moved; default 10m.
	TagFreshness Duration `yaml:"tagFreshness"`
}

// MirrorCredentials is the gateway's identity at a source: a username and a password from
// a file or an environment variable.
type MirrorCredentials struct {
	// Username for basic auth (token auth exchanges it for a token).
	Username string `yaml:"username"`
	// UsernameEnv names an environment variable holding the username.
	UsernameEnv string `yaml:"usernameEnv"`
	// PasswordFile holds the password or access token (trailing newline trimmed).
	PasswordFile string `yaml:"passwordFile"`
	// PasswordEnv names an environment variable holding the password or access token.
	PasswordEnv string `yaml:"passwordEnv"`
}

// MirrorRateLimit is a source's request budget, counted per replica.
type MirrorRateLimit struct {
	// RequestsPerMinute bounds the requests sent to the source; 0 means unbounded.
	RequestsPerMinute int `yaml:"requestsPerMinute"`
	// MinRemainingPulls stops fetching (the judged copies are served) while the source's
	// ratelimit-remaining header (Docker Hub) reports fewer remaining pulls than this.
	MinRemainingPulls int `yaml:"minRemainingPulls"`
}

// DefaultTagFreshness is Mirror.TagFreshness when none is set.
const DefaultTagFreshness = Duration(10 * time.Minute)

// Freshness returns TagFreshness, or DefaultTagFreshness when it is zero.
func (m Mirror) Freshness() time.Duration {
	if m.TagFreshness == 0 {
		return DefaultTagFreshness.Std()
	}
	return m.TagFreshness.Std()
}

// SourceURL returns the base URL the source is reached at.
func (m Mirror) SourceURL() string {
	if m.Endpoint != "" {
		return strings.TrimSuffix(m.Endpoint, "/")
	}
	switch strings.ToLower(m.Registry) {
	case "docker.io", "index.docker.io", "registry-1.docker.io":
		return "https://registry-1.docker.io"
	}
	return "https://" + strings.ToLower(m.Registry)
}

var (
	mirrorHost   = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*(:[0-9]{1,5})?$`)
	mirrorPath   = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	mirrorGlob   = regexp.MustCompile(`^[a-z0-9*]+([._-]+[a-z0-9*]+)*[._-]*$`)
	envNameRegex = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// validateMirrors reports the mirrors section's problems.
func (c Config) validateMirrors(add func(path, format string, args ...any)) {
	seen := map[string]string{}
	for i, m := range c.Mirrors {
		p := fmt.Sprintf("mirrors[%d]", i)
		reg := strings.ToLower(m.Registry)
		switch {
		case m.Registry == "":
			add(p+".registry", "required (e.g. docker.io)")
		case !mirrorHost.MatchString(m.Registry):
			add(p+".registry", "invalid registry host %q (want host[:port], no scheme or path)", m.Registry)
		default:
			if reg == "index.docker.io" || reg == "registry-1.docker.io" {
				reg = "docker.io"
			}
			if prev, dup := seen[reg]; dup {
				add(p+".registry", "%s is mirrored by %s already", m.Registry, prev)
			}
			seen[reg] = p
		}
		if m.Endpoint != "" {
			u, err := url.Parse(m.Endpoint)
			switch {
			case err != nil:
				add(p+".endpoint", "not a URL: %v", err)
			case u.Scheme != "http" && u.Scheme != "https":
				add(p+".endpoint", "scheme must be http or https, got %q", u.Scheme)
			case u.Host == "":
				add(p+".endpoint", "missing host")
			case u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/"):
				add(p+".endpoint", "want scheme://host[:port] only (credentials go in credentials)")
			}
		}
		if m.Prefix != "" && m.Prefix != "-" && !mirrorPath.MatchString(m.Prefix) {
			add(p+".prefix", "invalid repository path %q (lowercase letters, digits, separators . _ - and /)", m.Prefix)
		}
		cr := m.Credentials
		if cr.Username != "" && cr.UsernameEnv != "" {
			add(p+".credentials", "set username or usernameEnv, not both")
		}
		if cr.PasswordFile != "" && cr.PasswordEnv != "" {
			add(p+".credentials", "set passwordFile or passwordEnv, not both")
		}
		if (cr.PasswordFile != "" || cr.PasswordEnv != "") && cr.Username == "" && cr.UsernameEnv == "" {
			add(p+".credentials.username", "required with a password")
		}
		if (cr.Username != "" || cr.UsernameEnv != "") && cr.PasswordFile == "" && cr.PasswordEnv == "" {
			add(p+".credentials", "a username needs passwordFile or passwordEnv (passwords are never written in the config)")
		}
		for _, f := range []struct{ name, v string }{{"usernameEnv", cr.UsernameEnv}, {"passwordEnv", cr.PasswordEnv}} {
			if f.v != "" && !envNameRegex.MatchString(f.v) {
				add(p+".credentials."+f.name, "invalid environment variable name %q", f.v)
			}
		}
		if len(m.Repositories) == 0 {
			add(p+".repositories", "required: globs of the repositories that may be fetched (e.g. library/*)")
		}
		for j, g := range m.Repositories {
			if msg := mirrorGlobProblem(g); msg != "" {
				add(fmt.Sprintf("%s.repositories[%d]", p, j), "%s", msg)
			}
		}
		if m.RateLimit.RequestsPerMinute < 0 {
			add(p+".rateLimit.requestsPerMinute", "must not be negative (0: unbounded), got %d", m.RateLimit.RequestsPerMinute)
		}
		if m.RateLimit.MinRemainingPulls < 0 {
			add(p+".rateLimit.minRemainingPulls", "must not be negative, got %d", m.RateLimit.MinRemainingPulls)
		}
		for j, a := range m.Authorities {
			if strings.TrimSpace(a) == "" || a != strings.TrimSpace(a) {
				add(fmt.Sprintf("%s.authorities[%d]", p, j), "want the name of an authority of the policy, got %q", a)
			}
		}
		if m.TagFreshness < 0 {
			add(p+".tagFreshness", "must not be negative (0: the default, 10m)")
		}
	}
}

// mirrorGlobProblem says what is wrong with a repository glob, or "".
func mirrorGlobProblem(g string) string {
	if g == "" {
		return "empty glob"
	}
	if strings.HasPrefix(g, "/") || strings.HasSuffix(g, "/") {
		return fmt.Sprintf("invalid glob %q: must not start or end with '/'", g)
	}
	for _, seg := range strings.Split(g, "/") {
		switch {
		case seg == "**":
		case seg == "":
			return fmt.Sprintf("invalid glob %q: empty path segment", g)
		case strings.Contains(seg, "**"):
			return fmt.Sprintf("invalid glob %q: \"**\" must be a whole path segment", g)
		case !mirrorGlob.MatchString(seg):
			return fmt.Sprintf("invalid glob %q: segment %q (lowercase letters, digits, . _ - and *)", g, seg)
		}
	}
	return ""
}
