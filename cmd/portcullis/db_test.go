package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/scan/vulndb"
	"github.com/portcullis-dev/portcullis/scan/vulndb/vulndbtest"
)

// runDBCmd runs "portcullis db ARGS" through run and returns exit status,
// stdout and stderr.
func runDBCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(append([]string{"db"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// fixtures is the directory of the OSV fixtures of scan/vulndb.
func fixtures(elem ...string) string {
	return filepath.Join(append([]string{"..", "..", "scan", "vulndb", "testdata"}, elem...)...)
}

// countField returns the number in "name  N" lines of a counts table.
func countField(t *testing.T, out, name string) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\s+(\d+)\s*$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no %q row in:\n%s", name, out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func TestDBImportAndStatusRealGoAdvisories(t *testing.T) {
	osvDir := vulndbtest.GoOSVDir(t)
	// The expected figures, counted independently of vulndb: one record per
	// file, minus the withdrawn ones.
	files, err := filepath.Glob(filepath.Join(osvDir, "*.json"))
	if err != nil || len(files) < 1000 {
		t.Fatalf("want the real Go advisories in %s, got %d files (%v)", osvDir, len(files), err)
	}
	withdrawn := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Withdrawn string `json:"withdrawn"`
		}
		if err := json.Unmarshal(data, &r); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if r.Withdrawn != "" {
			withdrawn++
		}
	}
	if withdrawn == 0 {
		t.Fatal("want some withdrawn Go advisories to check the withdrawn count")
	}
	records := len(files) - withdrawn

	dir := filepath.Join(t.TempDir(), "vulndb")
	code, out, stderr := runDBCmd("import", "--db", dir, osvDir)
	if code != 0 {
		t.Fatalf("import: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	db, err := vulndb.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	st := db.Status()
	for _, want := range []string{
		"imported " + strconv.Itoa(records) + " records into " + dir + " in ",
		"revision  " + st.Revision + "\n",
		"withdrawn " + strconv.Itoa(withdrawn) + " (skipped)\n",
		"ECOSYSTEM  RECORDS\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("import output lacks %q:\n%s", want, out)
		}
	}
	if n := countField(t, out, "Go"); n != records || st.Counts["Go"] != records {
		t.Errorf("Go records: printed %d, database %d, want %d", n, st.Counts["Go"], records)
	}
	if stderr != "" {
		t.Errorf("import wrote to stderr when not on a terminal:\n%s", stderr)
	}

	// status, table.
	code, out, stderr = runDBCmd("status", "--db", dir)
	if code != 0 || stderr != "" {
		t.Fatalf("status: exit %d, stderr:\n%s", code, stderr)
	}
	for _, want := range []string{
		"database  " + dir + "\n",
		"revision  " + st.Revision + "\n",
		"imported  " + st.Imported.UTC().Format("2006-01-02T15:04:05Z07:00") + " (",
		"records   " + strconv.Itoa(records) + " (" + strconv.Itoa(withdrawn) + " withdrawn skipped)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	if n := countField(t, out, "Go"); n != records {
		t.Errorf("status: Go %d records, want %d", n, records)
	}

	// status, JSON.
	code, out, stderr = runDBCmd("status", "--db", dir, "--output", "json")
	if code != 0 || stderr != "" {
		t.Fatalf("status --output json: exit %d, stderr:\n%s", code, stderr)
	}
	var js dbStatusJSON
	if err := json.Unmarshal([]byte(out), &js); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if js.DB != dir || js.Revision != st.Revision || !js.Imported.Equal(st.Imported) || js.Records != records ||
		js.Withdrawn != withdrawn || js.Counts["Go"] != records || js.Stale || js.MaxAge != "168h" || js.AgeSeconds < 0 {
		t.Errorf("status JSON = %+v, want db %s, revision %s, %d records, %d withdrawn, not stale", js, dir, st.Revision, records, withdrawn)
	}
	var raw map[string]any
	_ = json.Unmarshal([]byte(out), &raw)
	for _, k := range []string{"db", "revision", "imported", "counts", "records", "withdrawn", "ageSeconds", "maxAge", "stale"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("status JSON lacks %q:\n%s", k, out)
		}
	}

	// Importing the same records again gives the same revision.
	code, out, _ = runDBCmd("import", "--db", dir, osvDir)
	if code != 0 || !strings.Contains(out, "revision  "+st.Revision+"\n") {
		t.Errorf("re-import: exit %d, want revision %s:\n%s", code, st.Revision, out)
	}
}

