package secrets

import (
	"regexp"
	"strings"
)

// findNear returns re's submatch indexes in text, searching only windows
// from before bytes ahead of each occurrence of a needle to after bytes past
// it. Regular expressions without a literal prefix are slow over whole files;
// a needle every match must contain ("://", "ecret") makes them fast, and as
// long as before and after cover the longest match, nothing is missed.
// Indexes are offsets into text.
func findNear(re *regexp.Regexp, text string, needles []string, before, after int) [][]int {
	type span struct{ lo, hi int }
	var spans []span
	for _, n := range needles {
		for i := 0; i < len(text); {
			j := strings.Index(text[i:], n)
			if j < 0 {
				break
			}
			at := i + j
			spans = append(spans, span{max(0, at-before), min(len(text), at+len(n)+after)})
			i = at + len(n)
		}
	}
	if len(spans) == 0 {
		return nil
	}
	// Merge overlapping windows, so that no match is found twice.
	sortSpans := func() {
		for i := 1; i < len(spans); i++ {
			for j := i; j > 0 && spans[j].lo < spans[j-1].lo; j-- {
				spans[j], spans[j-1] = spans[j-1], spans[j]
			}
		}
	}
	if len(needles) > 1 {
		sortSpans()
	}
	merged := spans[:1]
	for _, s := range spans[1:] {
		last := &merged[len(merged)-1]
		if s.lo <= last.hi {
			last.hi = max(last.hi, s.hi)
			continue
		}
		merged = append(merged, s)
	}
	var out [][]int
	for _, s := range merged {
		for _, loc := range re.FindAllStringSubmatchIndex(text[s.lo:s.hi], -1) {
			for k := range loc {
				if loc[k] >= 0 {
					loc[k] += s.lo
				}
			}
			out = append(out, loc)
		}
	}
	return out
}
