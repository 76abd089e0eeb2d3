package policy

import (
	"regexp"
	"strconv"
)

// versionPrefixRE finds a leading dotted version such as v1.4.2.
var versionPrefixRE = regexp.MustCompile(`^(v?(?:\d+\.)*)(\d{1,9})(?:\D|$)`)

// nextTag suggests a tag to push instead of moving tag: its leading version
// with the last number increased ("1.0.0" → "1.0.1", "v2.3-rc1" → "v2.4"),
// or "1.4.2" when tag does not start with a version.
func nextTag(tag string) string {
	m := versionPrefixRE.FindStringSubmatch(tag)
	if m == nil {
		return "1.4.2"
	}
	n, _ := strconv.Atoi(m[2])
	return m[1] + strconv.Itoa(n+1)
}
