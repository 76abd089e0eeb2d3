package secrets

import (
	"math"
	"strings"
)

// entropy returns the Shannon entropy of s in bits per byte: random base62
// runs of 30 or more characters score above 4.5, words and repeated
// placeholders ("xxxx", "1234567890") well below 3.5.
func entropy(s string) float64 {
	if s == "" {
		return 0
	}
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	var h float64
	n := float64(len(s))
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}

// charset is a set of ASCII bytes.
type charset [256]bool

// newCharset builds a set from ranges such as "a-z" (three characters, a
// dash between two letters or two digits) and lists of single characters
// such as "+/" or ".-_".
func newCharset(ranges ...string) *charset {
	var c charset
	for _, r := range ranges {
		if len(r) == 3 && r[1] == '-' && alnumByte(r[0]) && alnumByte(r[2]) {
			for b := int(r[0]); b <= int(r[2]); b++ {
				c[b] = true
			}
			continue
		}
		for i := 0; i < len(r); i++ {
			c[r[i]] = true
		}
	}
	return &c
}

var (
	alnum           = newCharset("a-z", "A-Z", "0-9")
	alnumUnderscore = newCharset("a-z", "A-Z", "0-9", "_")
	alnumDash       = newCharset("a-z", "A-Z", "0-9", "_", "-")
	base64Chars     = newCharset("a-z", "A-Z", "0-9", "+/")
)

// isolated reports whether text[start:end] is not glued to more characters
// of set on either side, so a match is a whole token and not part of a
// longer one.
func isolated(text string, start, end int, set *charset) bool {
	return (start == 0 || !set[text[start-1]]) && (end == len(text) || !set[text[end]])
}

func alnumByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

// fakeWords mark a token as made up for tests or documentation.
var fakeWords = []string{"example", "test", "fake", "dummy", "sample", "placeholder", "xxxxx", "redacted"}

// looksFake reports whether the random part of a token was written by a
// person: it contains a word such as "example" or "test" (in any case), or
// a run of 6 or more consecutive ascending or descending characters
// ("123456", "abcdef"), which random tokens almost never do.
func looksFake(s string) bool {
	l := strings.ToLower(s)
	for _, w := range fakeWords {
		if strings.Contains(l, w) {
			return true
		}
	}
	up, down := 1, 1
	for i := 1; i < len(l); i++ {
		switch {
		case l[i] == l[i-1]+1:
			up, down = up+1, 1
		case l[i] == l[i-1]-1:
			up, down = 1, down+1
		default:
			up, down = 1, 1
		}
		if up >= 6 || down >= 6 {
			return true
		}
	}
	return false
}
