package main

import (
	"archive/zip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/portcullis-dev/portcullis/scan/vulndb"
)

const dbHelp = `Usage: portcullis db COMMAND [flags]

Commands:
  import PATH...   import OSV records into the offline vulnerability database
  status           show the database's revision, age and records per ecosystem

The database lives in <dataDir>/vulndb, the directory the gateway reads:
$PORTCULLIS_VULNDB when set, else $PORTCULLIS_DATA_DIR/vulndb, else
data/vulndb. --db DIR names another.

Run "portcullis db COMMAND -h" for a command's flags and an example.
`

const dbImportHelp = `Usage: portcullis db import [--db DIR] PATH...

Imports OSV vulnerability records into the database in DIR (default
<dataDir>/vulndb: $PORTCULLIS_VULNDB, else $PORTCULLIS_DATA_DIR/vulndb, else
data/vulndb). Each PATH is a directory (every *.json file under it), a zip
archive such as osv.dev's per-ecosystem all.zip (every *.json entry), or a
single *.json record. The new database replaces the old one only once it is
complete: when any record is malformed or a PATH cannot be read, nothing
changes and the error names the file. Withdrawn records are skipped; when two
PATHs hold the same record, the later modified time wins.

Prints the new revision, the records per ecosystem, the withdrawn records
skipped and the time taken. On a terminal, each PATH is listed first.
Exit status: 0 when imported, 1 when the import failed, 2 on usage errors.

Example:
  portcullis db import --db /var/lib/portcullis/vulndb ~/osv/Go/all.zip ~/osv/Debian/all.zip

Flags:
`

const dbStatusHelp = `Usage: portcullis db status [--db DIR] [--max-age 168h] [--fail-on-stale] [--output table|json]

Shows the database in DIR (default <dataDir>/vulndb: $PORTCULLIS_VULNDB, else
$PORTCULLIS_DATA_DIR/vulndb, else data/vulndb): its revision, when it was
imported and its age, and the records per ecosystem. When it is older than
--max-age (days 7d, weeks 1w or a Go duration 168h), a warning is printed to
stderr.
Exit status: 0 when shown (stale or not), 1 when the database cannot be
opened or, with --fail-on-stale, is stale; 2 on usage errors.

Example:
  portcullis db status --db /var/lib/portcullis/vulndb --max-age 7d --fail-on-stale

Flags:
`

// runDB runs "portcullis db ARGS" and returns the exit status.
func runDB(args []string, stdout, stderr io.Writer) int {
	return dispatch("db", dbHelp, map[string]subcommand{
		"import": runDBImport, "status": runDBStatus,
	}, args, stdout, stderr)
}

// defaultDBDir is the database directory the gateway reads when its
// configuration names none: $PORTCULLIS_VULNDB (scan.db), else
// <dataDir>/vulndb with dataDir from $PORTCULLIS_DATA_DIR or "data".
func defaultDBDir(getenv func(string) string) string {
	if d := getenv("PORTCULLIS_VULNDB"); d != "" {
		return d
	}
	dataDir := getenv("PORTCULLIS_DATA_DIR")
	if dataDir == "" {
		dataDir = "data"
	}
	return filepath.Join(dataDir, "vulndb")
}

// envDBDir is the gateway's database directory when the environment names one
// ($PORTCULLIS_VULNDB, else $PORTCULLIS_DATA_DIR/vulndb), else "".
func envDBDir(getenv func(string) string) string {
	if getenv("PORTCULLIS_VULNDB") == "" && getenv("PORTCULLIS_DATA_DIR") == "" {
		return ""
	}
	return defaultDBDir(getenv)
}

