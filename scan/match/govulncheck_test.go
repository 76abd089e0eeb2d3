package match_test

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/semver"
	govulncheck "golang.org/x/vuln/scan"

	"github.com/portcullis-dev/portcullis/internal/scantest"
	"github.com/portcullis-dev/portcullis/scan/inventory"
	"github.com/portcullis-dev/portcullis/scan/match"
	"github.com/portcullis-dev/portcullis/scan/vulndb"
	"github.com/portcullis-dev/portcullis/scan/vulndb/vulndbtest"
)

// vulnKey is one vulnerability finding as both tools state it: the advisory, the module,
// the version found in the binary and the version that fixes it ("" when none does).
// Versions are compared without their "v" or "go" prefix (govulncheck writes v0.3.5 and
// v1.26.8, the Go advisories and our stdlib version 0.3.8 and 1.26.8).
type vulnKey struct{ id, module, found, fixed string }

func (k vulnKey) String() string {
	fixed := k.fixed
	if fixed == "" {
		fixed = "(no fix)"
	}
	return fmt.Sprintf("%s %s@%s fixed %s", k.id, k.module, k.found, fixed)
}

func bareVersion(v string) string {
	if rest, ok := strings.CutPrefix(v, "go"); ok {
		return rest
	}
	return strings.TrimPrefix(v, "v")
}

// TestGovulncheckAgreement builds Go programs against module versions with real
// advisories (scantest.AdvisoryPrograms, the local toolchain's standard library included)
// and checks that the scanner — the Go binary extractor, then Match against a database
// imported from golang.org/x/vulndb's OSV records — finds exactly the (advisory, module,
// found version, fixed version) set that govulncheck -mode=binary -scan=module reports
// for each binary, run in-process (golang.org/x/vuln/scan) on a file:// database made
// from the same records. Module mode reports every advisory whose affected ranges
// include a module's version, reachable or not, which is what the scanner reports too;
// the standard library ("stdlib", at the toolchain's version) is compared like any other
// module. Withdrawn records are skipped by both.
//
// Both drop an advisory whose every affected package is limited to other platforms
// (ecosystem_specific.imports[].goos/goarch, e.g. Windows-only GO-2024-2961) than the
// binary's GOOS/GOARCH: the comparison is plain equality. That the platform rule is
// exercised is checked too: the same scan with the binary's platform unknown finds
// advisories that both leave out for the binary's own platform.
func TestGovulncheckAgreement(t *testing.T) {
	osvDir := vulndbtest.GoOSVDir(t)
	ours := filepath.Join(t.TempDir(), "vulndb")
	if _, err := vulndb.Import(ours, osvDir); err != nil {
		t.Fatal(err)
	}
	db, err := vulndb.Open(ours)
	if err != nil {
		t.Fatal(err)
	}
	theirs := govulncheckDB(t, osvDir)

	compared, excluded, advisories := 0, 0, map[string]bool{}
	for _, p := range scantest.AdvisoryPrograms() {
		t.Run(p.Name, func(t *testing.T) {
			bin := scantest.BuildGoProgram(t, p)
			want := runGovulncheck(t, theirs, bin)
			// The same scan over the bare record directory, which govulncheck indexes
			// itself, checks the index govulncheckDB wrote.
			if flat := runGovulncheck(t, osvDir, bin); !equalKeys(flat, want) {
				t.Fatalf("govulncheck disagrees with itself on the database written here:\n%s", diffKeys("indexed by govulncheck", flat, "indexed here", want))
			}
			goos, goarch := binaryPlatform(t, bin)
			got, anyPlatform := scanBinary(t, db, bin, goos, goarch)
			if !equalKeys(got, want) {
				t.Errorf("portcullis and govulncheck differ for %s (%s/%s):\n%s", p.Name, goos, goarch, diffKeys("govulncheck", want, "portcullis", got))
			}
			var platformOnly []string
			for k := range anyPlatform {
				if !got[k] {
					platformOnly = append(platformOnly, k.String())
				}
			}
			for k := range got {
				if !anyPlatform[k] {
					t.Errorf("%s found for %s/%s but not for an unknown platform", k, goos, goarch)
				}
			}
			sort.Strings(platformOnly)
			excluded += len(platformOnly)
			if len(want) == 0 {
				t.Errorf("govulncheck found nothing in %s: the program no longer exercises any advisory", p.Name)
			}
			modules := map[string]bool{}
			for k := range want {
				modules[k.module] = true
			}
			for m := range p.Require {
				if to, ok := p.Replace[m]; ok {
					m, _, _ = strings.Cut(to, " ")
				}
				if !modules[m] {
					t.Errorf("no advisory found for %s in %s: the program no longer exercises it", m, p.Name)
				}
			}
			compared += len(want)
			for k := range want {
				advisories[k.id] = true
			}
			t.Logf("%s: %d findings agree: %s", p.Name, len(want), strings.Join(sortedKeys(want), "; "))
			if len(platformOnly) > 0 {
				t.Logf("%s: left out by both, their records excluding %s/%s: %s", p.Name, goos, goarch, strings.Join(platformOnly, "; "))
			}
		})
	}
	if excluded == 0 && !t.Failed() {
		t.Error("no advisory was left out for its platform: the programs no longer exercise the platform rule")
	}
	t.Logf("%d findings (%d distinct advisories) agree over %d binaries; %d more, for other platforms, are left out by both",
		compared, len(advisories), len(scantest.AdvisoryPrograms()), excluded)
}

