package secrets

import "math"

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
