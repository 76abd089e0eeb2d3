package match

import "strings"

// semver is a strictly parsed semantic version, which a Go module version
// must be (semantic's SemVer parser accepts any text); ok is false when the
// text is not one. Ordering is CompareSemver's.
type semver struct {
	major, minor, patch string
	pre                 []string
	ok                  bool
}

// parseSemver parses "[v]MAJOR[.MINOR[.PATCH]][-PRERELEASE][+BUILD]";
// missing minor and patch numbers are zero (Go's "1.21" is 1.21.0).
func parseSemver(v string) semver {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	v, _, _ = strings.Cut(v, "+")
	var s semver
	core, pre, hasPre := strings.Cut(v, "-")
	parts := strings.Split(core, ".")
	if len(parts) > 3 || core == "" {
		return s
	}
	for _, p := range parts {
		if p == "" || !allDigits(p) {
			return s
		}
	}
	for len(parts) < 3 {
		parts = append(parts, "0")
	}
	s.major, s.minor, s.patch = parts[0], parts[1], parts[2]
	if hasPre {
		if pre == "" {
			return s
		}
		s.pre = strings.Split(pre, ".")
	}
	s.ok = true
	return s
}

// allDigits reports whether s is only ASCII digits.
func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// goVersion turns a Go toolchain version as the inventory records it
// ("1.22.1", "1.21", "1.22rc1", "1.21beta2", with or without "go") into the
// semantic version OSV's stdlib records use ("1.22.1", "1.21.0",
// "1.22.0-rc.1"). Other text is returned unchanged.
func goVersion(v string) string {
	v = strings.TrimPrefix(v, "go")
	for _, pre := range []string{"rc", "beta", "alpha"} {
		if i := strings.Index(v, pre); i > 0 {
			s := parseSemver(v[:i])
			if s.ok && allDigits(v[i+len(pre):]) && v[i+len(pre):] != "" {
				return s.major + "." + s.minor + "." + s.patch + "-" + pre + "." + v[i+len(pre):]
			}
			return v
		}
	}
	return v
}
