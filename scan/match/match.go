package match

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/google/osv-scalibr/semantic"

	"github.com/portcullis-dev/portcullis/scan/inventory"
	"github.com/portcullis-dev/portcullis/scan/vulndb"
)

// Distro names the image's operating system release, as os-release says:
// ID "debian", "ubuntu" or "alpine" and VERSION_ID "12", "22.04", "3.20.3".
type Distro struct {
	// ID is os-release ID.
	ID string `json:"id,omitempty"`
	// VersionID is os-release VERSION_ID.
	VersionID string `json:"versionID,omitempty"`
}

// Finding is one vulnerability affecting one installed package.
type Finding struct {
	// Package is the affected package as the inventory found it.
	Package inventory.Package `json:"package"`
	// ID is the vulnerability's identifier, preferring the ecosystem's own
	// advisory (GO-, DSA-, ...) over GHSA over CVE.
	ID string `json:"id"`
	// Aliases are the other identifiers of the same vulnerability, including
	// those of records merged into this finding.
	Aliases []string `json:"aliases,omitempty"`
	// Ecosystem is the OSV ecosystem the match was made in, e.g. "Debian:12".
	Ecosystem string `json:"ecosystem"`
	// Severity is the highest severity any merged record states.
	Severity Severity `json:"severity"`
	// CVSS is the CVSS score behind Severity (v3 base score, or v4 score);
	// 0 when Severity came from a word rather than a vector.
	CVSS float64 `json:"cvss,omitempty"`
	// CVSSVector is the CVSS vector the score came from.
	CVSSVector string `json:"cvssVector,omitempty"`
	// Fixed is the lowest version above the installed one that every merged
	// record calls fixed; empty when any of them knows no fix.
	Fixed string `json:"fixed,omitempty"`
	// Fixable reports that Fixed is set.
	Fixable bool `json:"fixable"`
	// Summary is the record's one-line summary.
	Summary string `json:"summary,omitempty"`
	// Undecided says why a record's range could not be evaluated for the
	// installed version (a range bound that is not a version of the
	// ecosystem); such a record is reported as affecting the package, with
	// no fix, rather than silently left out.
	Undecided string `json:"undecided,omitempty"`
}

// query is what one package is looked up and compared as.
type query struct {
	ecosystem string // base ecosystem
	release   string // wanted release suffix for OS ecosystems; "" otherwise
	name      string
	version   string
	os        bool
	goos      string // the Go binary's GOOS and GOARCH, "" when unknown
	goarch    string
	order     ordering         // the ecosystem's version ordering
	parsed    semantic.Version // version, parsed in order
	semver    semantic.Version // version, parsed for SEMVER ranges
}

// queryFor works out how to look a package up. OS packages are looked up by
// source package and source version in the ecosystem of the distro (a dpkg
// package in an Ubuntu image is an Ubuntu package) and must match its
// release: Debian by major version ("Debian:12"), Alpine by major.minor
// ("Alpine:v3.20"), Ubuntu by VERSION_ID ("Ubuntu:22.04:LTS"; Ubuntu Pro
// entries are not matched). OS packages in an image whose release is unknown
// are not matched. Go's "stdlib" is compared as the semantic version of its
// toolchain version, and a Go package is matched for the GOOS and GOARCH its
// binary was built for, when known. Ecosystems other than these, npm, PyPI,
// Maven and crates.io are not matched.
func queryFor(p inventory.Package, d Distro) (query, string) {
	q := query{ecosystem: p.Ecosystem, name: p.Name, version: p.Version}
	switch p.Ecosystem {
	case inventory.EcosystemDebian, inventory.EcosystemUbuntu, inventory.EcosystemAlpine:
		q.os = true
		switch strings.ToLower(d.ID) {
		case "debian":
			q.ecosystem = inventory.EcosystemDebian
		case "ubuntu":
			q.ecosystem = inventory.EcosystemUbuntu
		case "alpine":
			q.ecosystem = inventory.EcosystemAlpine
		}
		if p.SourceName != "" {
			q.name = p.SourceName
		}
		if p.SourceVersion != "" {
			q.version = p.SourceVersion
		}
		q.release = release(q.ecosystem, d.VersionID)
		if q.release == "" {
			return q, "the image's " + q.ecosystem + " release is unknown (os-release VERSION_ID)"
		}
	case inventory.EcosystemNPM, inventory.EcosystemPyPI, inventory.EcosystemMaven, "crates.io":
	case inventory.EcosystemGo:
		q.goos, q.goarch = p.GOOS, p.GOARCH
		if p.Name == "stdlib" {
			q.version = goVersion(p.Version)
		}
		if !parseSemver(q.version).ok {
			return q, fmt.Sprintf("version %q is not a semantic version", p.Version)
		}
	default:
		return q, fmt.Sprintf("no version ordering for ecosystem %q", p.Ecosystem)
	}
	switch {
	case q.name == "":
		return q, "no package name"
	case q.version == "":
		return q, "no version"
	}
	var err error
	if q.order, err = orderingFor(q.ecosystem); err != nil {
		return q, err.Error()
	}
	if q.parsed, err = q.order.version(q.version); err != nil {
		return q, "version " + err.Error()
	}
	if q.order.name == "Go" || q.order.name == "npm" || q.order.name == "crates.io" {
		q.semver = q.parsed // semantic reads these as SemVer
	} else {
		q.semver, _ = semverOrdering.version(q.version)
	}
	return q, ""
}

