package match

import (
	"fmt"
	"strings"

	"github.com/google/osv-scalibr/semantic"

	"github.com/portcullis-dev/portcullis/scan/vulndb"
)

// osvEcosystems are the OSV ecosystem names whose version ordering
// osv-scalibr's semantic package knows, spelled as OSV spells them.
var osvEcosystems = []string{
	"AlmaLinux", "Alpaquita", "Alpine", "BellSoft Hardened Containers", "Bitnami",
	"Bioconductor", "Chainguard", "ConanCenter", "CRAN", "crates.io", "Debian",
	"Docker Hardened Images", "GHC", "Go", "Hackage", "Hex", "Julia", "Mageia", "Maven",
	"MinimOS", "npm", "NuGet", "openEuler", "openSUSE", "Packagist", "Pub", "PyPI",
	"Red Hat", "Rocky Linux", "RubyGems", "SUSE", "SwiftURL", "Ubuntu", "Wolfi",
}

// ordering parses and compares the versions of one ecosystem.
type ordering struct {
	name  string // OSV's spelling, or "SEMVER" for OSV's SEMVER ranges
	parse func(string) (semantic.Version, error)
}

// semverOrdering is the order of OSV's SEMVER ranges: SemVer 2.0.0
// precedence whatever the ecosystem.
var semverOrdering = ordering{name: "SEMVER", parse: func(v string) (semantic.Version, error) {
	return semantic.ParseSemverVersion(v), nil
}}

// orderingFor returns the version ordering of an OSV ecosystem (release
// suffix allowed, "Debian:12"); the name is matched exactly, or else
// ignoring case ("debian" is "Debian").
func orderingFor(ecosystem string) (ordering, error) {
	base := vulndb.BaseEcosystem(ecosystem)
	name := ""
	for _, e := range osvEcosystems {
		if e == base {
			name = e
			break
		}
		if name == "" && strings.EqualFold(e, base) {
			name = e
		}
	}
	if name == "" {
		return ordering{}, fmt.Errorf("no version ordering for ecosystem %q", ecosystem)
	}
	return ordering{name: name, parse: func(v string) (semantic.Version, error) {
		return semantic.Parse(v, name)
	}}, nil
}

// version parses v, saying which text failed and in which ecosystem.
func (o ordering) version(v string) (semantic.Version, error) {
	if strings.TrimSpace(v) == "" {
		return nil, fmt.Errorf("empty %s version", o.name)
	}
	p, err := o.parse(v)
	if err != nil {
		return nil, fmt.Errorf("%q is not a %s version: %w", v, o.name, err)
	}
	return p, nil
}

// compare orders two parsed versions, saying which ones could not be.
func (o ordering) compare(a, b semantic.Version, at, bt string) (int, error) {
	c, err := a.Compare(b)
	if err != nil {
		return 0, fmt.Errorf("%s versions %q and %q cannot be ordered: %w", o.name, at, bt, err)
	}
	return c, nil
}

// CompareVersions orders two versions of a package in the OSV ecosystem
// (release suffix allowed, "Debian:12") with OSV's own version ordering
// (github.com/google/osv-scalibr/semantic): dpkg's for Debian and Ubuntu,
// apk-tools' for Alpine, PEP 440 for PyPI, Maven's ComparableVersion,
// SemVer 2.0.0 for Go, npm and crates.io, and the others semantic knows.
// It fails, saying why, for an ecosystem without an ordering and for text
// that is not a version of the ecosystem.
func CompareVersions(ecosystem, a, b string) (int, error) {
	o, err := orderingFor(ecosystem)
	if err != nil {
		return 0, err
	}
	va, err := o.version(a)
	if err != nil {
		return 0, err
	}
	vb, err := o.version(b)
	if err != nil {
		return 0, err
	}
	return o.compare(va, vb, a, b)
}

// Compare orders two versions as CompareVersions does, for callers that
// need a total order rather than an error: text that is not a version of
// the ecosystem (or versions that cannot be ordered, or an ecosystem
// without an ordering) sorts before every version, and bytewise among
// itself. Matching does not use it to decide whether a version is affected.
func Compare(ecosystem, a, b string) int {
	o, err := orderingFor(ecosystem)
	if err != nil {
		return strings.Compare(a, b)
	}
	return o.total(a, b)
}

func (o ordering) total(a, b string) int {
	va, ea := o.version(a)
	vb, eb := o.version(b)
	switch {
	case ea != nil && eb != nil:
		return strings.Compare(a, b)
	case ea != nil:
		return -1
	case eb != nil:
		return 1
	}
	c, err := o.compare(va, vb, a, b)
	if err != nil {
		return strings.Compare(a, b)
	}
	return c
}

// CompareDebian orders two Debian (or Ubuntu) package versions as dpkg
// --compare-versions does, through Compare.
func CompareDebian(a, b string) int { return Compare("Debian", a, b) }

// CompareAPK orders two Alpine package versions as apk-tools does,
// through Compare.
func CompareAPK(a, b string) int { return Compare("Alpine", a, b) }

// ComparePyPI orders two Python package versions per PEP 440, through
// Compare.
func ComparePyPI(a, b string) int { return Compare("PyPI", a, b) }

// CompareMaven orders two Maven versions as Maven's ComparableVersion
// does, through Compare.
func CompareMaven(a, b string) int { return Compare("Maven", a, b) }

// CompareSemver orders two semantic versions by SemVer 2.0.0 precedence
// (a leading "v" and build metadata ignored, so Go pseudo-versions and
// "+incompatible" versions order correctly), through Compare.
func CompareSemver(a, b string) int { return semverOrdering.total(a, b) }

// Version names the matching rules (OSV's version ordering through
// semantic, undecided ranges reported): cached findings computed under
// other rules must not be reused, so it belongs in their cache key next to
// the database revision.
const Version = "osv-semantic-1"
