package match

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/scan/inventory"
)

// TestMatchUndecidedRange: a record whose range bound is not a version of
// the ecosystem (a Debian epoch that is not a number) cannot be evaluated;
// the package is reported as affected, with no fix and the reason, rather
// than left out as "not affected".
func TestMatchUndecidedRange(t *testing.T) {
	dir := t.TempDir()
	rec := `{"id": "DEBIAN-CVE-2099-0001", "modified": "2026-01-01T00:00:00Z",
	  "affected": [{"package": {"ecosystem": "Debian:12", "name": "zlib"},
	    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "x:1.3-1"}]}]}]}`
	if err := os.WriteFile(filepath.Join(dir, "DEBIAN-CVE-2099-0001.json"), []byte(rec), 0o644); err != nil {
		t.Fatal(err)
	}
	db := openDB(t, dir)
	pkgs := []inventory.Package{{Ecosystem: "Debian", Name: "zlib1g", SourceName: "zlib", Version: "1:1.2.13.dfsg-1"}}
	got := Match(db, pkgs, Distro{ID: "debian", VersionID: "12"})
	if len(got) != 1 {
		t.Fatalf("findings %+v, want the undecidable record reported", got)
	}
	f := got[0]
	if f.ID != "DEBIAN-CVE-2099-0001" || f.Fixable || f.Fixed != "" ||
		!strings.Contains(f.Undecided, `"x:1.3-1" is not a Debian version`) {
		t.Errorf("finding %+v: want affected, no fix, Undecided naming the bad bound", f)
	}
	// A decidable range in the same entry decides it.
	rec = strings.Replace(rec, `"ranges": [`, `"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:1.2.13.dfsg-2"}]}, `, 1)
	if err := os.WriteFile(filepath.Join(dir, "DEBIAN-CVE-2099-0001.json"), []byte(rec), 0o644); err != nil {
		t.Fatal(err)
	}
	got = Match(openDB(t, dir), pkgs, Distro{ID: "debian", VersionID: "12"})
	if len(got) != 1 || got[0].Undecided != "" || got[0].Fixed != "1:1.2.13.dfsg-2" {
		t.Errorf("findings %+v, want decided by the valid range, fixed 1:1.2.13.dfsg-2", got)
	}
}

// TestSkippedInvalidVersion: an installed version that is not a version of
// its ecosystem is not matched, and Skipped says why in the ecosystem's
// terms. (OSV's ordering reads any text as a PyPI, Maven, Alpine or npm
// version, ordering what is not one as it defines; Debian's epoch must be
// a number, and a Go module version must be a semantic version.)
func TestSkippedInvalidVersion(t *testing.T) {
	pkgs := []inventory.Package{
		{Ecosystem: "Debian", Name: "zlib1g", Version: "x:1.2"},
		{Ecosystem: "Ubuntu", Name: "libc6", Version: "2.35-0ubuntu3", SourceVersion: "e:2.35-0ubuntu3"},
		{Ecosystem: "Go", Name: "example.com/m", Version: "(devel)"},
		{Ecosystem: "PyPI", Name: "urllib3", Version: "2.0.7"},
	}
	got := Skipped(pkgs, Distro{ID: "debian", VersionID: "12"})
	want := map[string]string{
		"zlib1g":        `version "x:1.2" is not a Debian version`,
		"libc6":         `version "e:2.35-0ubuntu3" is not a Debian version`,
		"example.com/m": `version "(devel)" is not a semantic version`,
	}
	if len(got) != len(want) {
		t.Errorf("skipped %+v, want %d", got, len(want))
	}
	for _, u := range got {
		if w := want[u.Package.Name]; w == "" || !strings.HasPrefix(u.Reason, w) || u.ReleaseUnknown {
			t.Errorf("%s skipped: %q (release unknown %v), want %q...", u.Package.Name, u.Reason, u.ReleaseUnknown, w)
		}
	}
	// Without the release, OS packages are skipped for that.
	got = Skipped(pkgs[:1], Distro{ID: "debian"})
	if len(got) != 1 || !got[0].ReleaseUnknown {
		t.Errorf("skipped %+v, want zlib1g with ReleaseUnknown", got)
	}
}

// TestCompareVersionsErrors: CompareVersions names the ecosystem and the
// text it could not order; Compare still orders them totally.
func TestCompareVersionsErrors(t *testing.T) {
	for _, c := range []struct{ eco, a, b, want string }{
		{"Debian:12", "x:1.0", "1.0", `"x:1.0" is not a Debian version`},
		{"Ubuntu:22.04:LTS", "1.0", "1.0:1", `"1.0:1" is not a Ubuntu version`},
		{"CRAN", "1.0", "1.0-a", `"1.0-a" is not a CRAN version`},
		{"Alpine", "", "1.0", "empty Alpine version"},
		{"Gentoo", "1", "2", `no version ordering for ecosystem "Gentoo"`},
	} {
		_, err := CompareVersions(c.eco, c.a, c.b)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("CompareVersions(%s, %q, %q) = %v, want %q...", c.eco, c.a, c.b, err, c.want)
		}
	}
	if Compare("Debian", "x:1.0", "0:0") != -1 || Compare("debian", "1.0~rc1", "1.0") != -1 || Compare("ubuntu:22.04:LTS", "1.0", "1.0-0") != 0 {
		t.Error("Compare: invalid text first, names matched ignoring case")
	}
}