// Unchecked is a package Match could not check, and why.
type Unchecked struct {
	// Package is the package as the inventory found it.
	Package inventory.Package `json:"package"`
	// Reason says why, e.g. "the image's Debian release is unknown".
	Reason string `json:"reason"`
	// ReleaseUnknown is true when the package is an OS package skipped because
	// the image's release is unknown (rather than, say, for its version).
	ReleaseUnknown bool `json:"releaseUnknown,omitempty"`
}

// Skipped returns the packages that Match does not check for this distro,
// each with the reason, so that a report can say what was not looked at
// rather than implying it is clean.
func Skipped(pkgs []inventory.Package, distro Distro) []Unchecked {
	var out []Unchecked
	for _, p := range pkgs {
		if q, why := queryFor(p, distro); why != "" {
			out = append(out, Unchecked{Package: p, Reason: why, ReleaseUnknown: q.os && q.release == ""})
		}
	}
	return out
}

func release(ecosystem, versionID string) string {
	versionID = strings.TrimSpace(versionID)
	if versionID == "" {
		return ""
	}
	switch ecosystem {
	case inventory.EcosystemDebian:
		major, _, _ := strings.Cut(versionID, ".")
		return major
	case inventory.EcosystemAlpine:
		parts := strings.Split(versionID, ".")
		if len(parts) < 2 {
			return ""
		}
		return "v" + parts[0] + "." + parts[1]
	}
	return versionID
}

// releaseMatches reports whether an affected entry's release suffix is the
// wanted release. Ubuntu suffixes carry more components ("22.04:LTS",
// "Pro:18.04:LTS"); one of them must be the release and none "Pro".
func releaseMatches(q query, a vulndb.Affected) bool {
	if !q.os {
		return true
	}
	rel := a.Release()
	if q.ecosystem != inventory.EcosystemUbuntu {
		return rel == q.release
	}
	found := false
	for _, c := range strings.Split(rel, ":") {
		if c == "Pro" {
			return false
		}
		found = found || c == q.release
	}
	return found
}

// Match returns the findings for the packages: for each package, every
// record in db whose ranges or versions include the installed version,
// records naming the same vulnerability (by id, aliases or upstream ids)
// merged into one finding. A Go package whose binary's GOOS or GOARCH is
// known is not matched by an entry limited to other platforms (see
// vulndb.Affected.AffectsPlatform), as govulncheck decides it; one whose
// platform is unknown is matched by every entry. Packages it cannot check (see Skipped) yield
// nothing. Findings are ordered by package, then severity
// (highest first), then id.
func Match(db *vulndb.DB, pkgs []inventory.Package, distro Distro) []Finding {
	var out []Finding
	for _, p := range pkgs {
		q, why := queryFor(p, distro)
		if why != "" {
			continue // reported by Skipped
		}
		cmp := q.order.total
		var raw []rawFinding
		for _, r := range db.Lookup(q.ecosystem, q.name) {
			for _, a := range r.Affected {
				if !releaseMatches(q, a) || !a.AffectsPlatform(q.goos, q.goarch) {
					continue
				}
				hit, fixed, undecided := affects(a, q)
				if !hit {
					continue
				}
				sev, score, vector := rate(r, a)
				raw = append(raw, rawFinding{rec: r, ecosystem: a.Ecosystem, fixed: fixed, sev: sev, score: score, vector: vector, undecided: undecided})
				break
			}
		}
		out = append(out, merge(p, raw, cmp)...)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Package.Path != b.Package.Path {
			return a.Package.Path < b.Package.Path
		}
		if a.Package.Name != b.Package.Name {
			return a.Package.Name < b.Package.Name
		}
		if a.Severity != b.Severity {
			return a.Severity > b.Severity
		}
		return a.ID < b.ID
	})
	return out
}