// dbIsTerminal reports whether w is a terminal; tests replace it.
var dbIsTerminal = func(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// dbUsageErr returns a function that reports a usage error of
// "portcullis db cmd" and returns 2.
func dbUsageErr(cmd string, stderr io.Writer) func(format string, a ...any) int {
	return func(format string, a ...any) int {
		fmt.Fprintf(stderr, "portcullis db %s: "+format+"\n", append([]any{cmd}, a...)...)
		fmt.Fprintf(stderr, "Run \"portcullis db %s -h\" for usage.\n", cmd)
		return 2
	}
}

// runDBImport runs "portcullis db import".
func runDBImport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("portcullis db import", flag.ContinueOnError)
	dir := fs.String("db", defaultDBDir(os.Getenv), "database directory")
	sources, status, ok := policyFlags(fs, dbImportHelp, args, stdout, stderr)
	if !ok {
		return status
	}
	if len(sources) == 0 {
		return dbUsageErr("import", stderr)("no PATH given")
	}
	if *dir == "" {
		return dbUsageErr("import", stderr)("--db: empty directory")
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "portcullis db import: %v\n", err)
		fmt.Fprintf(stderr, "portcullis db import: nothing imported; the database in %s is unchanged\n", *dir)
		return 1
	}
	start := time.Now()
	st, err := importDB(*dir, sources, stderr)
	if err != nil {
		return fail(err)
	}
	took := time.Since(start)
	fmt.Fprintf(stdout, "imported %s into %s in %s\n", plural(st.Records, "record"), *dir, roundDuration(took))
	fmt.Fprintf(stdout, "revision  %s\n", st.Revision)
	fmt.Fprintf(stdout, "withdrawn %d (skipped)\n\n", st.Withdrawn)
	printCounts(stdout, st.Counts)
	return 0
}

// importDB imports the OSV sources into the database in dir: the one code path of
// "db import" and of "mirror import" for a bundle's database. It refuses a dir that holds
// something other than a database, and a source that cannot be read or holds no record,
// before the import starts; on a terminal stderr it lists the sources first.
func importDB(dir string, sources []string, stderr io.Writer) (vulndb.Status, error) {
	// Import replaces whatever is at DIR: refuse a directory that holds
	// something other than a database, such as the data directory itself.
	if err := checkDBDir(dir); err != nil {
		return vulndb.Status{}, err
	}
	// Check every source before the import starts, so a mistyped path or an
	// empty directory cannot replace the database with an empty one.
	kinds := make([]string, len(sources))
	for i, src := range sources {
		kind, err := describeSource(src)
		if err != nil {
			return vulndb.Status{}, err
		}
		kinds[i] = kind
	}
	if dbIsTerminal(stderr) {
		fmt.Fprintf(stderr, "importing %s into %s:\n", plural(len(sources), "source"), dir)
		for i, src := range sources {
			fmt.Fprintf(stderr, "  %s (%s)\n", src, kinds[i])
		}
	}
	return vulndb.Import(dir, sources...)
}

// checkDBDir returns an error when dir exists but is neither an empty
// directory nor a database written by Import (which has a manifest.json).
func checkDBDir(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("--db %s: not a directory", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "manifest.json")); err == nil {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("--db %s: the directory holds files but no vulnerability database (no manifest.json); refusing to replace it", dir)
	}
	return nil
}

// describeSource checks that src can be imported and says what it is:
// "directory, N *.json files", "zip archive, N *.json entries" or "N bytes".
// A directory or archive without any *.json record is an error.
func describeSource(src string) (string, error) {
	fi, err := os.Stat(src)
	if err != nil {
		return "", err
	}
	switch {
	case fi.IsDir():
		n := 0
		err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() && strings.HasSuffix(d.Name(), ".json") {
				n++
			}
			return nil
		})
		if err != nil {
			return "", err
		}
		if n == 0 {
			return "", fmt.Errorf("%s: no *.json records in the directory", src)
		}
		return fmt.Sprintf("directory, %s", plural(n, "*.json file")), nil
	case strings.HasSuffix(src, ".zip"):
		zr, err := zip.OpenReader(src)
		if err != nil {
			return "", fmt.Errorf("%s: %w", src, err)
		}
		defer zr.Close()
		n := 0
		for _, zf := range zr.File {
			if !zf.FileInfo().IsDir() && strings.HasSuffix(zf.Name, ".json") {
				n++
			}
		}
		if n == 0 {
			return "", fmt.Errorf("%s: no *.json records in the archive", src)
		}
		return fmt.Sprintf("zip archive, %d *.json entries, %s", n, byteSize(fi.Size())), nil
	case !fi.Mode().IsRegular():
		return "", fmt.Errorf("%s: not a directory, zip archive or JSON file", src)
	}
	return "OSV record, " + byteSize(fi.Size()), nil
}

