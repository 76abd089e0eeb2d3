package match

import "strings"

// semver is a parsed semantic version; ok is false when the text is not one.
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

// CompareSemver orders two semantic versions (SemVer 2.0.0 precedence;
// a leading "v" and build metadata are ignored, so Go pseudo-versions and
// "+incompatible" versions order correctly). Text that is not a version
// sorts before every version, and bytewise among itself.
func CompareSemver(a, b string) int {
	sa, sb := parseSemver(a), parseSemver(b)
	switch {
	case !sa.ok && !sb.ok:
		return strings.Compare(a, b)
	case !sa.ok:
		return -1
	case !sb.ok:
		return 1
	}
	for _, c := range []int{compareDigits(sa.major, sb.major), compareDigits(sa.minor, sb.minor), compareDigits(sa.patch, sb.patch)} {
		if c != 0 {
			return c
		}
	}
	switch {
	case len(sa.pre) == 0 && len(sb.pre) == 0:
		return 0
	case len(sa.pre) == 0:
		return 1
	case len(sb.pre) == 0:
		return -1
	}
	for i := 0; i < len(sa.pre) && i < len(sb.pre); i++ {
		x, y := sa.pre[i], sb.pre[i]
		xn, yn := x != "" && allDigits(x), y != "" && allDigits(y)
		var c int
		switch {
		case xn && yn:
			c = compareDigits(x, y)
		case xn:
			c = -1
		case yn:
			c = 1
		default:
			c = strings.Compare(x, y)
		}
		if c != 0 {
			return c
		}
	}
	return sign(len(sa.pre) - len(sb.pre))
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