// binaryPlatform returns the GOOS and GOARCH recorded in bin's build information.
func binaryPlatform(t *testing.T, bin string) (string, string) {
	t.Helper()
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var goos, goarch string
	for _, s := range bi.Settings {
		switch s.Key {
		case "GOOS":
			goos = s.Value
		case "GOARCH":
			goarch = s.Value
		}
	}
	if goos == "" || goarch == "" {
		t.Fatalf("%s records no GOOS/GOARCH", bin)
	}
	return goos, goarch
}

// scanBinary runs the Go binary extractor on bin, checks that it records the binary's
// platform, goos/goarch, on every package, and matches the modules against db: as found,
// and with their platform unknown.
func scanBinary(t *testing.T, db *vulndb.DB, bin, goos, goarch string) (found, anyPlatform map[vulnKey]bool) {
	t.Helper()
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	pkgs, err := inventory.GoBinary{}.Extract("/"+filepath.Base(bin), data)
	if err != nil || len(pkgs) == 0 {
		t.Fatalf("extracting %s: %d packages, %v", bin, len(pkgs), err)
	}
	keys := func(pkgs []inventory.Package) map[vulnKey]bool {
		out := map[vulnKey]bool{}
		for _, f := range match.Match(db, pkgs, match.Distro{}) {
			out[vulnKey{f.ID, f.Package.Name, bareVersion(f.Package.Version), bareVersion(f.Fixed)}] = true
		}
		return out
	}
	found = keys(pkgs)
	unknown := slices.Clone(pkgs)
	for i, p := range unknown {
		if p.GOOS != goos || p.GOARCH != goarch {
			t.Fatalf("%s: package %s recorded for %s/%s, want %s/%s", bin, p.Name, p.GOOS, p.GOARCH, goos, goarch)
		}
		unknown[i].GOOS, unknown[i].GOARCH = "", ""
	}
	return found, keys(unknown)
}

// runGovulncheck runs govulncheck -mode=binary -scan=module in-process on bin against the
// database at dbDir and returns its findings.
func runGovulncheck(t *testing.T, dbDir, bin string) map[vulnKey]bool {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := govulncheck.Command(context.Background(), "-mode=binary", "-scan=module", "-db", "file://"+dbDir, "-format", "json", bin)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("govulncheck: %v\n%s", err, stderr.String())
	}
	out := map[vulnKey]bool{}
	dec := json.NewDecoder(&stdout)
	for {
		var msg struct {
			Finding *struct {
				OSV          string `json:"osv"`
				FixedVersion string `json:"fixed_version"`
				Trace        []struct {
					Module  string `json:"module"`
					Version string `json:"version"`
				} `json:"trace"`
			} `json:"finding"`
		}
		if err := dec.Decode(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("reading govulncheck's JSON: %v", err)
		}
		f := msg.Finding
		if f == nil {
			continue
		}
		if len(f.Trace) == 0 {
			t.Fatalf("govulncheck finding %s has no trace", f.OSV)
		}
		out[vulnKey{f.OSV, f.Trace[0].Module, bareVersion(f.Trace[0].Version), bareVersion(f.FixedVersion)}] = true
	}
	return out
}

