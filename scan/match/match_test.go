package match

import (
	"path/filepath"
	"testing"

	"github.com/portcullis-dev/portcullis/scan/inventory"
	"github.com/portcullis-dev/portcullis/scan/vulndb"
	"github.com/portcullis-dev/portcullis/scan/vulndb/vulndbtest"
)

func openDB(t *testing.T, sources ...string) *vulndb.DB {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "db")
	if _, err := vulndb.Import(dst, sources...); err != nil {
		t.Fatal(err)
	}
	db, err := vulndb.Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func fixtureDB(t *testing.T) *vulndb.DB {
	return openDB(t, "../vulndb/testdata/debian", "../vulndb/testdata/alpine", "../vulndb/testdata/ghsa")
}

// byID indexes findings by package name and id.
func byID(fs []Finding) map[string]Finding {
	m := map[string]Finding{}
	for _, f := range fs {
		m[f.Package.Name+" "+f.ID] = f
	}
	return m
}

func TestMatchGoVulnDB(t *testing.T) {
	db := openDB(t, vulndbtest.GoOSVDir(t))
	pkgs := []inventory.Package{
		{Ecosystem: "Go", Name: "golang.org/x/text", Version: "v0.3.5", Path: "/app"},
		{Ecosystem: "Go", Name: "golang.org/x/net", Version: "v0.0.0-20220722155237-a158d28d115b", Path: "/app"},
		{Ecosystem: "Go", Name: "stdlib", Version: "1.22.1", Path: "/app"},
		{Ecosystem: "Go", Name: "golang.org/x/text", Version: "v0.99.0", Path: "/other"},
		{Ecosystem: "Go", Name: "example.com/local", Version: "(devel)", Path: "/app"},
	}
	got := byID(Match(db, pkgs, Distro{ID: "debian", VersionID: "12"}))
	for key, fixed := range map[string]string{
		"golang.org/x/text GO-2022-1059": "0.3.8",
		"golang.org/x/text GO-2021-0113": "0.3.7",
		"golang.org/x/net GO-2022-0969":  "0.0.0-20220906165146-f3363e06e74c",
		"golang.org/x/net GO-2022-1144":  "0.4.0",
		"golang.org/x/net GO-2024-2687":  "0.23.0",
		"stdlib GO-2024-2687":            "1.22.2",
		"stdlib GO-2025-3503":            "1.23.7",
		"golang.org/x/net GO-2023-1571":  "0.7.0",
		"golang.org/x/text GO-2026-5970": "0.39.0",
		"golang.org/x/net GO-2023-2102":  "0.17.0",
		"stdlib GO-2025-3447":            "1.22.12",
		"golang.org/x/text GO-2026-6629": "0.41.0",
		"golang.org/x/net GO-2024-3333":  "0.33.0",
		"golang.org/x/net GO-2025-3503":  "0.36.0",
		"golang.org/x/net GO-2023-1988":  "0.13.0",
		"golang.org/x/net GO-2025-3595":  "0.38.0",
		"golang.org/x/net GO-2026-4440":  "0.45.0",
		"golang.org/x/net GO-2023-1495":  "0.1.1-0.20221104162952-702349b0e862",
	} {
		f, ok := got[key]
		if !ok {
			t.Errorf("missing %s", key)
			continue
		}
		if f.Fixed != fixed || !f.Fixable {
			t.Errorf("%s: fixed %q fixable %v, want %q", key, f.Fixed, f.Fixable, fixed)
		}
		if f.Severity != SeverityUnknown || f.Ecosystem != "Go" {
			t.Errorf("%s: severity %v ecosystem %s; Go records state no severity", key, f.Severity, f.Ecosystem)
		}
	}
	f := got["golang.org/x/text GO-2022-1059"]
	if len(f.Aliases) != 2 || f.Aliases[0] != "CVE-2022-32149" || f.Aliases[1] != "GHSA-69ch-w2m2-3vjp" || f.Summary == "" {
		t.Errorf("GO-2022-1059: %+v", f)
	}
	// Fixed before the installed version: not reported.
	if _, ok := got["golang.org/x/text GO-2020-0015"]; ok {
		t.Error("GO-2020-0015 (fixed in 0.3.3) reported for v0.3.5")
	}
	for k, f := range got {
		if f.Package.Path == "/other" || f.Package.Name == "example.com/local" {
			t.Errorf("unexpected %s for %+v", k, f.Package)
		}
	}
}

