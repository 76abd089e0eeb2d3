package mirror

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

var (
	hostPattern   = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*(:[0-9]{1,5})?$`)
	tagPattern    = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,127}$`)
	sha256Hex     = regexp.MustCompile(`^[a-f0-9]{64}$`)
	digestPattern = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)
	pathPattern   = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
)

// maxRegexLen bounds a tag regular expression; RE2 runs in linear time, this only keeps
// the file readable.
const maxRegexLen = 1024

// Validate reports every problem of the file with its field path.
func (f *File) Validate() error {
	var p problems
	if f.Version != 1 {
		p.add("version", "want 1, got %d", f.Version)
	}
	if f.Target.Prefix != "" && f.Target.Prefix != "-" && !pathPattern.MatchString(f.Target.Prefix) {
		p.add("target.prefix", "invalid repository path %q (lowercase letters, digits, separators . _ - and /)", f.Target.Prefix)
	}
	if len(f.Sources) == 0 {
		p.add("sources", "required: at least one source registry")
	}
	mapped := map[string]string{}
	for i, s := range f.Sources {
		sp := fmt.Sprintf("sources[%d]", i)
		switch {
		case s.Registry == "":
			p.add(sp+".registry", "required (e.g. docker.io)")
		case !hostPattern.MatchString(s.Registry):
			p.add(sp+".registry", "invalid registry host %q (want host[:port], no scheme or path)", s.Registry)
		}
		if s.Prefix != "" && s.Prefix != "-" && !pathPattern.MatchString(s.Prefix) {
			p.add(sp+".prefix", "invalid repository path %q", s.Prefix)
		}
		validatePlatforms(&p, sp+".platforms", s.Platforms)
		validateAuthorities(&p, sp+".authorities", s.Authorities, "empty: list the publisher's keys, or remove the field to collect without publisher verification")
		if len(s.Repositories) == 0 {
			p.add(sp+".repositories", "required: at least one repository")
		}
		for j, r := range s.Repositories {
			rp := fmt.Sprintf("%s.repositories[%d]", sp, j)
			r.validate(&p, rp)
			if s.Registry == "" || !hostPattern.MatchString(s.Registry) || !pathPattern.MatchString(r.Name) {
				continue
			}
			m := f.MappedName(s, r)
			if !pathPattern.MatchString(m) || len(m) > 255 {
				p.add(rp+".as", "mapped name %q is not a valid repository name", m)
			} else if prev, dup := mapped[m]; dup {
				p.add(rp, "maps onto %s, as %s already does", m, prev)
			} else {
				mapped[m] = rp
			}
		}
	}
	return p.err()
}

func (r Repository) validate(p *problems, rp string) {
	switch {
	case r.Name == "":
		p.add(rp+".name", "required (e.g. library/nginx)")
	case !pathPattern.MatchString(r.Name):
		p.add(rp+".name", "invalid repository path %q (lowercase letters, digits, separators . _ - and /)", r.Name)
	}
	if r.As != "" && !pathPattern.MatchString(r.As) {
		p.add(rp+".as", "invalid repository path %q", r.As)
	}
	if len(r.Tags) == 0 && len(r.Digests) == 0 && len(r.TagRegex) == 0 && r.Semver == "" {
		p.add(rp, "selects nothing: give tags, digests, tagRegex or semver")
	}
	for k, t := range r.Tags {
		if !tagPattern.MatchString(t) {
			p.add(fmt.Sprintf("%s.tags[%d]", rp, k), "invalid tag %q", t)
		}
	}
	for k, d := range r.Digests {
		if !digestPattern.MatchString(d) {
			p.add(fmt.Sprintf("%s.digests[%d]", rp, k), "invalid digest %q (want sha256:<64 lowercase hex>)", d)
		}
	}
	for k, x := range r.TagRegex {
		path := fmt.Sprintf("%s.tagRegex[%d]", rp, k)
		if len(x) > maxRegexLen {
			p.add(path, "longer than %d characters", maxRegexLen)
			continue
		}
		if _, err := regexp.Compile(x); err != nil {
			p.add(path, "invalid regular expression: %v", err)
		}
	}
	if r.Semver != "" {
		if _, err := semver.NewConstraint(r.Semver); err != nil {
			p.add(rp+".semver", "invalid range: %v", err)
		}
	}
	validatePlatforms(p, rp+".platforms", r.Platforms)
	validateAuthorities(p, rp+".authorities", r.Authorities, "empty: list this repository's publisher keys, or remove the field to use the source's")
}