func TestDBImportFixturesAndZip(t *testing.T) {
	// A zip archive like osv.dev's all.zip, built from the Debian fixtures.
	zipPath := filepath.Join(t.TempDir(), "all.zip")
	zf, err := os.Create(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(zf)
	debian, _ := filepath.Glob(fixtures("debian", "*.json"))
	for _, f := range debian {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		w, err := zw.Create(filepath.Base(f))
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	zf.Close()

	dir := filepath.Join(t.TempDir(), "vulndb")
	code, out, stderr := runDBCmd("import", "--db", dir, zipPath, fixtures("alpine"), fixtures("ghsa"), fixtures("ghsa-go", "GHSA-69ch-w2m2-3vjp.json"))
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	db, err := vulndb.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	st := db.Status()
	if st.Counts["Debian"] != len(debian) || st.Counts["Alpine"] != 2 || st.Withdrawn != 1 {
		t.Fatalf("status %+v: want %d Debian, 2 Alpine, 1 withdrawn", st, len(debian))
	}
	for eco, n := range st.Counts {
		if got := countField(t, out, eco); got != n {
			t.Errorf("%s: printed %d records, database has %d", eco, got, n)
		}
	}
	if !strings.Contains(out, "withdrawn 1 (skipped)") || !strings.Contains(out, "revision  "+st.Revision) {
		t.Errorf("output:\n%s", out)
	}
}

func TestDBImportProgressOnTerminal(t *testing.T) {
	old := dbIsTerminal
	dbIsTerminal = func(io.Writer) bool { return true }
	t.Cleanup(func() { dbIsTerminal = old })
	dir := filepath.Join(t.TempDir(), "vulndb")
	code, _, stderr := runDBCmd("import", "--db", dir, fixtures("alpine"), fixtures("ghsa", "GHSA-maven.json"))
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, want := range []string{
		"importing 2 sources into " + dir + ":\n",
		"  " + fixtures("alpine") + " (directory, 2 *.json files)\n",
		"  " + fixtures("ghsa", "GHSA-maven.json") + " (OSV record, ",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("progress lacks %q:\n%s", want, stderr)
		}
	}
}

func TestDBImportErrorsKeepDatabase(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vulndb")
	if code, out, stderr := runDBCmd("import", "--db", dir, fixtures("alpine")); code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	before, err := vulndb.Open(dir)
	if err != nil {
		t.Fatal(err)
	}

	bad := t.TempDir()
	badFile := filepath.Join(bad, "BROKEN-1.json")
	if err := os.WriteFile(badFile, []byte(`{"id": "BROKEN-1", "modified": `), 0o644); err != nil {
		t.Fatal(err)
	}
	noID := filepath.Join(t.TempDir(), "NOID.json")
	if err := os.WriteFile(noID, []byte(`{"modified": "2024-01-01T00:00:00Z"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	// A zip archive with a malformed entry.
	zipPath := filepath.Join(t.TempDir(), "all.zip")
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("GO-BAD.json")
	w.Write([]byte(`not json`))
	zw.Close()
	os.WriteFile(zipPath, buf.Bytes(), 0o644)
	missing := filepath.Join(t.TempDir(), "does-not-exist.zip")
	empty := t.TempDir()

	for _, tc := range []struct {
		name    string
		sources []string
		names   []string // the message names these
	}{
		{"malformed record in a directory", []string{fixtures("debian"), bad}, []string{badFile}},
		{"record without id", []string{noID}, []string{noID}},
		{"malformed zip entry", []string{zipPath}, []string{zipPath, "GO-BAD.json"}},
		{"missing path", []string{fixtures("debian"), missing}, []string{missing}},
		{"directory without records", []string{empty}, []string{empty, "no *.json records"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, stderr := runDBCmd(append([]string{"import", "--db", dir}, tc.sources...)...)
			if code != 1 {
				t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
			}
			if out != "" {
				t.Errorf("stdout on failure:\n%s", out)
			}
			for _, n := range tc.names {
				if !strings.Contains(stderr, n) {
					t.Errorf("error does not name %q:\n%s", n, stderr)
				}
			}
			if !strings.Contains(stderr, "the database in "+dir+" is unchanged") {
				t.Errorf("error does not say the database is unchanged:\n%s", stderr)
			}
			after, err := vulndb.Open(dir)
			if err != nil {
				t.Fatalf("database gone after a failed import: %v", err)
			}
			if after.Revision() != before.Revision() || !after.Status().Imported.Equal(before.Status().Imported) {
				t.Errorf("database changed by a failed import: %s, want %s", after.Revision(), before.Revision())
			}
		})
	}
}

func TestDBImportRefusesOtherDirectory(t *testing.T) {
	// --db pointing at the data directory must not replace the registry's files.
	data := t.TempDir()
	keep := filepath.Join(data, "registry.db")
	if err := os.WriteFile(keep, []byte("registry"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runDBCmd("import", "--db", data, fixtures("alpine"))
	if code != 1 || !strings.Contains(stderr, "no vulnerability database (no manifest.json); refusing to replace it") {
		t.Errorf("exit %d, want 1\n%s", code, stderr)
	}
	if b, err := os.ReadFile(keep); err != nil || string(b) != "registry" {
		t.Errorf("%s after the refused import: %q, %v", keep, b, err)
	}
	// An existing empty directory is fine.
	empty := t.TempDir()
	if code, _, stderr := runDBCmd("import", "--db", empty, fixtures("alpine")); code != 0 {
		t.Errorf("empty --db: exit %d\n%s", code, stderr)
	}
}

func TestDBStatusStale(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vulndb")
	if code, out, stderr := runDBCmd("import", "--db", dir, fixtures("ubuntu")); code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	code, out, stderr := runDBCmd("status", "--db", dir, "--max-age", "1ns")
	if code != 0 {
		t.Errorf("stale without --fail-on-stale: exit %d, want 0", code)
	}
	want := "warning: database is "
	if !strings.Contains(stderr, want) || !strings.Contains(stderr, " old (older than --max-age 1ns): import a fresh export\n") {
		t.Errorf("stale warning missing:\n%s", stderr)
	}
	if countField(t, out, "Ubuntu") != 1 {
		t.Errorf("status output:\n%s", out)
	}

	code, _, stderr = runDBCmd("status", "--db", dir, "--max-age", "1ns", "--fail-on-stale")
	if code != 1 || !strings.Contains(stderr, want) {
		t.Errorf("--fail-on-stale: exit %d, want 1; stderr:\n%s", code, stderr)
	}

	code, out, stderr = runDBCmd("status", "--db", dir, "--max-age", "1ns", "--output", "json")
	var js dbStatusJSON
	if code != 0 || json.Unmarshal([]byte(out), &js) != nil || !js.Stale || js.MaxAge != "1ns" || !strings.Contains(stderr, want) {
		t.Errorf("JSON stale: exit %d, %+v\nstdout:\n%s\nstderr:\n%s", code, js, out, stderr)
	}

	// Fresh: no warning, even with --fail-on-stale.
	code, _, stderr = runDBCmd("status", "--db", dir, "--max-age", "7d", "--fail-on-stale")
	if code != 0 || stderr != "" {
		t.Errorf("fresh: exit %d, stderr:\n%s", code, stderr)
	}
}

func TestDBStatusErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "vulndb")
	code, _, stderr := runDBCmd("status", "--db", missing)
	if code != 1 || !strings.Contains(stderr, "no vulnerability database in "+missing) || !strings.Contains(stderr, "portcullis db import --db "+missing) {
		t.Errorf("missing database: exit %d\n%s", code, stderr)
	}
	for _, args := range [][]string{
		{"status", "--output", "yaml"},
		{"status", "--max-age", "soon"},
		{"status", "--max-age", "0s"},
		{"status", "extra"},
		{"status", "--nope"},
		{"import"},
		{"frobnicate"},
		{},
	} {
		if code, _, _ := runDBCmd(args...); code != 2 {
			t.Errorf("db %q: exit %d, want 2", args, code)
		}
	}
}

func TestDBDefaultDir(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{nil, filepath.Join("data", "vulndb")},
		{map[string]string{"PORTCULLIS_DATA_DIR": "/srv/portcullis"}, filepath.Join("/srv/portcullis", "vulndb")},
		{map[string]string{"PORTCULLIS_DATA_DIR": "/srv/portcullis", "PORTCULLIS_VULNDB": "/var/lib/osv"}, "/var/lib/osv"},
	} {
		if got := defaultDBDir(env(tc.env)); got != tc.want {
			t.Errorf("defaultDBDir(%v) = %q, want %q", tc.env, got, tc.want)
		}
	}
	// The flag default follows the environment.
	data := t.TempDir()
	t.Setenv("PORTCULLIS_VULNDB", "")
	t.Setenv("PORTCULLIS_DATA_DIR", data)
	if code, out, stderr := runDBCmd("import", fixtures("alpine")); code != 0 || !strings.Contains(out, filepath.Join(data, "vulndb")) {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	if _, err := vulndb.Open(filepath.Join(data, "vulndb")); err != nil {
		t.Error(err)
	}
}

func TestDBHelp(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"-h"}, []string{"Usage: portcullis db COMMAND", "import PATH...", "status", "<dataDir>/vulndb"}},
		{[]string{"import", "-h"}, []string{"Usage: portcullis db import [--db DIR] PATH...", "Example:",
			"portcullis db import --db /var/lib/portcullis/vulndb ~/osv/Go/all.zip ~/osv/Debian/all.zip", "<dataDir>/vulndb", "-db"}},
		{[]string{"status", "-h"}, []string{"Usage: portcullis db status", "Example:", "--max-age", "-fail-on-stale", "-output"}},
	} {
		code, out, stderr := runDBCmd(tc.args...)
		if code != 0 || stderr != "" {
			t.Errorf("db %q: exit %d, stderr %q", tc.args, code, stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("db %q help lacks %q:\n%s", tc.args, w, out)
			}
		}
	}
	var out bytes.Buffer
	run([]string{"help"}, &out, io.Discard)
	if !strings.Contains(out.String(), "portcullis db import|status") {
		t.Errorf("top-level usage lacks the db command:\n%s", out.String())
	}
}