func TestMatchDebian(t *testing.T) {
	db := fixtureDB(t)
	pkgs := []inventory.Package{
		// Binary package libssl3 from source openssl, a binNMU of the source version.
		{Ecosystem: "Debian", Name: "libssl3", Version: "3.0.11-1~deb12u2+b1", SourceName: "openssl", SourceVersion: "3.0.11-1~deb12u2", Path: "/var/lib/dpkg/status"},
		{Ecosystem: "Debian", Name: "openssl", Version: "3.0.14-1~deb12u2", SourceName: "openssl", Path: "/var/lib/dpkg/status"},
		{Ecosystem: "Debian", Name: "login", Version: "1:4.13+dfsg1-1", SourceName: "shadow", Path: "/var/lib/dpkg/status"},
	}
	fs := Match(db, pkgs, Distro{ID: "debian", VersionID: "12"})
	if len(fs) != 2 {
		t.Fatalf("got %d findings, want 2: %+v", len(fs), fs)
	}
	// DSA-5764-1 and DEBIAN-CVE-2024-5535 are one vulnerability (CVE-2024-5535).
	ssl := fs[0]
	if ssl.Package.Name != "libssl3" || ssl.ID != "DSA-5764-1" || ssl.Ecosystem != "Debian:12" {
		t.Errorf("libssl3: %+v", ssl)
	}
	if len(ssl.Aliases) != 2 || ssl.Aliases[0] != "CVE-2024-5535" || ssl.Aliases[1] != "DEBIAN-CVE-2024-5535" {
		t.Errorf("aliases %v", ssl.Aliases)
	}
	// Both fixes are above the installed version; the later one satisfies both.
	if ssl.Fixed != "3.0.14-1~deb12u2" || !ssl.Fixable || ssl.Severity != SeverityLow {
		t.Errorf("libssl3 fix %q severity %v", ssl.Fixed, ssl.Severity)
	}
	// No fixed event: affected, not fixable; a CVSS vector beats the urgency.
	sh := fs[1]
	if sh.Package.Name != "login" || sh.ID != "DEBIAN-CVE-2023-4641" || sh.Fixable || sh.Fixed != "" ||
		sh.Severity != SeverityMedium || sh.CVSS != 4.7 {
		t.Errorf("shadow: %+v", sh)
	}

	// Debian 11: the deb11 fixes apply; DSA-5417-1 too.
	old := []inventory.Package{{Ecosystem: "Debian", Name: "libssl1.1", Version: "1.1.1n-0+deb11u4", SourceName: "openssl"}}
	got := byID(Match(db, old, Distro{ID: "debian", VersionID: "11"}))
	if f := got["libssl1.1 DSA-5417-1"]; f.Fixed != "1.1.1n-0+deb11u5" {
		t.Errorf("DSA-5417-1: %+v", got)
	}
	if f := got["libssl1.1 DEBIAN-CVE-2024-5535"]; f.Fixed != "1.1.1w-0+deb11u2" {
		t.Errorf("DEBIAN-CVE-2024-5535 on 11: %+v", got)
	}
	// Unknown release (testing/sid has no VERSION_ID): nothing is claimed.
	if fs := Match(db, old, Distro{ID: "debian"}); len(fs) != 0 {
		t.Errorf("no release: %+v", fs)
	}
	// An Ubuntu image's dpkg packages are not Debian packages.
	if fs := Match(db, old, Distro{ID: "ubuntu", VersionID: "22.04"}); len(fs) != 0 {
		t.Errorf("ubuntu: %+v", fs)
	}
}