func validatePlatforms(p *problems, path string, ps []string) {
	for k, s := range ps {
		if _, err := parsePlatform(s); err != nil {
			p.add(fmt.Sprintf("%s[%d]", path, k), "%v", err)
		}
	}
}

// parsePlatform reads os/arch[/variant].
func parsePlatform(s string) (v1.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return v1.Platform{}, fmt.Errorf("invalid platform %q (want os/arch or os/arch/variant, e.g. linux/arm64/v8)", s)
	}
	for _, x := range parts {
		if !regexp.MustCompile(`^[a-z0-9_.-]+$`).MatchString(x) {
			return v1.Platform{}, fmt.Errorf("invalid platform %q (want os/arch or os/arch/variant, e.g. linux/arm64/v8)", s)
		}
	}
	pl := v1.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		pl.Variant = parts[2]
	}
	return pl, nil
}

// MappedName is the on-prem repository name of r of source s: r.As if set, else
// prefix/registry/name, with docker.io's single-component names under library/ and a
// registry's port joined with "_" (registry.local:5000 → registry.local_5000), since a
// repository name cannot hold ":".
func (f *File) MappedName(s Source, r Repository) string {
	if r.As != "" {
		return r.As
	}
	return f.MappedRegistry(s) + "/" + sourcePath(s, r)
}

// MappedRegistry is the on-prem namespace every repository of source s maps under unless
// it sets As: prefix/registry, with the port joined with "_" (mirror/docker.io,
// mirror/registry.local_5000, or registry.local_5000 with prefix "-"). Clients of the
// mirror are pointed there (clientconfig).
func (f *File) MappedRegistry(s Source) string {
	prefix := f.Target.Prefix
	if s.Prefix != "" {
		prefix = s.Prefix
	}
	if prefix == "" {
		prefix = DefaultPrefix
	}
	reg := strings.ReplaceAll(strings.ToLower(s.Registry), ":", "_")
	if prefix == "-" {
		return reg
	}
	return prefix + "/" + reg
}

// SourcePath is r's path in source s as clients name it after normalisation: docker.io's
// single-component names are under library/ (nginx → library/nginx).
func SourcePath(s Source, r Repository) string { return sourcePath(s, r) }

// IsDockerHub reports whether host is one of Docker Hub's names (docker.io, index.docker.io,
// registry-1.docker.io), which clients all know as docker.io.
func IsDockerHub(host string) bool { return isDockerHub(host) }

// sourcePath is r's path in its registry, with docker.io's official images under library/.
func sourcePath(s Source, r Repository) string {
	if isDockerHub(s.Registry) && !strings.Contains(r.Name, "/") {
		return "library/" + r.Name
	}
	return r.Name
}

func isDockerHub(host string) bool {
	switch strings.ToLower(host) {
	case "docker.io", "index.docker.io", "registry-1.docker.io":
		return true
	}
	return false
}

// SourceRepository is the go-containerregistry repository of r in source s.
func SourceRepository(s Source, r Repository) (name.Repository, error) {
	opts := []name.Option{name.StrictValidation}
	if s.Insecure {
		opts = append(opts, name.Insecure)
	}
	return name.NewRepository(s.Registry+"/"+sourcePath(s, r), opts...)
}

// referrersOn says whether r carries referrers: its own setting, else its source's, else yes.
func referrersOn(s Source, r Repository) bool {
	if r.Referrers != nil {
		return *r.Referrers
	}
	if s.Referrers != nil {
		return *s.Referrers
	}
	return true
}

// platformsOf is r's platform list, else its source's; empty means all.
func platformsOf(s Source, r Repository) []string {
	if len(r.Platforms) > 0 {
		return r.Platforms
	}
	return s.Platforms
}
