package match

import "strings"

// mavenQualifiers ranks Maven's well-known qualifiers; "" (also "ga",
// "final", "release") is the release itself.
var mavenQualifiers = map[string]int{
	"alpha": 0, "a": 0, "beta": 1, "b": 1, "milestone": 2, "m": 2,
	"rc": 3, "cr": 3, "snapshot": 4, "": 5, "ga": 5, "final": 5, "release": 5, "sp": 6,
}

type mavenItem struct {
	num     string // digits, when numeric
	qual    string // lowercased qualifier, when not
	numeric bool
}

// parseMaven splits a Maven version into items at ".", "-" and changes
// between digits and letters, then drops trailing release-equivalent items
// (0, "", "ga", "final", "release"), as ComparableVersion does.
func parseMaven(v string) []mavenItem {
	v = strings.ToLower(strings.TrimSpace(v))
	var items []mavenItem
	start := 0
	flush := func(end int) {
		tok := v[start:end]
		if tok != "" && allDigits(tok) {
			items = append(items, mavenItem{num: strings.TrimLeft(tok, "0"), numeric: true})
		} else {
			items = append(items, mavenItem{qual: tok})
		}
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '.' || c == '-' {
			flush(i)
			start = i + 1
			continue
		}
		if i > start && isDigit(c) != isDigit(v[i-1]) {
			flush(i)
			start = i
		}
	}
	flush(len(v))
	for len(items) > 0 && isNullMaven(items[len(items)-1]) {
		items = items[:len(items)-1]
	}
	return items
}

func isNullMaven(it mavenItem) bool {
	if it.numeric {
		return it.num == ""
	}
	r, ok := mavenQualifiers[it.qual]
	return ok && r == 5
}

// compareMavenItem compares two items in the total order: pre-release
// qualifiers < release ("", ga, final, release, 0 and a missing item) < sp
// < unknown qualifiers (alphabetically) < 1 < 2 < ...
func compareMavenItem(a, b *mavenItem) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -compareMavenItem(b, nil)
	}
	if b == nil {
		if a.numeric {
			return sign(len(a.num))
		}
		return compareQualifier(a.qual, "")
	}
	switch {
	case a.numeric && b.numeric:
		return compareDigits(a.num, b.num)
	case a.numeric && a.num == "":
		return compareQualifier("", b.qual) // 0 sorts as the release
	case b.numeric && b.num == "":
		return compareQualifier(a.qual, "")
	case a.numeric:
		return 1
	case b.numeric:
		return -1
	}
	return compareQualifier(a.qual, b.qual)
}

// compareQualifier orders known qualifiers by rank and unknown ones after
// them all, alphabetically.
func compareQualifier(a, b string) int {
	ra, oka := mavenQualifiers[a]
	rb, okb := mavenQualifiers[b]
	switch {
	case oka && okb:
		return sign(ra - rb)
	case oka:
		return -1
	case okb:
		return 1
	}
	return strings.Compare(a, b)
}

// CompareMaven orders two Maven versions after Maven's ComparableVersion,
// without its nested lists: items split at ".", "-" and digit/letter
// changes, compared item by item with alpha < beta < milestone < rc <
// snapshot < release (also "", ga, final, 0, a missing item) < sp < other
// qualifiers (alphabetically) < 1 < 2 < ...; trailing zeros and release
// qualifiers are ignored (1.0 == 1).
func CompareMaven(a, b string) int {
	ia, ib := parseMaven(a), parseMaven(b)
	for i := 0; i < len(ia) || i < len(ib); i++ {
		var x, y *mavenItem
		if i < len(ia) {
			x = &ia[i]
		}
		if i < len(ib) {
			y = &ib[i]
		}
		if c := compareMavenItem(x, y); c != 0 {
			return c
		}
	}
	return 0
}