func TestMatchAlpine(t *testing.T) {
	db := fixtureDB(t)
	pkgs := []inventory.Package{
		{Ecosystem: "Alpine", Name: "libcrypto3", Version: "3.3.0-r2", SourceName: "openssl"},
		{Ecosystem: "Alpine", Name: "libssl3", Version: "3.3.1-r3", SourceName: "openssl"},
		{Ecosystem: "Alpine", Name: "openssl", Version: "3.3.2-r0", SourceName: "openssl"},
	}
	got := byID(Match(db, pkgs, Distro{ID: "alpine", VersionID: "3.20.3"}))
	want := map[string]string{
		"libcrypto3 ALPINE-CVE-2024-6119": "3.3.2-r0",
		"libcrypto3 ALPINE-CVE-2024-4741": "3.3.1-r0",
		"libssl3 ALPINE-CVE-2024-6119":    "3.3.2-r0",
	}
	if len(got) != len(want) {
		t.Errorf("got %d findings, want %d: %v", len(got), len(want), got)
	}
	for k, fixed := range want {
		if got[k].Fixed != fixed {
			t.Errorf("%s: fixed %q want %q", k, got[k].Fixed, fixed)
		}
	}
	if f := got["libssl3 ALPINE-CVE-2024-6119"]; f.Severity != SeverityHigh || f.CVSS != 7.5 || f.Ecosystem != "Alpine:v3.20" {
		t.Errorf("severity: %+v", f)
	}
	if f := got["libcrypto3 ALPINE-CVE-2024-4741"]; f.Severity != SeverityUnknown {
		t.Errorf("no severity stated, got %v", f.Severity)
	}
	// Alpine 3.19's range differs.
	got = byID(Match(db, pkgs[:1], Distro{ID: "alpine", VersionID: "3.19.1"}))
	if len(got) != 0 {
		t.Errorf("3.19 with 3.3.0: %v", got)
	}
}

func TestMatchLanguageEcosystems(t *testing.T) {
	db := fixtureDB(t)
	pkgs := []inventory.Package{
		{Ecosystem: "npm", Name: "lodash", Version: "4.17.15"},
		{Ecosystem: "npm", Name: "lodash", Version: "3.6.0"},
		{Ecosystem: "npm", Name: "lodash", Version: "4.17.19"},
		{Ecosystem: "npm", Name: "lodash-es", Version: "4.17.15"},
		{Ecosystem: "npm", Name: "lodash-es", Version: "4.17.16"},
		{Ecosystem: "PyPI", Name: "requests", Version: "2.28.0"},
		{Ecosystem: "Maven", Name: "org.apache.logging.log4j:log4j-core", Version: "2.14.1"},
		{Ecosystem: "Maven", Name: "org.apache.logging.log4j:log4j-core", Version: "2.12.1"},
		{Ecosystem: "Maven", Name: "org.apache.logging.log4j:log4j-core", Version: "2.12.2"},
		{Ecosystem: "Maven", Name: "org.apache.logging.log4j:log4j-core", Version: "2.0-beta8"},
	}
	fs := Match(db, pkgs, Distro{})
	type key struct{ name, version, id, fixed string }
	var got []key
	for _, f := range fs {
		got = append(got, key{f.Package.Name, f.Package.Version, f.ID, f.Fixed})
	}
	want := []key{
		{"lodash", "4.17.15", "GHSA-p6mc-m468-83gw", "4.17.19"},
		{"lodash-es", "4.17.15", "GHSA-p6mc-m468-83gw", ""},
		{"org.apache.logging.log4j:log4j-core", "2.14.1", "GHSA-jfh8-c2jp-5v3q", "2.15.0"},
		{"org.apache.logging.log4j:log4j-core", "2.12.1", "GHSA-jfh8-c2jp-5v3q", "2.12.2"},
		{"requests", "2.28.0", "GHSA-x84v-xcm2-53pg", "2.31.0"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("finding %d: got %v want %v", i, got[i], want[i])
		}
	}
	for _, f := range fs {
		switch f.Package.Name {
		case "lodash":
			if f.Severity != SeverityHigh || f.CVSS != 7.4 {
				t.Errorf("lodash severity %v %v", f.Severity, f.CVSS)
			}
		case "requests":
			// The CVSS v4 vector is scored (6.0), ahead of GHSA's word.
			if f.Severity != SeverityMedium || f.CVSS != 6.0 || f.CVSSVector == "" {
				t.Errorf("requests severity %+v", f)
			}
		case "org.apache.logging.log4j:log4j-core":
			if f.Severity != SeverityCritical || f.CVSS != 10 {
				t.Errorf("log4j severity %v %v", f.Severity, f.CVSS)
			}
		}
	}
}

