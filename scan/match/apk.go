package match

import (
	"strings"
)

// apkSuffixes ranks the suffixes of an apk version: the pre-release ones
// sort before no suffix (rank 0 < preRank), the others after it.
var apkSuffixes = map[string]int{
	"alpha": 0, "beta": 1, "pre": 2, "rc": 3,
	"cvs": 5, "svn": 6, "git": 7, "hg": 8, "p": 9,
}

const apkNoSuffix = 4

// apkVersion is a parsed apk (Alpine) version:
// digits{.digits}[letter]{_suffix[digits]}[~hash][-rN].
type apkVersion struct {
	numbers  []string
	letter   byte
	suffixes []apkSuffix
	hash     string
	revision string
	rest     string // whatever did not parse, compared as a string last
}

type apkSuffix struct {
	rank int
	num  string
}

func parseAPK(v string) apkVersion {
	var p apkVersion
	s := strings.TrimSpace(v)
	if i := strings.LastIndex(s, "-r"); i >= 0 && allDigits(s[i+2:]) && i+2 < len(s) {
		p.revision = s[i+2:]
		s = s[:i]
	}
	if i := strings.IndexByte(s, '~'); i >= 0 {
		p.hash = s[i+1:]
		s = s[:i]
	}
	for {
		n := leadingDigits(s)
		if n == 0 {
			break
		}
		p.numbers = append(p.numbers, s[:n])
		s = s[n:]
		if len(s) > 1 && s[0] == '.' && isDigit(s[1]) {
			s = s[1:]
			continue
		}
		break
	}
	if len(s) > 0 && s[0] >= 'a' && s[0] <= 'z' && (len(s) == 1 || s[1] == '_') {
		p.letter = s[0]
		s = s[1:]
	}
	for len(s) > 1 && s[0] == '_' {
		j := 1
		for j < len(s) && s[j] >= 'a' && s[j] <= 'z' {
			j++
		}
		rank, ok := apkSuffixes[s[1:j]]
		if !ok {
			break
		}
		n := leadingDigits(s[j:])
		p.suffixes = append(p.suffixes, apkSuffix{rank: rank, num: s[j : j+n]})
		s = s[j+n:]
	}
	p.rest = s
	return p
}

func leadingDigits(s string) int {
	n := 0
	for n < len(s) && isDigit(s[n]) {
		n++
	}
	return n
}

func allDigits(s string) bool { return leadingDigits(s) == len(s) }

// CompareAPK orders two Alpine package versions the way apk-tools does:
// dot-separated numbers (the first numerically, later ones as strings when
// either has a leading zero, as in 1.01 < 1.1), then an optional letter,
// then suffixes (_alpha < _beta < _pre < _rc < none < _cvs < _svn < _git <
// _hg < _p, each with an optional number), then the ~hash, then -rN.
// Text that fits none of that is compared bytewise, last.
func CompareAPK(a, b string) int {
	pa, pb := parseAPK(a), parseAPK(b)
	for i := 0; i < len(pa.numbers) && i < len(pb.numbers); i++ {
		x, y := pa.numbers[i], pb.numbers[i]
		var c int
		if i > 0 && (x[0] == '0' || y[0] == '0') {
			c = strings.Compare(strings.TrimRight(x, "0"), strings.TrimRight(y, "0"))
		} else {
			c = compareDigits(x, y)
		}
		if c != 0 {
			return c
		}
	}
	if c := sign(len(pa.numbers) - len(pb.numbers)); c != 0 {
		return c
	}
	if c := sign(int(pa.letter) - int(pb.letter)); c != 0 {
		return c
	}
	for i := 0; i < len(pa.suffixes) || i < len(pb.suffixes); i++ {
		sa, sb := apkSuffix{rank: apkNoSuffix}, apkSuffix{rank: apkNoSuffix}
		if i < len(pa.suffixes) {
			sa = pa.suffixes[i]
		}
		if i < len(pb.suffixes) {
			sb = pb.suffixes[i]
		}
		if c := sign(sa.rank - sb.rank); c != 0 {
			return c
		}
		if c := compareDigits(sa.num, sb.num); c != 0 {
			return c
		}
	}
	if c := strings.Compare(pa.hash, pb.hash); c != 0 {
		return c
	}
	if c := compareDigits(pa.revision, pb.revision); c != 0 {
		return c
	}
	return strings.Compare(pa.rest, pb.rest)
}
