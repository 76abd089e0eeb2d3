package match

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/scan/inventory"
	"github.com/portcullis-dev/portcullis/scan/vulndb"
)

// osvFixtureDir returns the semantic package's comparison fixtures
// (semantic/testdata/*-versions*.txt) of the osv-scalibr version go.mod
// pins, from the module cache the build already filled. Without a go
// command it skips, and fails under CI=true.
func osvFixtureDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/google/osv-scalibr").Output()
	dir := filepath.Join(strings.TrimSpace(string(out)), "semantic", "testdata")
	if err == nil {
		if _, err = os.Stat(dir); err == nil {
			return dir
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("osv-scalibr's semantic fixtures not found (%v): CI must have the module downloaded", err)
	}
	t.Skipf("SKIPPED: osv-scalibr's semantic fixtures not found: %v", err)
	return ""
}

// fixtureLine is one "a <|=|> b" line of a fixture file.
type fixtureLine struct {
	file, a, b string
	line, want int
}

func readFixture(t *testing.T, dir, name string) []fixtureLine {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []fixtureLine
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "# ") || strings.HasPrefix(line, "// ") {
			continue
		}
		p := strings.Split(line, " ")
		want, ok := map[string]int{"<": -1, "=": 0, ">": 1}[p[min(1, len(p)-1)]]
		if len(p) != 3 || !ok {
			t.Fatalf("%s:%d: not \"a <|=|> b\": %q", name, n, line)
		}
		out = append(out, fixtureLine{file: name, line: n, a: p[0], b: p[2], want: want})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("%s: no comparisons", name)
	}
	return out
}

// osvFixtureFiles names each ecosystem's fixture files.
var osvFixtureFiles = map[string][]string{
	"Alpine":    {"alpine-versions.txt", "alpine-versions-generated.txt"},
	"Debian":    {"debian-versions.txt", "debian-versions-generated.txt"},
	"Maven":     {"maven-versions.txt", "maven-versions-generated.txt"},
	"PyPI":      {"pypi-versions.txt", "pypi-versions-generated.txt"},
	"npm":       {"semver-versions.txt"},
	"CRAN":      {"cran-versions.txt", "cran-versions-generated.txt"},
	"NuGet":     {"nuget-versions.txt"},
	"Packagist": {"packagist-versions.txt", "packagist-versions-generated.txt"},
	"Pub":       {"pub-versions.txt"},
	"Red Hat":   {"redhat-versions.txt"},
	"RubyGems":  {"rubygems-versions.txt", "rubygems-versions-generated.txt"},
	"Hackage":   {"hackage-versions.txt"},
}

// TestOSVFixturesCompare runs every comparison of osv-scalibr's semantic
// fixtures through CompareVersions and Compare, both ways round: each
// version parses, and the order is the fixture's.
func TestOSVFixturesCompare(t *testing.T) {
	dir := osvFixtureDir(t)
	for eco, files := range osvFixtureFiles {
		for _, name := range files {
			for _, l := range readFixture(t, dir, name) {
				got, err := CompareVersions(eco, l.a, l.b)
				if err != nil || got != l.want {
					t.Errorf("%s:%d: CompareVersions(%s, %q, %q) = %d, %v; want %d", l.file, l.line, eco, l.a, l.b, got, err, l.want)
				}
				if got := Compare(eco, l.b, l.a); got != -l.want {
					t.Errorf("%s:%d: Compare(%s, %q, %q) = %d, want %d", l.file, l.line, eco, l.b, l.a, got, -l.want)
				}
			}
		}
	}
}

// TestOSVFixturesMatch runs the fixtures of the ecosystems images carry
// through matching: for each "a op b", a package at version a against a
// record affecting everything below b (ECOSYSTEM range introduced "0",
// fixed b) is affected, with fix b, exactly when a < b; and a record whose
// last affected version is b, exactly when a <= b. Debian's fixtures run as
// Ubuntu too, the semver ones as npm, crates.io and (where a version is
// a Go module version) Go with a SEMVER range.
func TestOSVFixturesMatch(t *testing.T) {
	dir := osvFixtureDir(t)
	type run struct {
		eco, rangeType, file string
		os                   Distro
	}
	var runs []run
	for _, f := range osvFixtureFiles["Alpine"] {
		runs = append(runs, run{"Alpine", "ECOSYSTEM", f, Distro{ID: "alpine", VersionID: "3.20.3"}})
	}
	for _, f := range osvFixtureFiles["Debian"] {
		runs = append(runs, run{"Debian", "ECOSYSTEM", f, Distro{ID: "debian", VersionID: "12"}},
			run{"Ubuntu", "ECOSYSTEM", f, Distro{ID: "ubuntu", VersionID: "22.04"}})
	}
	for _, eco := range []string{"Maven", "PyPI"} {
		for _, f := range osvFixtureFiles[eco] {
			runs = append(runs, run{eco, "ECOSYSTEM", f, Distro{}})
		}
	}
	runs = append(runs, run{"npm", "SEMVER", "semver-versions.txt", Distro{}},
		run{"crates.io", "ECOSYSTEM", "semver-versions.txt", Distro{}},
		run{"Go", "SEMVER", "semver-versions.txt", Distro{}})
	release := map[string]string{"Alpine": "Alpine:v3.20", "Debian": "Debian:12", "Ubuntu": "Ubuntu:22.04:LTS"}
	for _, r := range runs {
		checked := 0
		for _, l := range readFixture(t, dir, r.file) {
			p := inventory.Package{Ecosystem: r.eco, Name: "pkg", Version: l.a}
			q, why := queryFor(p, r.os)
			if r.eco == "Go" && !parseSemver(l.a).ok {
				continue // not a Go module version: Skipped says so
			}
			if why != "" {
				t.Errorf("%s:%d: %s %q not checked: %s", l.file, l.line, r.eco, l.a, why)
				continue
			}
			eco := r.eco
			if rel, ok := release[r.eco]; ok {
				eco = rel
			}
			fixed := vulndb.Affected{Ecosystem: eco, Ranges: []vulndb.Range{{Type: r.rangeType,
				Events: []vulndb.Event{{Introduced: "0"}, {Fixed: l.b}}}}}
			hit, fix, undecided := affects(fixed, q)
			if undecided != "" || hit != (l.want < 0) || hit && fix != l.b {
				t.Errorf("%s:%d: %s %q, fixed %q: affected %v (fix %q, %s), want %v", l.file, l.line, r.eco, l.a, l.b, hit, fix, undecided, l.want < 0)
			}
			last := vulndb.Affected{Ecosystem: eco, Ranges: []vulndb.Range{{Type: r.rangeType,
				Events: []vulndb.Event{{Introduced: "0"}, {LastAffected: l.b}}}}}
			hit, _, undecided = affects(last, q)
			if undecided != "" || hit != (l.want <= 0) {
				t.Errorf("%s:%d: %s %q, last affected %q: affected %v (%s), want %v", l.file, l.line, r.eco, l.a, l.b, hit, undecided, l.want <= 0)
			}
			checked++
		}
		if checked == 0 {
			t.Errorf("%s as %s: nothing checked", r.file, r.eco)
		}
	}
}