type rawFinding struct {
	rec       vulndb.Record
	ecosystem string
	fixed     string
	sev       Severity
	score     float64
	vector    string
	undecided string
}

// affects evaluates one affected entry for the query's version per the OSV
// spec: SEMVER and ECOSYSTEM ranges (GIT ranges name commits and are
// skipped), then listed versions. It returns the fixed version above the
// installed one, if any. A range whose bounds cannot be ordered against the
// installed version makes the entry affect it, with the reason in
// undecided, unless another range or a listed version decides it.
func affects(a vulndb.Affected, q query) (hit bool, fixed, undecided string) {
	for _, r := range a.Ranges {
		o, v := q.order, q.parsed
		switch r.Type {
		case "SEMVER":
			o, v = semverOrdering, q.semver
		case "ECOSYSTEM":
		default:
			continue
		}
		in, f, err := inRange(r.Events, v, q.version, o)
		if err != nil {
			if undecided == "" {
				undecided = fmt.Sprintf("%s range: %v", r.Type, err)
			}
			continue
		}
		if in {
			hit = true
			if f != "" && (fixed == "" || o.total(f, fixed) < 0) {
				fixed = f
			}
		}
	}
	if !hit {
		for _, lv := range a.Versions {
			if lv == q.version {
				hit = true
				break
			}
			// A listed text that is not a version cannot equal the
			// installed version, which is one.
			if p, err := q.order.version(lv); err == nil {
				if c, err := q.order.compare(p, q.parsed, lv, q.version); err == nil && c == 0 {
					hit = true
					break
				}
			}
		}
	}
	if hit {
		return true, fixed, ""
	}
	if undecided != "" {
		return true, "", undecided
	}
	return false, "", ""
}

type event struct {
	kind    byte // 'i' introduced, 'f' fixed, 'l' last_affected, 'x' limit
	version string
	parsed  semantic.Version // nil for introduced "0"
}

// inRange applies the OSV range evaluation: events sorted by version
// (introduced "0" first), v affected after an introduced at or below it
// until a fixed at or below it, a last_affected below it or a limit at or
// below it. The returned fixed version is the first fixed event above v.
// It fails when an event's version is not a version of the ordering or
// cannot be ordered against another.
func inRange(evs []vulndb.Event, v semantic.Version, vtext string, o ordering) (bool, string, error) {
	list := make([]event, 0, len(evs))
	for _, e := range evs {
		var ev event
		switch {
		case e.Introduced != "":
			ev = event{kind: 'i', version: e.Introduced}
		case e.Fixed != "":
			ev = event{kind: 'f', version: e.Fixed}
		case e.LastAffected != "":
			ev = event{kind: 'l', version: e.LastAffected}
		case e.Limit != "" && e.Limit != "*":
			ev = event{kind: 'x', version: e.Limit}
		default:
			continue
		}
		if !zero(ev) {
			p, err := o.version(ev.version)
			if err != nil {
				return false, "", err
			}
			ev.parsed = p
		}
		list = append(list, ev)
	}
	var cmpErr error
	cmp := func(a, b semantic.Version, at, bt string) int {
		c, err := o.compare(a, b, at, bt)
		if err != nil && cmpErr == nil {
			cmpErr = err
		}
		return c
	}
	sort.SliceStable(list, func(i, j int) bool {
		if zero(list[i]) || zero(list[j]) {
			return zero(list[i]) && !zero(list[j])
		}
		return cmp(list[i].parsed, list[j].parsed, list[i].version, list[j].version) < 0
	})
	affected := false
	for _, e := range list {
		if zero(e) {
			affected = true
			continue
		}
		c := cmp(v, e.parsed, vtext, e.version)
		switch e.kind {
		case 'i':
			if c >= 0 {
				affected = true
			}
		case 'f', 'x':
			if c >= 0 {
				affected = false
			}
		case 'l':
			if c > 0 {
				affected = false
			}
		}
	}
	if cmpErr != nil {
		return false, "", cmpErr
	}
	if !affected {
		return false, "", nil
	}
	for _, e := range list {
		if e.kind == 'f' && cmp(e.parsed, v, e.version, vtext) > 0 {
			return true, e.version, cmpErr
		}
	}
	return true, "", cmpErr
}