func TestInRange(t *testing.T) {
	ev := func(kind, v string) vulndb.Event {
		switch kind {
		case "i":
			return vulndb.Event{Introduced: v}
		case "f":
			return vulndb.Event{Fixed: v}
		case "l":
			return vulndb.Event{LastAffected: v}
		}
		return vulndb.Event{Limit: v}
	}
	tests := []struct {
		events []vulndb.Event
		v      string
		want   bool
		fixed  string
	}{
		{[]vulndb.Event{ev("i", "0")}, "9.9.9", true, ""},
		{[]vulndb.Event{ev("i", "1.0.0"), ev("f", "1.2.0")}, "0.9.0", false, ""},
		{[]vulndb.Event{ev("i", "1.0.0"), ev("f", "1.2.0")}, "1.0.0", true, "1.2.0"},
		{[]vulndb.Event{ev("i", "1.0.0"), ev("f", "1.2.0")}, "1.2.0", false, ""},
		{[]vulndb.Event{ev("i", "1.0.0"), ev("l", "1.2.0")}, "1.2.0", true, ""},
		{[]vulndb.Event{ev("i", "1.0.0"), ev("l", "1.2.0")}, "1.2.1", false, ""},
		{[]vulndb.Event{ev("i", "0"), ev("x", "2.0.0")}, "1.5.0", true, ""},
		{[]vulndb.Event{ev("i", "0"), ev("x", "2.0.0")}, "2.0.0", false, ""},
		{[]vulndb.Event{ev("i", "0"), ev("x", "*")}, "2.0.0", true, ""},
		// Events out of order, two intervals.
		{[]vulndb.Event{ev("f", "2.3.0"), ev("i", "2.0.0"), ev("f", "1.5.0"), ev("i", "0")}, "1.9.0", false, ""},
		{[]vulndb.Event{ev("f", "2.3.0"), ev("i", "2.0.0"), ev("f", "1.5.0"), ev("i", "0")}, "2.1.0", true, "2.3.0"},
		{[]vulndb.Event{ev("f", "2.3.0"), ev("i", "2.0.0"), ev("f", "1.5.0"), ev("i", "0")}, "1.4.0", true, "1.5.0"},
	}
	for i, tt := range tests {
		v, _ := semverOrdering.version(tt.v)
		got, fixed, err := inRange(tt.events, v, tt.v, semverOrdering)
		if err != nil || got != tt.want || fixed != tt.fixed {
			t.Errorf("case %d (%s): got %v %q, want %v %q", i, tt.v, got, fixed, tt.want, tt.fixed)
		}
	}
	// Listed versions.
	npm := func(v string) query {
		t.Helper()
		q, why := queryFor(inventory.Package{Ecosystem: "npm", Name: "x", Version: v}, Distro{})
		if why != "" {
			t.Fatal(why)
		}
		return q
	}
	a := vulndb.Affected{Versions: []string{"1.0", "1.1"}}
	if hit, _, _ := affects(a, npm("1.1")); !hit {
		t.Error("listed version not matched")
	}
	if hit, _, _ := affects(a, npm("1.2")); hit {
		t.Error("unlisted version matched")
	}
	// GIT ranges are not evaluated.
	g := vulndb.Affected{Ranges: []vulndb.Range{{Type: "GIT", Events: []vulndb.Event{{Introduced: "0"}}}}}
	if hit, _, _ := affects(g, npm("1.0.0")); hit {
		t.Error("GIT range evaluated")
	}
}

