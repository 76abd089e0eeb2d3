package vulndb

import (
	"regexp"
	"strings"
)

// BaseEcosystem returns the ecosystem without its release suffix:
// "Debian" for "Debian:12", "Alpine" for "Alpine:v3.20", "Go" for "Go".
func BaseEcosystem(ecosystem string) string {
	base, _, _ := strings.Cut(ecosystem, ":")
	return base
}

var pypiSeparators = regexp.MustCompile(`[-_.]+`)

// NormalizeName returns the form of a package name that lookups compare:
// PyPI names per PEP 503 (lowercase, runs of "-", "_", "." as one "-"),
// every other ecosystem's names unchanged.
func NormalizeName(ecosystem, name string) string {
	if strings.EqualFold(BaseEcosystem(ecosystem), "PyPI") {
		return pypiSeparators.ReplaceAllString(strings.ToLower(name), "-")
	}
	return name
}
