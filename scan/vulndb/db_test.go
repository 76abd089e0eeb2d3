package vulndb

import (
	"archive/zip"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/scan/vulndb/vulndbtest"
)

func importFixtures(t *testing.T) (*DB, Status) {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "db")
	st, err := Import(dst, "testdata/debian", "testdata/alpine", "testdata/ghsa")
	if err != nil {
		t.Fatal(err)
	}
	db, err := Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	return db, st
}

func TestImportFixtures(t *testing.T) {
	db, st := importFixtures(t)
	if st.Records != 9 || st.Withdrawn != 1 {
		t.Errorf("records %d withdrawn %d, want 9 and 1", st.Records, st.Withdrawn)
	}
	want := map[string]int{"Debian": 4, "Alpine": 2, "npm": 1, "PyPI": 1, "Maven": 1}
	for k, v := range want {
		if st.Counts[k] != v {
			t.Errorf("count %s = %d, want %d (all %v)", k, st.Counts[k], v, st.Counts)
		}
	}
	if db.Revision() != st.Revision || len(st.Revision) != 64 || db.Status().Records != 9 {
		t.Errorf("status after open %+v, import %+v", db.Status(), st)
	}
	if time.Since(db.Status().Imported) > time.Hour {
		t.Errorf("imported %v", db.Status().Imported)
	}

	// Debian: every release, or one.
	all := db.Lookup("Debian", "openssl")
	if len(all) != 3 {
		t.Fatalf("Debian openssl: %d records, want 3", len(all))
	}
	var cve Record
	for _, r := range all {
		if r.ID == "DEBIAN-CVE-2024-5535" {
			cve = r
		}
	}
	if len(cve.Affected) != 3 || cve.Upstream[0] != "CVE-2024-5535" {
		t.Errorf("DEBIAN-CVE-2024-5535 affected %+v", cve)
	}
	d12 := db.Lookup("debian:12", "openssl")
	if len(d12) != 2 {
		t.Fatalf("Debian:12 openssl: %d records, want 2", len(d12))
	}
	for _, r := range d12 {
		for _, a := range r.Affected {
			if a.Ecosystem != "Debian:12" {
				t.Errorf("%s: affected %s in a Debian:12 lookup", r.ID, a.Ecosystem)
			}
		}
	}
	if n := len(db.Lookup("Alpine:v3.19", "openssl")); n != 1 {
		t.Errorf("Alpine:v3.19 openssl: %d records, want 1", n)
	}
	// PyPI names are normalised; npm's are not; the withdrawn record is gone.
	if r := db.Lookup("PyPI", "requests"); len(r) != 1 || r[0].DatabaseSeverity != "MODERATE" {
		t.Errorf("PyPI requests: %+v", r)
	}
	if r := db.Lookup("npm", "lodash"); len(r) != 1 || r[0].ID != "GHSA-p6mc-m468-83gw" || len(r[0].Affected) != 1 {
		t.Errorf("npm lodash: %+v", r)
	}
	if r := db.Lookup("npm", "Lodash"); len(r) != 0 {
		t.Errorf("npm Lodash matched %d", len(r))
	}
	if r := db.Lookup("Nope", "x"); r != nil {
		t.Errorf("unknown ecosystem: %v", r)
	}
}