func TestRelease(t *testing.T) {
	for _, c := range []struct{ eco, vid, want string }{
		{"Debian", "12", "12"}, {"Debian", "11.9", "11"}, {"Alpine", "3.20.3", "v3.20"}, {"Alpine", "3", ""},
		{"Ubuntu", "22.04", "22.04"}, {"Debian", "", ""},
	} {
		if got := release(c.eco, c.vid); got != c.want {
			t.Errorf("release(%s, %s) = %q, want %q", c.eco, c.vid, got, c.want)
		}
	}
	q := query{ecosystem: "Ubuntu", release: "22.04", os: true}
	for rel, want := range map[string]bool{"Ubuntu:22.04:LTS": true, "Ubuntu:Pro:22.04:LTS": false, "Ubuntu:20.04:LTS": false, "Ubuntu:22.04": true} {
		if got := releaseMatches(q, vulndb.Affected{Ecosystem: rel}); got != want {
			t.Errorf("releaseMatches(%s) = %v", rel, got)
		}
	}
}

func TestSkipped(t *testing.T) {
	pkgs := []inventory.Package{
		{Ecosystem: "Debian", Name: "libc6", Version: "2.36-9"},
		{Ecosystem: "Go", Name: "example.com/local", Version: "(devel)"},
		{Ecosystem: "Go", Name: "golang.org/x/text", Version: "v0.3.5"},
		{Ecosystem: "npm", Name: "left-pad", Version: ""},
		{Ecosystem: "RubyGems", Name: "rails", Version: "7.0.0"},
	}
	got := Skipped(pkgs, Distro{ID: "debian"})
	if len(got) != 4 || got[3].Reason != `no version ordering for ecosystem "RubyGems"` || got[0].Package.Name != "libc6" || got[1].Package.Name != "example.com/local" || got[2].Reason != "no version" {
		t.Fatalf("Skipped: %+v", got)
	}
	if got := Skipped(pkgs[:1], Distro{ID: "debian", VersionID: "12"}); len(got) != 0 {
		t.Errorf("with a release: %+v", got)
	}
}

func TestMatchUbuntu(t *testing.T) {
	db := openDB(t, "../vulndb/testdata/ubuntu")
	// dpkg packages in an Ubuntu image: the inventory says Debian, the distro Ubuntu.
	pkgs := []inventory.Package{
		{Ecosystem: "Debian", Name: "libssl3", Version: "3.0.2-0ubuntu1.15", SourceName: "openssl"},
		{Ecosystem: "Debian", Name: "openssl", Version: "3.0.2-0ubuntu1.18", SourceName: "openssl"},
	}
	fs := Match(db, pkgs, Distro{ID: "ubuntu", VersionID: "22.04"})
	if len(fs) != 1 {
		t.Fatalf("got %+v", fs)
	}
	f := fs[0]
	if f.Package.Name != "libssl3" || f.ID != "UBUNTU-CVE-2024-6119" || f.Ecosystem != "Ubuntu:22.04:LTS" ||
		f.Fixed != "3.0.2-0ubuntu1.18" || f.Severity != SeverityMedium || len(f.Aliases) != 1 || f.Aliases[0] != "CVE-2024-6119" {
		t.Errorf("ubuntu finding: %+v", f)
	}
	if fs := Match(db, pkgs, Distro{ID: "ubuntu", VersionID: "20.04"}); len(fs) != 0 {
		t.Errorf("20.04: %+v", fs)
	}
}

// TestMatchMergesAcrossSources imports the Go advisories with GitHub's record
// for the same vulnerability: one finding, the GO- id, GHSA's severity.
func TestMatchMergesAcrossSources(t *testing.T) {
	db := openDB(t, vulndbtest.GoOSVDir(t), "../vulndb/testdata/ghsa-go")
	fs := Match(db, []inventory.Package{{Ecosystem: "Go", Name: "golang.org/x/text", Version: "v0.3.7"}}, Distro{})
	var hits []Finding
	for _, f := range fs {
		if f.ID == "GO-2022-1059" || f.ID == "GHSA-69ch-w2m2-3vjp" {
			hits = append(hits, f)
		}
	}
	if len(hits) != 1 {
		t.Fatalf("want one merged finding, got %+v", hits)
	}
	f := hits[0]
	if f.ID != "GO-2022-1059" || f.Severity != SeverityHigh || f.CVSS != 7.5 || f.Fixed != "0.3.8" ||
		len(f.Aliases) != 2 || f.Aliases[1] != "GHSA-69ch-w2m2-3vjp" {
		t.Errorf("merged: %+v", f)
	}
}
