package secrets

import (
	"regexp"
	"strings"
)

// findNear calls found with re's submatch indexes in text, in order, searching only windows
// from before bytes ahead of each occurrence of a needle to after bytes past
// it. Regular expressions without a literal prefix are slow over whole files;
// a needle every match must contain ("://", "ecret") makes them fast, and as
// long as before and after cover the longest match, nothing is missed.
// Indexes are offsets into text; found may keep them.
//
// The windows are merged as they are found, the needles' occurrences taken
// in the order they appear (a merge of one sorted list per needle), so that
// no match is found twice and the time is linear in text: an insertion sort
// of the windows made a file of needles quadratic.
func findNear(re *regexp.Regexp, text string, needles []string, before, after int, found func(loc []int)) {
	// next[i] is the next occurrence of needles[i] at or after pos[i], -1 for none.
	next := make([]int, len(needles))
	for i, n := range needles {
		next[i] = strings.Index(text, n)
	}
	lo, hi := -1, -1 // the window being grown
	flush := func() {
		if lo < 0 {
			return
		}
		for _, loc := range re.FindAllStringSubmatchIndex(text[lo:hi], -1) {
			for k := range loc {
				if loc[k] >= 0 {
					loc[k] += lo
				}
			}
			found(loc)
		}
	}
	for {
		first := -1
		for i, at := range next {
			if at >= 0 && (first < 0 || at < next[first]) {
				first = i
			}
		}
		if first < 0 {
			break
		}
		at, n := next[first], needles[first]
		if j := strings.Index(text[at+len(n):], n); j >= 0 {
			next[first] = at + len(n) + j
		} else {
			next[first] = -1
		}
		wlo, whi := max(0, at-before), min(len(text), at+len(n)+after)
		if lo >= 0 && wlo <= hi {
			hi = max(hi, whi)
			continue
		}
		flush()
		lo, hi = wlo, whi
	}
	flush()
}