// govulncheckDB writes the OSV records in osvDir as a Go vulnerability database in the
// layout govulncheck reads from file:// URLs (https://go.dev/security/vuln/database#api):
// index/db.json ({"modified": the latest record's modified time}), index/modules.json
// (each module path with the id, modified time and latest non-superseded fix of each
// record affecting it, sorted by path and id) and ID/<id>.json (the records as they are).
func govulncheckDB(t *testing.T, osvDir string) string {
	t.Helper()
	dir := t.TempDir()
	for _, sub := range []string{"index", "ID"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	type moduleVuln struct {
		ID       string    `json:"id"`
		Modified time.Time `json:"modified"`
		Fixed    string    `json:"fixed,omitempty"`
	}
	modules := map[string][]moduleVuln{}
	var latest time.Time
	files, err := filepath.Glob(filepath.Join(osvDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no OSV records in %s: %v", osvDir, err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			ID       string    `json:"id"`
			Modified time.Time `json:"modified"`
			Affected []struct {
				Package struct {
					Name string `json:"name"`
				} `json:"package"`
				Ranges []osvRange `json:"ranges"`
			} `json:"affected"`
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if e.ID+".json" != filepath.Base(f) {
			t.Fatalf("%s holds record %s", f, e.ID)
		}
		if e.Modified.After(latest) {
			latest = e.Modified
		}
		for _, a := range e.Affected {
			modules[a.Package.Name] = append(modules[a.Package.Name], moduleVuln{e.ID, e.Modified, nonSupersededFix(a.Ranges)})
		}
		if err := os.WriteFile(filepath.Join(dir, "ID", e.ID+".json"), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	type moduleMeta struct {
		Path  string       `json:"path"`
		Vulns []moduleVuln `json:"vulns"`
	}
	index := make([]moduleMeta, 0, len(modules))
	for path, vulns := range modules {
		sort.SliceStable(vulns, func(i, j int) bool { return vulns[i].ID < vulns[j].ID })
		index = append(index, moduleMeta{path, vulns})
	}
	sort.Slice(index, func(i, j int) bool { return index[i].Path < index[j].Path })
	for name, v := range map[string]any{"db.json": map[string]time.Time{"modified": latest}, "modules.json": index} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "index", name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

type osvRange struct {
	Type   string `json:"type"`
	Events []struct {
		Introduced string `json:"introduced"`
		Fixed      string `json:"fixed"`
	} `json:"events"`
}

// nonSupersededFix is the index's "fixed" for one affected entry, as the Go
// vulnerability database computes it: the latest fixed version of its SEMVER ranges,
// or none when a range is introduced again after it.
func nonSupersededFix(ranges []osvRange) string {
	less := func(a, b string) bool { return semver.Compare("v"+bareVersion(a), "v"+bareVersion(b)) < 0 }
	latest := ""
	for _, r := range ranges {
		if r.Type != "SEMVER" {
			continue
		}
		for _, e := range r.Events {
			if e.Fixed != "" && (latest == "" || less(latest, e.Fixed)) {
				latest = e.Fixed
			}
		}
		for _, e := range r.Events {
			if e.Introduced != "" && e.Introduced != "0" && (latest == "" || less(latest, e.Introduced)) {
				latest = ""
				break
			}
		}
	}
	return latest
}

func equalKeys(a, b map[vulnKey]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// diffKeys lists the findings only one side has, each side named.
func diffKeys(aName string, a map[vulnKey]bool, bName string, b map[vulnKey]bool) string {
	var lines []string
	for k := range a {
		if !b[k] {
			lines = append(lines, fmt.Sprintf("  only %s: %s", aName, k))
		}
	}
	for k := range b {
		if !a[k] {
			lines = append(lines, fmt.Sprintf("  only %s: %s", bName, k))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func sortedKeys(m map[vulnKey]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k.String())
	}
	sort.Strings(out)
	return out
}
