package match

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/portcullis-dev/portcullis/scan/inventory"
	"github.com/portcullis-dev/portcullis/scan/vulndb/vulndbtest"
)

// platformIDs returns the findings' ids, sorted.
func platformIDs(fs []Finding) []string {
	var ids []string
	for _, f := range fs {
		ids = append(ids, f.ID)
	}
	slices.Sort(ids)
	return ids
}

// TestMatchPlatformGoVulnDB matches golang.org/x/crypto at a 2019 version
// against real records limited to platforms: GO-2024-2961 (acme/autocert, on
// Windows only) and GO-2022-0209 (salsa20, on amd64 only), beside
// GO-2020-0012 (ssh), which every platform has. A linux/amd64 binary is
// affected by GO-2022-0209 and not GO-2024-2961; a windows/arm64 one the
// other way round; a binary whose platform is unknown by all three, as
// before platforms were known; one whose GOOS alone is known by what that
// GOOS admits.
func TestMatchPlatformGoVulnDB(t *testing.T) {
	osv := vulndbtest.GoOSVDir(t)
	db := openDB(t, filepath.Join(osv, "GO-2024-2961.json"), filepath.Join(osv, "GO-2022-0209.json"), filepath.Join(osv, "GO-2020-0012.json"))
	const version = "v0.0.0-20190308221718-c2843e01d9a2"
	for _, c := range []struct {
		goos, goarch string
		want         []string
	}{
		{"linux", "amd64", []string{"GO-2020-0012", "GO-2022-0209"}},
		{"windows", "amd64", []string{"GO-2020-0012", "GO-2022-0209", "GO-2024-2961"}},
		{"windows", "arm64", []string{"GO-2020-0012", "GO-2024-2961"}},
		{"linux", "arm64", []string{"GO-2020-0012"}},
		{"", "", []string{"GO-2020-0012", "GO-2022-0209", "GO-2024-2961"}},
		{"linux", "", []string{"GO-2020-0012", "GO-2022-0209"}},
		{"", "arm64", []string{"GO-2020-0012", "GO-2024-2961"}},
	} {
		p := inventory.Package{Ecosystem: "Go", Name: "golang.org/x/crypto", Version: version, Path: "/app", GOOS: c.goos, GOARCH: c.goarch}
		if got := platformIDs(Match(db, []inventory.Package{p}, Distro{})); !slices.Equal(got, c.want) {
			t.Errorf("%s/%s: %v, want %v", c.goos, c.goarch, got, c.want)
		}
	}
}

// windowsOnly is a Go record whose every affected package is limited to
// Windows, in two entries with different ranges, and an entry for another
// module that names no packages.
const windowsOnly = `{"id":"GO-9999-0001","modified":"2026-01-01T00:00:00Z","summary":"Windows only",
"affected":[
 {"package":{"ecosystem":"Go","name":"example.com/win"},
  "ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.0"}]}],
  "ecosystem_specific":{"imports":[{"path":"example.com/win/a","goos":["windows"]},{"path":"example.com/win/b","goos":["windows"],"goarch":["amd64","arm64"]}]}},
 {"package":{"ecosystem":"Go","name":"example.com/win"},
  "ranges":[{"type":"SEMVER","events":[{"introduced":"2.0.0"},{"fixed":"2.1.0"}]}],
  "ecosystem_specific":{"imports":[{"path":"example.com/win/c","goos":["windows"]}]}},
 {"package":{"ecosystem":"Go","name":"example.com/any"},
  "ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.0.0"}]}]}
]}`

// partlyWindows is a Go record with one entry limited to Windows and one, for
// later versions, limited to nothing: which entry applies decides it.
const partlyWindows = `{"id":"GO-9999-0002","modified":"2026-01-01T00:00:00Z","summary":"partly Windows",
"affected":[
 {"package":{"ecosystem":"Go","name":"example.com/win"},
  "ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.1.0"}]}],
  "ecosystem_specific":{"imports":[{"path":"example.com/win/a","goos":["windows"]}]}},
 {"package":{"ecosystem":"Go","name":"example.com/win"},
  "ranges":[{"type":"SEMVER","events":[{"introduced":"1.1.0"},{"fixed":"1.3.0"}]}],
  "ecosystem_specific":{"imports":[{"path":"example.com/win/a","goos":["windows"]},{"path":"example.com/win/d"}]}}
]}`

// TestMatchPlatformWindowsOnly checks the platform rule on records limited
// to Windows: a linux binary is not affected, a windows one and one of
// unknown platform are; an entry without packages, or with one package not
// limited, affects every platform.
func TestMatchPlatformWindowsOnly(t *testing.T) {
	dir := t.TempDir()
	for name, rec := range map[string]string{"a.json": windowsOnly, "b.json": partlyWindows} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(rec), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db := openDB(t, dir)
	type key struct{ name, version, goos, goarch string }
	for k, want := range map[key][]string{
		{"example.com/win", "v1.0.0", "linux", "amd64"}:   nil,
		{"example.com/win", "v1.0.0", "windows", "amd64"}: {"GO-9999-0001", "GO-9999-0002"},
		{"example.com/win", "v1.0.0", "windows", "386"}:   {"GO-9999-0001", "GO-9999-0002"},
		{"example.com/win", "v1.0.0", "", ""}:             {"GO-9999-0001", "GO-9999-0002"},
		{"example.com/win", "v1.0.0", "", "amd64"}:        {"GO-9999-0001", "GO-9999-0002"},
		{"example.com/win", "v1.0.0", "linux", ""}:        nil,
		{"example.com/win", "v1.1.0", "linux", "amd64"}:   {"GO-9999-0002"},
		{"example.com/win", "v1.1.0", "windows", "amd64"}: {"GO-9999-0001", "GO-9999-0002"},
		{"example.com/win", "v2.0.5", "darwin", "arm64"}:  nil,
		{"example.com/win", "v2.0.5", "windows", "arm64"}: {"GO-9999-0001"},
		{"example.com/win", "v2.0.5", "", ""}:             {"GO-9999-0001"},
		{"example.com/any", "v0.9.0", "linux", "amd64"}:   {"GO-9999-0001"},
		{"example.com/any", "v0.9.0", "", ""}:             {"GO-9999-0001"},
	} {
		p := inventory.Package{Ecosystem: "Go", Name: k.name, Version: k.version, Path: "/app", GOOS: k.goos, GOARCH: k.goarch}
		got := Match(db, []inventory.Package{p}, Distro{})
		if ids := platformIDs(got); !slices.Equal(ids, want) {
			t.Errorf("%s@%s on %s/%s: %v, want %v", k.name, k.version, k.goos, k.goarch, ids, want)
		}
		for _, f := range got {
			if f.Package != p {
				t.Errorf("%s: finding for %+v, want the package as found, platform included", f.ID, f.Package)
			}
		}
	}
}

// TestMatchPlatformOtherEcosystems checks that GOOS and GOARCH, which only Go
// packages carry, change nothing for a package of another ecosystem.
func TestMatchPlatformOtherEcosystems(t *testing.T) {
	db := fixtureDB(t)
	p := inventory.Package{Ecosystem: "npm", Name: "lodash", Version: "4.17.15", Path: "/app/package.json"}
	want := platformIDs(Match(db, []inventory.Package{p}, Distro{}))
	if len(want) == 0 {
		t.Fatal("lodash 4.17.15 has no findings in the fixtures")
	}
	p.GOOS, p.GOARCH = "plan9", "mips"
	if got := platformIDs(Match(db, []inventory.Package{p}, Distro{})); !slices.Equal(got, want) {
		t.Errorf("with a platform: %v, want %v", got, want)
	}
}