// zero reports whether e is the introduced "0" that starts a range at the
// beginning of time.
func zero(e event) bool { return e.kind == 'i' && e.version == "0" }

// idRank orders identifiers for choosing a finding's ID: the ecosystem's
// own advisories first, then distribution per-CVE records, GHSA, CVE.
func idRank(id string) int {
	switch {
	case strings.HasPrefix(id, "CVE-"):
		return 3
	case strings.HasPrefix(id, "GHSA-"):
		return 2
	case strings.Contains(id, "-CVE-"):
		return 1
	}
	return 0
}

// merge groups a package's raw findings that share any identifier and
// turns each group into one finding.
func merge(p inventory.Package, raw []rawFinding, cmp func(a, b string) int) []Finding {
	parent := make([]int, len(raw))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	owner := map[string]int{}
	for i, f := range raw {
		for _, id := range ids(f.rec) {
			if j, ok := owner[id]; ok {
				parent[find(i)] = find(j)
			} else {
				owner[id] = i
			}
		}
	}
	groups := map[int][]rawFinding{}
	var roots []int
	for i := range raw {
		r := find(i)
		if _, ok := groups[r]; !ok {
			roots = append(roots, r)
		}
		groups[r] = append(groups[r], raw[i])
	}
	out := make([]Finding, 0, len(roots))
	for _, r := range roots {
		out = append(out, mergeGroup(p, groups[r], cmp))
	}
	return out
}

func ids(r vulndb.Record) []string {
	out := append([]string{r.ID}, r.Aliases...)
	return append(out, r.Upstream...)
}

func mergeGroup(p inventory.Package, g []rawFinding, cmp func(a, b string) int) Finding {
	all := map[string]bool{}
	for _, f := range g {
		for _, id := range ids(f.rec) {
			all[id] = true
		}
	}
	// The primary record: best-ranked id, then lowest id.
	best := 0
	for i, f := range g {
		bi, bf := g[best].rec.ID, f.rec.ID
		if idRank(bf) < idRank(bi) || idRank(bf) == idRank(bi) && bf < bi {
			best = i
		}
	}
	fd := Finding{Package: p, ID: g[best].rec.ID, Ecosystem: g[best].ecosystem, Summary: g[best].rec.Summary}
	delete(all, fd.ID)
	for id := range all {
		fd.Aliases = append(fd.Aliases, id)
	}
	sort.Strings(fd.Aliases)
	fixable := true
	var undecided []string
	for _, f := range g {
		if f.undecided != "" && !slices.Contains(undecided, f.undecided) {
			undecided = append(undecided, f.undecided)
		}
		if f.sev > fd.Severity || f.sev == fd.Severity && f.score > fd.CVSS {
			fd.Severity, fd.CVSS, fd.CVSSVector = f.sev, f.score, f.vector
		}
		if fd.CVSSVector == "" {
			fd.CVSSVector = f.vector
		}
		if fd.Summary == "" {
			fd.Summary = f.rec.Summary
		}
		if f.fixed == "" {
			fixable = false
		} else if fd.Fixed == "" || cmp(f.fixed, fd.Fixed) > 0 {
			fd.Fixed = f.fixed
		}
	}
	if !fixable {
		fd.Fixed = ""
	}
	fd.Undecided = strings.Join(undecided, "; ")
	fd.Fixable = fd.Fixed != ""
	return fd
}
