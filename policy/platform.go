package policy

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Platform is an operating system and CPU architecture an image is built for, as an OCI
// index or image configuration states it ("linux", "arm64", "v8").
type Platform struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant,omitempty"`
}

// String is os/arch[/variant].
func (p Platform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// platformToken is what an os, architecture or variant may look like (after lower-casing).
// It bounds the length, so hostile values neither count nor flood a message.
var platformToken = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,31}$`)

// knownOS are the operating systems a policy may name (Go's GOOS values, and macos, which
// containerd reads as darwin).
var knownOS = []string{"aix", "android", "darwin", "dragonfly", "freebsd", "illumos", "ios", "js",
	"linux", "netbsd", "openbsd", "plan9", "solaris", "wasip1", "windows", "macos"}

// knownArch are the architectures a policy may name: Go's GOARCH values and the aliases
// containerd normalises (x86_64, aarch64, armhf, ...).
var knownArch = []string{"386", "amd64", "arm", "arm64", "loong64", "mips", "mipsle", "mips64", "mips64le",
	"ppc64", "ppc64le", "riscv64", "s390x", "wasm", "i386", "x86_64", "x86-64", "aarch64", "armhf", "armel"}

// ParsePlatform reads os/arch[/variant] as a policy writes it, e.g. linux/arm64/v8. It
// refuses an unknown operating system or architecture, and a variant that the
// architecture does not have (amd64: v1 to v4; arm: v5 to v8; arm64: v8, v8.x, v9, v9.x),
// so that a typo does not deny every image.
func ParsePlatform(s string) (Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return Platform{}, fmt.Errorf("want os/arch[/variant] such as linux/arm64/v8, got %q", s)
	}
	for _, p := range parts {
		if !platformToken.MatchString(p) {
			return Platform{}, fmt.Errorf("want os/arch[/variant] in lower case such as linux/arm64/v8, got %q", s)
		}
	}
	p := Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	if !oneOf(p.OS, knownOS) {
		return Platform{}, fmt.Errorf("unknown operating system %q in %q (want e.g. linux or windows)", p.OS, s)
	}
	if !oneOf(p.Architecture, knownArch) {
		return Platform{}, fmt.Errorf("unknown architecture %q in %q (want e.g. amd64, arm64, arm, ppc64le, s390x, riscv64)", p.Architecture, s)
	}
	n := normalizePlatform(p)
	if p.Variant != "" && !validVariant(n) {
		return Platform{}, fmt.Errorf("unknown variant %q of %s in %q (amd64: v1 to v4; arm: v5 to v8; arm64: v8, v8.1 to v8.9, v9, v9.1 to v9.5)", p.Variant, n.Architecture, s)
	}
	return p, nil
}

// validVariant reports whether the variant of a normalised platform is one its
// architecture has; architectures without known variants accept any.
func validVariant(p Platform) bool {
	switch p.Architecture {
	case "amd64":
		return oneOf(p.Variant, []string{"v1", "v2", "v3", "v4"})
	case "arm":
		return oneOf(p.Variant, []string{"v5", "v6", "v7", "v8"})
	case "arm64":
		major, minor, ok := arm64Version(p.Variant)
		return ok && (major == 8 && minor <= 9 || major == 9 && minor <= 5)
	}
	return true
}

// normalizePlatform puts p in containerd's normal form, spelling out default variants so
// that equal platforms compare equal: x86_64 and amd64 are amd64/v1, aarch64 and arm64 are
// arm64/v8, arm is arm/v7, armhf arm/v7, armel arm/v6, i386 386, macos darwin.
func normalizePlatform(p Platform) Platform {
	p.OS, p.Architecture, p.Variant = strings.ToLower(p.OS), strings.ToLower(p.Architecture), strings.ToLower(p.Variant)
	if p.OS == "macos" {
		p.OS = "darwin"
	}
	switch p.Architecture {
	case "i386", "x86":
		p.Architecture, p.Variant = "386", ""
	case "x86_64", "x86-64", "amd64":
		p.Architecture = "amd64"
		if p.Variant == "" {
			p.Variant = "v1"
		}
	case "aarch64", "arm64":
		p.Architecture = "arm64"
		switch p.Variant {
		case "", "8", "v8", "v8.0":
			p.Variant = "v8"
		case "9", "v9", "v9.0":
			p.Variant = "v9"
		}
		if strings.HasPrefix(p.Variant, "8.") || strings.HasPrefix(p.Variant, "9.") {
			p.Variant = "v" + p.Variant
		}
	case "armhf":
		p.Architecture, p.Variant = "arm", "v7"
	case "armel":
		p.Architecture, p.Variant = "arm", "v6"
	case "arm":
		switch p.Variant {
		case "", "7":
			p.Variant = "v7"
		case "5", "6", "8":
			p.Variant = "v" + p.Variant
		}
	}
	return p
}

// runsOn reports whether a node of platform node runs an image built for img, as
// containerd's default platform matcher picks from an index: the same platform, or one
// it is compatible with: amd64/vN runs amd64/v1 to vN and 386; arm/vN runs arm/v5 to vN;
// arm64/vX runs arm64 up to vX and arm/v5 to v8. Both are normalised first.
func runsOn(node, img Platform) bool {
	node, img = normalizePlatform(node), normalizePlatform(img)
	if node.OS != img.OS {
		return false
	}
	if node == img {
		return true
	}
	switch node.Architecture {
	case "amd64":
		if img.Architecture == "386" {
			return true
		}
		n, ok1 := vNumber(node.Variant)
		m, ok2 := vNumber(img.Variant)
		return img.Architecture == "amd64" && ok1 && ok2 && m <= n
	case "arm":
		n, ok1 := vNumber(node.Variant)
		m, ok2 := vNumber(img.Variant)
		return img.Architecture == "arm" && ok1 && ok2 && m >= 5 && m <= n
	case "arm64":
		if img.Architecture == "arm" {
			m, ok := vNumber(img.Variant)
			return ok && m >= 5 && m <= 8
		}
		nMaj, nMin, ok1 := arm64Version(node.Variant)
		iMaj, iMin, ok2 := arm64Version(img.Variant)
		return img.Architecture == "arm64" && ok1 && ok2 && (iMaj < nMaj || iMaj == nMaj && iMin <= nMin)
	}
	return false
}

// vNumber reads "v7" as 7.
func vNumber(v string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimPrefix(v, "v"))
	if err != nil || !strings.HasPrefix(v, "v") || n < 0 || n > 99 {
		return 0, false
	}
	return n, true
}

// arm64Version reads a normalised arm64 variant, "v8" or "v8.2", as major and minor.
func arm64Version(v string) (major, minor int, ok bool) {
	if !strings.HasPrefix(v, "v") {
		return 0, 0, false
	}
	ma, mi, dotted := strings.Cut(v[1:], ".")
	major, err := strconv.Atoi(ma)
	if err != nil || major < 0 || major > 99 {
		return 0, 0, false
	}
	if dotted {
		if minor, err = strconv.Atoi(mi); err != nil || minor < 0 || minor > 99 {
			return 0, 0, false
		}
	}
	return major, minor, true
}

// runsAny reports whether one of nodes runs img.
func runsAny(nodes []Platform, img Platform) bool {
	for _, n := range nodes {
		if runsOn(n, img) {
			return true
		}
	}
	return false
}
