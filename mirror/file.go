package mirror

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxFileBytes bounds a mirror file: a list of repositories is a few kilobytes.
const MaxFileBytes = 1 << 20

// DefaultPrefix is the first path component of every mapped name unless a source or the
// target says otherwise: docker.io/library/nginx becomes mirror/docker.io/library/nginx.
const DefaultPrefix = "mirror"

// File is a mirror file: what to carry across the gap and where it lands on-prem.
type File struct {
	// Version is the format version; 1 is the only one.
	Version int `yaml:"version"`
	// Target says how source names map onto the on-prem registry.
	Target Target `yaml:"target"`
	// Sources are the registries to collect from.
	Sources []Source `yaml:"sources"`
}

// Target is the naming on the on-prem side.
type Target struct {
	// Prefix is put before <registry>/<repository>; "" means DefaultPrefix. Set it to "-"
	// to map names onto <registry>/<repository> with no prefix.
	Prefix string `yaml:"prefix"`
}

// Source is one registry to collect from.
type Source struct {
	// Registry is the host[:port] of the source registry, e.g. docker.io or ghcr.io.
	Registry string `yaml:"registry"`
	// Insecure reaches the registry over plain HTTP.
	Insecure bool `yaml:"insecure"`
	// Prefix overrides Target.Prefix for this source.
	Prefix string `yaml:"prefix"`
	// Platforms are the default platforms of this source's repositories.
	Platforms []string `yaml:"platforms"`
	// Referrers is the default for this source's repositories; nil means yes.
	Referrers *bool `yaml:"referrers"`
	// Authorities are the publisher's signing keys: when given, collect verifies every
	// pinned image of this source (an index by its own digest, as cosign signs it) and
	// carries only images a signature by one of them verifies.
	Authorities Authorities `yaml:"authorities"`
	// Repositories are what to collect.
	Repositories []Repository `yaml:"repositories"`
}

// Repository is one repository of a source and which of its images to carry.
type Repository struct {
	// Name is the repository path in the source registry, e.g. library/nginx.
	Name string `yaml:"name"`
	// As is the full on-prem name, overriding the prefix mapping.
	As string `yaml:"as"`
	// Tags are tags to carry; each must exist.
	Tags []string `yaml:"tags"`
	// Digests are manifests to carry by digest (no tag is published for them).
	Digests []string `yaml:"digests"`
	// TagRegex selects every listed tag one of these regular expressions matches
	// (Go RE2 syntax, unanchored unless written with ^ and $).
	TagRegex []string `yaml:"tagRegex"`
	// Semver selects every listed tag that is a semantic version within this range,
	// e.g. ">=1.26, <1.28" or "~1.27".
	Semver string `yaml:"semver"`
	// Platforms restricts the children of an index to these os/arch[/variant]
	// platforms; empty means all.
	Platforms []string `yaml:"platforms"`
	// Referrers carries signatures, attestations and SBOMs (cosign tags and OCI
	// referrers); nil means the source's setting, which defaults to yes.
	Referrers *bool `yaml:"referrers"`
	// Authorities, when given, replace the source's publisher authorities for this
	// repository.
	Authorities Authorities `yaml:"authorities"`
}

// ParseOptions are the optional inputs of ParseFileWith.
type ParseOptions struct {
	// ReadFile reads the keyFile of a publisher authority, given its name as written; the
	// loader decides what it is relative to (portcullis: the mirror file's directory).
	// When nil, a keyFile is a problem.
	ReadFile func(name string) ([]byte, error)
}

// ParseFile reads a mirror file strictly (unknown fields are errors) and validates it. A
// file that is not valid returns a *ValidationError listing every problem. It reads no
// other file: a publisher authority with a keyFile is a problem (see ParseFileWith).
func ParseFile(r io.Reader) (*File, error) { return ParseFileWith(r, ParseOptions{}) }

// ParseFileWith is ParseFile with options: o.ReadFile reads the key files publisher
// authorities name.
func ParseFileWith(r io.Reader, o ParseOptions) (*File, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading mirror file: %w", err)
	}
	if len(data) > MaxFileBytes {
		return nil, &ValidationError{Problems: []Problem{{Message: fmt.Sprintf("mirror file is larger than %d bytes", MaxFileBytes)}}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f File
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &ValidationError{Problems: []Problem{{Message: "mirror file is empty"}}}
		}
		return nil, &ValidationError{Problems: yamlProblems(err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &ValidationError{Problems: []Problem{{Message: "mirror file holds more than one YAML document"}}}
	}
	var p problems
	f.readAuthorities(&p, o)
	if err := f.Validate(); err != nil {
		var ve *ValidationError
		if !errors.As(err, &ve) {
			return nil, err
		}
		p = append(append(problems(nil), ve.Problems...), p...)
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return &f, nil
}

// yamlProblems turns a decoding error into problems, one per line yaml reports.
func yamlProblems(err error) []Problem {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		out := make([]Problem, len(te.Errors))
		for i, e := range te.Errors {
			out[i] = Problem{Message: strings.TrimPrefix(e, "yaml: ")}
		}
		return out
	}
	return []Problem{{Message: strings.TrimPrefix(err.Error(), "yaml: ")}}
}

// Problem is one thing wrong with a mirror file.
type Problem struct {
	// Path locates the problem, e.g. "sources[0].repositories[2].semver"; empty for the
	// document as a whole.
	Path string `json:"path"`
	// Message says what is wrong.
	Message string `json:"message"`
}

// String formats the problem as "path: message".
func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// ValidationError lists every problem of a mirror file.
type ValidationError struct {
	// Problems are the problems found, in field order.
	Problems []Problem
}

// Error lists the problems one per line.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// problems collects Problems during validation.
type problems []Problem

func (p *problems) add(path, format string, args ...any) {
	*p = append(*p, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return &ValidationError{Problems: append([]Problem(nil), p...)}
}