func TestRevisionFollowsContent(t *testing.T) {
	_, a := importFixtures(t)
	_, b := importFixtures(t)
	if a.Revision != b.Revision {
		t.Fatal("same content, different revisions")
	}
	dir := t.TempDir()
	src, _ := os.ReadFile("testdata/ghsa/GHSA-maven.json")
	os.WriteFile(filepath.Join(dir, "r.json"), []byte(strings.Replace(string(src), "2024-03-01", "2024-03-09", 1)), 0o644)
	st, err := Import(filepath.Join(t.TempDir(), "db"), "testdata/debian", "testdata/alpine", "testdata/ghsa", dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Revision == a.Revision || st.Records != a.Records {
		t.Errorf("modified record: revision %s records %d", st.Revision, st.Records)
	}
	// A changed range with the same modified time (as in golang.org/x/vulndb's
	// repository, where every record says 0001-01-01) changes the revision too.
	dir = t.TempDir()
	os.WriteFile(filepath.Join(dir, "r.json"), []byte(strings.Replace(string(src), `"fixed": "2.15.0"`, `"fixed": "2.16.0"`, 1)), 0o644)
	st, err = Import(filepath.Join(t.TempDir(), "db"), "testdata/debian", "testdata/alpine", "testdata/ghsa", dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Revision == a.Revision {
		t.Error("changed range, same revision")
	}
	// The same records in another format (which keeps other fields of them)
	// are another revision, so reports cached for the old format's revision
	// are not reused.
	c := &collector{records: map[string]Record{}, digests: map[string][32]byte{}, withdrawn: map[string]bool{}}
	for _, src := range []string{"testdata/debian", "testdata/alpine", "testdata/ghsa"} {
		if err := c.source(src); err != nil {
			t.Fatal(err)
		}
	}
	if got := revision(FormatVersion, c.records, c.digests); got != a.Revision {
		t.Fatalf("revision recomputed %s, imported %s", got, a.Revision)
	}
	if revision(FormatVersion-1, c.records, c.digests) == a.Revision {
		t.Error("format changed, same revision")
	}
}

func writeZip(t *testing.T, entries map[string]string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "all.zip")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for name, body := range entries {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(body))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

func TestImportZip(t *testing.T) {
	alpine, _ := os.ReadFile("testdata/alpine/ALPINE-CVE-2024-6119.json")
	ok := writeZip(t, map[string]string{"ALPINE-CVE-2024-6119.json": string(alpine), "README": "not a record"})
	dst := filepath.Join(t.TempDir(), "db")
	st, err := Import(dst, ok)
	if err != nil || st.Records != 1 || st.Counts["Alpine"] != 1 {
		t.Fatalf("zip import: %+v, %v", st, err)
	}
	// A second import replaces the database whole.
	if _, err := Import(dst, "testdata/ghsa"); err != nil {
		t.Fatal(err)
	}
	db, err := Open(dst)
	if err != nil || db.Status().Counts["Alpine"] != 0 || len(db.Lookup("Alpine", "openssl")) != 0 {
		t.Fatalf("after re-import: %+v %v", db.Status(), err)
	}

	for _, name := range []string{"../evil.json", "/abs.json", `a\..\b.json`, "a/../../b.json", "C:x.json"} {
		bad := writeZip(t, map[string]string{name: string(alpine)})
		if _, err := Import(filepath.Join(t.TempDir(), "db"), bad); err == nil || !strings.Contains(err.Error(), "unsafe") {
			t.Errorf("entry %q: err %v, want unsafe name", name, err)
		}
	}
	broken := writeZip(t, map[string]string{"x.json": `{"id":`})
	if _, err := Import(filepath.Join(t.TempDir(), "db"), broken); err == nil || !strings.Contains(err.Error(), "x.json") {
		t.Errorf("malformed record: %v", err)
	}
	if _, err := Import(dst, filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing source accepted")
	}
	// The failed imports left the last good database in place.
	if db, err := Open(dst); err != nil || db.Status().Counts["npm"] != 1 {
		t.Errorf("database after failed import: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(t.TempDir()); err == nil {
		t.Error("empty directory opened")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, manifestName), fmt.Appendf(nil, `{"format":%d,"files":{"Go":"../x"}}`, FormatVersion), 0o644)
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "outside the database") {
		t.Errorf("manifest pointing outside: %v", err)
	}
	// A database of an older format (1: without Go platform limits) or a newer
	// one is refused, saying what to do.
	for _, format := range []int{1, 99} {
		os.WriteFile(filepath.Join(dir, manifestName), fmt.Appendf(nil, `{"format":%d,"files":{}}`, format), 0o644)
		_, err := Open(dir)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("format %d", format)) || !strings.Contains(err.Error(), "re-run portcullis db import") {
			t.Errorf("format %d: %v", format, err)
		}
	}
}