// printCounts prints the records per ecosystem as a table, by name.
func printCounts(w io.Writer, counts map[string]int) {
	ecos := make([]string, 0, len(counts))
	for e := range counts {
		ecos = append(ecos, e)
	}
	sort.Strings(ecos)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ECOSYSTEM\tRECORDS")
	for _, e := range ecos {
		fmt.Fprintf(tw, "%s\t%d\n", e, counts[e])
	}
	tw.Flush()
}

// dbStatusJSON is the JSON output of db status.
type dbStatusJSON struct {
	DB string `json:"db"`
	vulndb.Status
	// AgeSeconds is the time since Imported, in whole seconds.
	AgeSeconds int64 `json:"ageSeconds"`
	// MaxAge is --max-age as given.
	MaxAge string `json:"maxAge"`
	// Stale is true when the database is older than MaxAge.
	Stale bool `json:"stale"`
}

// runDBStatus runs "portcullis db status".
func runDBStatus(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("portcullis db status", flag.ContinueOnError)
	dir := fs.String("db", defaultDBDir(os.Getenv), "database directory")
	maxAgeFlag := fs.String("max-age", "168h", "age past which the database is stale: days (7d), weeks (1w) or a Go duration (168h)")
	failOnStale := fs.Bool("fail-on-stale", false, "exit 1 when the database is older than --max-age")
	output := fs.String("output", "table", "output format: table or json")
	pos, status, ok := policyFlags(fs, dbStatusHelp, args, stdout, stderr)
	if !ok {
		return status
	}
	usageErr := dbUsageErr("status", stderr)
	switch {
	case len(pos) > 0:
		return usageErr("unexpected arguments %q (give the database with --db)", pos)
	case *output != "table" && *output != "json":
		return usageErr("--output: want table or json, got %q", *output)
	case *dir == "":
		return usageErr("--db: empty directory")
	}
	maxAge, err := parseWithin(*maxAgeFlag)
	if err != nil {
		return usageErr("--max-age: %v", err)
	}
	if maxAge == 0 {
		return usageErr("--max-age: must be more than zero")
	}
	db, err := vulndb.Open(*dir)
	if errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(stderr, "portcullis db status: no vulnerability database in %s: %v\n", *dir, err)
		fmt.Fprintf(stderr, "Import one with \"portcullis db import --db %s PATH...\".\n", *dir)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "portcullis db status: %s: %v\n", *dir, err)
		return 1
	}
	st := db.Status()
	age := time.Since(st.Imported)
	stale := age > maxAge
	if stale {
		fmt.Fprintf(stderr, "warning: database is %s old (older than --max-age %s): import a fresh export\n", formatAge(age), *maxAgeFlag)
	}
	status = 0
	if stale && *failOnStale {
		status = 1
	}
	if *output == "json" {
		out := dbStatusJSON{DB: *dir, Status: st, AgeSeconds: int64(age / time.Second), MaxAge: *maxAgeFlag, Stale: stale}
		if out.Counts == nil {
			out.Counts = map[string]int{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			fmt.Fprintf(stderr, "portcullis db status: %v\n", err)
			return 1
		}
		return status
	}
	fmt.Fprintf(stdout, "database  %s\n", *dir)
	fmt.Fprintf(stdout, "revision  %s\n", st.Revision)
	fmt.Fprintf(stdout, "imported  %s (%s ago)\n", st.Imported.UTC().Format(time.RFC3339), formatAge(age))
	fmt.Fprintf(stdout, "records   %d (%d withdrawn skipped)\n\n", st.Records, st.Withdrawn)
	printCounts(stdout, st.Counts)
	return status
}

// formatAge is an age in days (from two days up), hours or minutes.
func formatAge(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	case d >= 2*time.Hour:
		return fmt.Sprintf("%d hours", int(d/time.Hour))
	case d >= 2*time.Minute:
		return fmt.Sprintf("%d minutes", int(d/time.Minute))
	case d < 0:
		return "0 minutes" // imported "in the future": a clock skew
	}
	return "under 2 minutes"
}

// roundDuration rounds d for display: milliseconds under a minute, else
// seconds.
func roundDuration(d time.Duration) time.Duration {
	if d < time.Minute {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Second)
}

// byteSize is n in B, KB, MB or GB (powers of 1024).
func byteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 2; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "KMG"[exp])
}
