package policy

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MatchGlob reports whether the repository path name matches pattern.
//
// Both are split on '/'. A pattern segment that is exactly "**" matches zero
// or more whole segments. In any other segment '*' matches any run of
// characters except '/', '?' matches exactly one character except '/', and
// every other character matches itself (case-sensitively). So "team/*"
// matches "team/app" but not "team/app/api", while "team/**" matches
// "team", "team/app" and "team/app/api".
//
// MatchGlob does not normalise name: a name with an empty segment (a
// leading, trailing or doubled '/') matches no pattern, and the empty name
// matches only patterns made of "**" segments. An invalid pattern (see
// ValidGlob) matches nothing.
func MatchGlob(pattern, name string) bool {
	if ValidGlob(pattern) != nil {
		return false
	}
	return compileGlob(pattern).match(name)
}

// ValidGlob returns an error describing why pattern is not a usable
// repository glob, or nil. A pattern must be non-empty valid UTF-8 without
// control characters or white space, must not start or end with '/' nor
// contain an empty segment, and may use "**" only as a whole segment.
func ValidGlob(pattern string) error {
	if pattern == "" {
		return fmt.Errorf("invalid glob %q: empty pattern", pattern)
	}
	if !utf8.ValidString(pattern) {
		return fmt.Errorf("invalid glob %q: not valid UTF-8", pattern)
	}
	for _, r := range pattern {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return fmt.Errorf("invalid glob %q: contains white space or a control character", pattern)
		}
	}
	if strings.HasPrefix(pattern, "/") {
		return fmt.Errorf("invalid glob %q: must not start with '/'", pattern)
	}
	if strings.HasSuffix(pattern, "/") {
		return fmt.Errorf("invalid glob %q: must not end with '/'", pattern)
	}
	for _, seg := range strings.Split(pattern, "/") {
		if seg == "" {
			return fmt.Errorf("invalid glob %q: empty path segment", pattern)
		}
		if seg != "**" && strings.Contains(seg, "**") {
			return fmt.Errorf("invalid glob %q: \"**\" must be a whole path segment (in %q)", pattern, seg)
		}
	}
	return nil
}

// glob is a validated pattern split into segments.
type glob struct {
	source string
	segs   []string
}

// compileGlob splits a pattern that ValidGlob accepted.
func compileGlob(pattern string) glob {
	return glob{source: pattern, segs: strings.Split(pattern, "/")}
}

// match reports whether name matches g (see MatchGlob).
func (g glob) match(name string) bool {
	var segs []string
	if name != "" {
		segs = strings.Split(name, "/")
		for _, s := range segs {
			if s == "" {
				return false
			}
		}
	}
	return matchSegments(g.segs, segs)
}

// matchSegments matches name segments against pattern segments, "**"
// standing for any number of segments. It backtracks only to the latest
// "**", which is enough because "**" matches any sequence.
func matchSegments(pat, name []string) bool {
	pi, ni := 0, 0
	starP, starN := -1, 0
	for ni < len(name) {
		switch {
		case pi < len(pat) && pat[pi] == "**":
			starP, starN = pi, ni
			pi++
		case pi < len(pat) && matchSegment(pat[pi], name[ni]):
			pi++
			ni++
		case starP >= 0:
			starN++
			pi, ni = starP+1, starN
		default:
			return false
		}
	}
	for pi < len(pat) && pat[pi] == "**" {
		pi++
	}
	return pi == len(pat)
}

// matchSegment matches one segment (no '/') against a pattern segment with
// '*' (any run) and '?' (one character) wildcards.
func matchSegment(pat, s string) bool {
	px, sx := 0, 0
	starP, starS := -1, 0
	for px < len(pat) || sx < len(s) {
		if px < len(pat) {
			switch c := pat[px]; c {
			case '*':
				starP, starS = px, sx
				px++
				continue
			case '?':
				if sx < len(s) {
					_, w := utf8.DecodeRuneInString(s[sx:])
					px++
					sx += w
					continue
				}
			default:
				if sx < len(s) && s[sx] == c {
					px++
					sx++
					continue
				}
			}
		}
		if starP >= 0 && starS < len(s) {
			_, w := utf8.DecodeRuneInString(s[starS:])
			starS += w
			px, sx = starP+1, starS
			continue
		}
		return false
	}
	return true
}