func TestImportGoVulnDB(t *testing.T) {
	src := vulndbtest.GoOSVDir(t)
	dst := filepath.Join(t.TempDir(), "db")
	st, err := Import(dst, src)
	if err != nil {
		t.Fatal(err)
	}
	if st.Records < 4000 || st.Counts["Go"] < 4000 {
		t.Errorf("imported %d records, Go %d; want about 4,800", st.Records, st.Counts["Go"])
	}
	db, err := Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range db.Lookup("Go", "golang.org/x/text") {
		if r.ID == "GO-2022-1059" {
			found = true
			if r.Affected[0].Ranges[0].Events[1].Fixed != "0.3.8" {
				t.Errorf("GO-2022-1059 ranges %+v", r.Affected[0].Ranges)
			}
		}
	}
	if !found {
		t.Error("GO-2022-1059 not found for golang.org/x/text")
	}
	if len(db.Lookup("Go", "stdlib")) < 100 {
		t.Errorf("stdlib: %d records", len(db.Lookup("Go", "stdlib")))
	}
	// Platform limits survive the import: GO-2024-2961 is Windows-only,
	// GO-2022-0209 amd64-only, GO-2022-1059 unlimited.
	platforms := func(module, id string) []Platform {
		for _, r := range db.Lookup("Go", module) {
			if r.ID == id {
				if len(r.Affected) != 1 {
					t.Fatalf("%s: %d affected entries for %s", id, len(r.Affected), module)
				}
				return r.Affected[0].Platforms
			}
		}
		t.Fatalf("%s not found for %s", id, module)
		return nil
	}
	for _, c := range []struct {
		module, id string
		want       []Platform
	}{
		{"golang.org/x/crypto", "GO-2024-2961", []Platform{{GOOS: []string{"windows"}}}},
		{"golang.org/x/crypto", "GO-2022-0209", []Platform{{GOARCH: []string{"amd64"}}}},
		{"golang.org/x/text", "GO-2022-1059", nil},
	} {
		if got := platforms(c.module, c.id); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s platforms %+v, want %+v", c.id, got, c.want)
		}
	}
}

// TestImportGoVulnDBZip imports the same records as a zip archive, as
// osv.dev publishes them: same content, same revision.
func TestImportGoVulnDBZip(t *testing.T) {
	src := vulndbtest.GoOSVDir(t)
	files, err := filepath.Glob(filepath.Join(src, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("%d files: %v", len(files), err)
	}
	entries := map[string]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		entries[filepath.Base(f)] = string(data)
	}
	zst, err := Import(filepath.Join(t.TempDir(), "db"), writeZip(t, entries))
	if err != nil {
		t.Fatal(err)
	}
	dst, err := Import(filepath.Join(t.TempDir(), "db"), src)
	if err != nil {
		t.Fatal(err)
	}
	if zst.Revision != dst.Revision || zst.Records != dst.Records || zst.Records+zst.Withdrawn != len(files) {
		t.Errorf("zip %+v, dir %+v, %d files", zst, dst, len(files))
	}
}

func TestImportEcosystemCase(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.json"), []byte(`{"id":"A-1","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Debian:12","name":"zlib"}}]}`), 0o644)
	os.WriteFile(filepath.Join(dir, "b.json"), []byte(`{"id":"B-1","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"debian:12","name":"zlib"}}]}`), 0o644)
	dst := filepath.Join(t.TempDir(), "db")
	st, err := Import(dst, dir)
	if err != nil {
		t.Fatal(err)
	}
	db, err := Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Counts) != 1 || st.Counts["Debian"] != 2 || len(db.Lookup("DEBIAN", "zlib")) != 2 {
		t.Errorf("counts %v, lookup %v", st.Counts, db.Lookup("Debian", "zlib"))
	}
}
