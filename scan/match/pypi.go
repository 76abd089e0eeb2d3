package match

import (
	"regexp"
	"strings"
)

// pep440 matches the public version forms of PEP 440, normalised spellings included.
var pep440 = regexp.MustCompile(`^v?(?:(\d+)!)?(\d+(?:\.\d+)*)` +
	`(?:[-_.]?(a|b|c|rc|alpha|beta|pre|preview)[-_.]?(\d*))?` +
	`(?:-(\d+)|[-_.]?(post|rev|r)[-_.]?(\d*))?` +
	`(?:[-_.]?(dev)[-_.]?(\d*))?` +
	`(?:\+([a-z0-9]+(?:[-_.][a-z0-9]+)*))?$`)

type pyVersion struct {
	epoch   string
	release []string
	// preKind orders the pre-release kind: -1 dev-only release, 0 a, 1 b,
	// 2 rc, 3 none (a final or post release).
	preKind int
	preNum  string
	post    string // "" none; compared with hasPost
	hasPost bool
	dev     string
	hasDev  bool
	local   []string
	ok      bool
}

func parsePyPI(v string) pyVersion {
	m := pep440.FindStringSubmatch(strings.ToLower(strings.TrimSpace(v)))
	if m == nil {
		return pyVersion{}
	}
	p := pyVersion{epoch: m[1], release: strings.Split(m[2], "."), preKind: 3, ok: true}
	for len(p.release) > 1 && strings.Trim(p.release[len(p.release)-1], "0") == "" {
		p.release = p.release[:len(p.release)-1]
	}
	switch m[3] {
	case "a", "alpha":
		p.preKind = 0
	case "b", "beta":
		p.preKind = 1
	case "c", "rc", "pre", "preview":
		p.preKind = 2
	}
	p.preNum = m[4]
	if m[5] != "" || m[6] != "" {
		p.hasPost = true
		p.post = m[5] + m[7]
	}
	if m[8] != "" {
		p.hasDev = true
		p.dev = m[9]
	}
	if p.hasDev && !p.hasPost && m[3] == "" {
		p.preKind = -1
	}
	if m[10] != "" {
		p.local = localSeparators.Split(m[10], -1)
	}
	return p
}

var localSeparators = regexp.MustCompile(`[-_.]`)

// ComparePyPI orders two Python package versions per PEP 440: epoch,
// release (trailing zeros ignored), then dev releases < pre-releases (a < b
// < rc) < the final release < post-releases, with .devN below the release
// it belongs to, then local versions. Text that is not a PEP 440 version
// sorts before every version, and bytewise among itself.
func ComparePyPI(a, b string) int {
	pa, pb := parsePyPI(a), parsePyPI(b)
	switch {
	case !pa.ok && !pb.ok:
		return strings.Compare(a, b)
	case !pa.ok:
		return -1
	case !pb.ok:
		return 1
	}
	if c := compareDigits(pa.epoch, pb.epoch); c != 0 {
		return c
	}
	for i := 0; i < len(pa.release) || i < len(pb.release); i++ {
		x, y := "0", "0"
		if i < len(pa.release) {
			x = pa.release[i]
		}
		if i < len(pb.release) {
			y = pb.release[i]
		}
		if c := compareDigits(x, y); c != 0 {
			return c
		}
	}
	if c := sign(pa.preKind - pb.preKind); c != 0 {
		return c
	}
	if c := compareDigits(pa.preNum, pb.preNum); c != 0 {
		return c
	}
	if c := compareFlagged(pa.hasPost, pa.post, pb.hasPost, pb.post, -1); c != 0 {
		return c
	}
	if c := compareFlagged(pa.hasDev, pa.dev, pb.hasDev, pb.dev, 1); c != 0 {
		return c
	}
	for i := 0; i < len(pa.local) && i < len(pb.local); i++ {
		x, y := pa.local[i], pb.local[i]
		xn, yn := allDigits(x), allDigits(y)
		var c int
		switch {
		case xn && yn:
			c = compareDigits(x, y)
		case xn:
			c = 1
		case yn:
			c = -1
		default:
			c = strings.Compare(x, y)
		}
		if c != 0 {
			return c
		}
	}
	return sign(len(pa.local) - len(pb.local))
}

// compareFlagged compares optional numbered parts; absent sorts as absent
// (-1: before any present one, 1: after).
func compareFlagged(hasA bool, a string, hasB bool, b string, absent int) int {
	switch {
	case hasA && hasB:
		return compareDigits(a, b)
	case hasA:
		return -absent
	case hasB:
		return absent
	}
	return 0
}
