package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/config"
	"github.com/portcullis-dev/portcullis/records"
)

const recordsHelp = `Usage: portcullis records COMMAND [flags]

Commands:
  export              write every record as JSON lines (a backup)
  import FILE         merge records written by export (FILE or - for stdin)
  import-from-redis   copy the records gateways before 0.x kept in Redis

The store is the one the gateway uses: records.postgres.url when set (config
file, or $PORTCULLIS_RECORDS_POSTGRES_URL), else <dataDir>/records.db.

Run "portcullis records COMMAND -h" for a command's flags and an example.
`

const recordsExportHelp = `Usage: portcullis records export [--config FILE] [--data-dir DIR] [--postgres-url URL] [--out FILE]

Writes every record of the store (tag ledger, first sightings, previous
pushes, baselines, layer index, reminder marks, decisions) as JSON lines, one
record a line, to --out or stdout. Import it with "portcullis records import".
Exit status: 0 when written, 1 on failure, 2 on usage errors.

Example:
  portcullis records export --config /etc/portcullis/portcullis.yaml --out records-$(date +%F).jsonl

Flags:
`

const recordsImportHelp = `Usage: portcullis records import [--config FILE] [--data-dir DIR] [--postgres-url URL] FILE

Merges the JSON lines of FILE (- for stdin), as written by "portcullis records
export", into the store: a tag keeps the first digest the store knew, a first
sighting the earlier date, decisions already present are kept once, so an
import can be repeated. A malformed line stops the import with its line
number; the lines before it are imported.
Exit status: 0 when imported, 1 on failure, 2 on usage errors.

Example:
  portcullis records import --postgres-url postgres://portcullis@db/portcullis records.jsonl

Flags:
`

const recordsRedisHelp = `Usage: portcullis records import-from-redis [--config FILE] [--data-dir DIR] [--postgres-url URL] [--redis-addr HOST:PORT]

Copies the records that gateways before the records store kept in Redis (tag
ledger, first sightings, previous pushes, baselines, layer index) into the
store, merging with what it holds. The gateway does this by itself on its
first start with an empty store. Redis is cache.redis of the configuration,
or --redis-addr.
Exit status: 0 when copied, 1 on failure, 2 on usage errors.

Example:
  portcullis records import-from-redis --config /etc/portcullis/portcullis.yaml

Flags:
`

// runRecords runs "portcullis records ARGS".
func runRecords(args []string, stdout, stderr io.Writer) int {
	return dispatch("records", recordsHelp, map[string]subcommand{
		"export": runRecordsExport, "import": runRecordsImport, "import-from-redis": runRecordsFromRedis,
	}, args, stdout, stderr)
}

// storeFlags are the flags that select the records store.
type storeFlags struct {
	config, dataDir, postgres *string
}

func addStoreFlags(fs *flag.FlagSet) storeFlags {
	return storeFlags{
		config:   fs.String("config", os.Getenv("PORTCULLIS_CONFIG"), "YAML config file (env PORTCULLIS_CONFIG)"),
		dataDir:  fs.String("data-dir", "", "data directory holding records.db (env PORTCULLIS_DATA_DIR)"),
		postgres: fs.String("postgres-url", "", "PostgreSQL URL of the records (env PORTCULLIS_RECORDS_POSTGRES_URL)"),
	}
}

// load reads the configuration the flags name, for the records section alone.
func (f storeFlags) load() (config.Config, error) {
	cfg := config.Default()
	if *f.config != "" {
		var err error
		if cfg, err = config.Load(*f.config); err != nil {
			return cfg, err
		}
	}
	if err := cfg.ApplyEnv(os.Getenv); err != nil {
		return cfg, err
	}
	if *f.dataDir != "" {
		cfg.DataDir = *f.dataDir
	}
	if *f.postgres != "" {
		cfg.Records.Postgres.URL, cfg.Records.Postgres.URLFile = *f.postgres, ""
	}
	return cfg, nil
}

// open opens the store the flags name.
func (f storeFlags) open(ctx context.Context) (*records.Store, config.Config, error) {
	cfg, err := f.load()
	if err != nil {
		return nil, cfg, err
	}
	s, err := openRecords(ctx, cfg)
	return s, cfg, err
}

func runRecordsExport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("portcullis records export", flag.ContinueOnError)
	sf := addStoreFlags(fs)
	out := fs.String("out", "", "file to write (default stdout)")
	pos, status, ok := policyFlags(fs, recordsExportHelp, args, stdout, stderr)
	if !ok {
		return status
	}
	if len(pos) > 0 {
		return usageErr("records export", stderr, "unexpected arguments: %s", strings.Join(pos, " "))
	}
	ctx := context.Background()
	s, _, err := sf.open(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "portcullis records export: %v\n", err)
		return 1
	}
	defer s.Close()
	w := stdout
	var f *os.File
	if *out != "" {
		if f, err = os.Create(*out); err != nil {
			fmt.Fprintf(stderr, "portcullis records export: %v\n", err)
			return 1
		}
		w = f
	}
	bw := bufio.NewWriter(w)
	n, err := s.Export(ctx, bw)
	if err == nil {
		err = bw.Flush()
	}
	if f != nil {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "portcullis records export: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "portcullis records export: %d records from %s\n", n, s.Backend())
	return 0
}

func runRecordsImport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("portcullis records import", flag.ContinueOnError)
	sf := addStoreFlags(fs)
	pos, status, ok := policyFlags(fs, recordsImportHelp, args, stdout, stderr)
	if !ok {
		return status
	}
	if len(pos) != 1 {
		return usageErr("records import", stderr, "want one FILE (or - for stdin), got %d", len(pos))
	}
	var r io.Reader = os.Stdin
	if pos[0] != "-" {
		f, err := os.Open(pos[0])
		if err != nil {
			fmt.Fprintf(stderr, "portcullis records import: %v\n", err)
			return 1
		}
		defer f.Close()
		r = f
	}
	ctx := context.Background()
	s, _, err := sf.open(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "portcullis records import: %v\n", err)
		return 1
	}
	defer s.Close()
	n, err := s.Import(ctx, r)
	if err != nil {
		fmt.Fprintf(stderr, "portcullis records import: %v (%d lines imported before it)\n", err, n)
		return 1
	}
	fmt.Fprintf(stdout, "imported %d lines into %s\n", n, s.Backend())
	return 0
}

func runRecordsFromRedis(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("portcullis records import-from-redis", flag.ContinueOnError)
	sf := addStoreFlags(fs)
	addr := fs.String("redis-addr", "", "Redis HOST:PORT (default cache.redis.addrs of the configuration)")
	pos, status, ok := policyFlags(fs, recordsRedisHelp, args, stdout, stderr)
	if !ok {
		return status
	}
	if len(pos) > 0 {
		return usageErr("records import-from-redis", stderr, "unexpected arguments: %s", strings.Join(pos, " "))
	}
	ctx := context.Background()
	s, cfg, err := sf.open(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "portcullis records import-from-redis: %v\n", err)
		return 1
	}
	defer s.Close()
	rc := cfg.Cache.Redis
	if *addr != "" {
		rc.Addrs = []string{*addr}
	}
	if len(rc.Addrs) == 0 {
		return usageErr("records import-from-redis", stderr, "no Redis: set cache.redis.addrs in --config or pass --redis-addr")
	}
	password := rc.Password
	if rc.PasswordFile != "" {
		b, err := os.ReadFile(rc.PasswordFile)
		if err != nil {
			fmt.Fprintf(stderr, "portcullis records import-from-redis: cache.redis.passwordFile: %v\n", err)
			return 1
		}
		password = strings.TrimRight(string(b), "\r\n")
	}
	client, err := cache.NewRedisClient(cache.RedisOptions{Addrs: rc.Addrs, MasterName: rc.MasterName, Username: rc.Username,
		Password: password, DB: rc.DB, TLS: rc.TLS, DialTimeout: 5 * time.Second})
	if err != nil {
		fmt.Fprintf(stderr, "portcullis records import-from-redis: %v\n", err)
		return 1
	}
	defer client.Close()
	copied, skipped, err := importFromRedis(ctx, client, s)
	if err != nil {
		fmt.Fprintf(stderr, "portcullis records import-from-redis: %v (%d records copied before it)\n", err, copied)
		return 1
	}
	fmt.Fprintf(stdout, "copied %d records from Redis into %s (%d keys skipped as unreadable)\n", copied, s.Backend(), skipped)
	return 0
}

// usageErr reports a usage error of "portcullis cmd" and returns 2.
func usageErr(cmd string, stderr io.Writer, format string, a ...any) int {
	fmt.Fprintf(stderr, "portcullis %s: "+format+"\n", append([]any{cmd}, a...)...)
	fmt.Fprintf(stderr, "Run \"portcullis %s -h\" for usage.\n", cmd)
	return 2
}

const decisionsHelp = `Usage: portcullis decisions list [--repository R] [--digest D] [--since 7d] [--limit N] [--output table|json]

Lists the decisions the gateway recorded (the audit trail kept in the records
store), newest first: time, action, repository, reference, verdict,
environment and the rules that did not pass. --since takes days (7d), weeks
(2w) or a Go duration (36h). Decisions are kept for records.retention (400
days by default).
Exit status: 0 when listed, 1 on failure, 2 on usage errors.

Example:
  portcullis decisions list --repository team/app --since 7d --output json

Flags:
`

// runDecisions runs "portcullis decisions ARGS".
func runDecisions(args []string, stdout, stderr io.Writer) int {
	return dispatch("decisions", decisionsHelp, map[string]subcommand{"list": runDecisionsList}, args, stdout, stderr)
}

func runDecisionsList(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("portcullis decisions list", flag.ContinueOnError)
	sf := addStoreFlags(fs)
	repo := fs.String("repository", "", "only decisions on this repository")
	digest := fs.String("digest", "", "only decisions on this manifest digest")
	since := fs.String("since", "", "only decisions this recent: 7d, 2w, 36h")
	limit := fs.Int("limit", 100, "at most this many decisions")
	output := fs.String("output", "table", "table or json")
	pos, status, ok := policyFlags(fs, decisionsHelp, args, stdout, stderr)
	if !ok {
		return status
	}
	if len(pos) > 0 {
		return usageErr("decisions list", stderr, "unexpected arguments: %s", strings.Join(pos, " "))
	}
	if *output != "table" && *output != "json" {
		return usageErr("decisions list", stderr, "--output: want table or json, got %q", *output)
	}
	if *limit < 1 || *limit > 100000 {
		return usageErr("decisions list", stderr, "--limit: want 1 to 100000, got %d", *limit)
	}
	q := records.Query{Repository: *repo, Digest: *digest, Limit: *limit}
	if *since != "" {
		d, err := parseWithin(*since)
		if err != nil {
			return usageErr("decisions list", stderr, "--since: %v", err)
		}
		q.Since = time.Now().Add(-d)
	}
	ctx := context.Background()
	s, _, err := sf.open(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "portcullis decisions list: %v\n", err)
		return 1
	}
	defer s.Close()
	ds, err := s.Decisions(ctx, q)
	if err != nil {
		fmt.Fprintf(stderr, "portcullis decisions list: %v\n", err)
		return 1
	}
	if *output == "json" {
		if ds == nil {
			ds = []records.Decision{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(ds); err != nil {
			return 1
		}
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tACTION\tREPOSITORY\tREFERENCE\tVERDICT\tENVIRONMENT\tRULES NOT PASSED")
	for _, d := range ds {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Time.Format(time.RFC3339), d.Action, d.Repository, shortRef(d.Reference),
			d.Verdict, d.Environment, failedRules(d.Results))
	}
	if err := tw.Flush(); err != nil {
		return 1
	}
	if len(ds) == 0 {
		fmt.Fprintln(stderr, "no decisions match")
	}
	return 0
}

// shortRef shortens a digest reference for the table.
func shortRef(ref string) string {
	if alg, hex, ok := strings.Cut(ref, ":"); ok && len(hex) > 12 {
		return alg + ":" + hex[:12]
	}
	return ref
}

// failedRules lists the rules of a decision that failed or passed by an exception.
func failedRules(raw json.RawMessage) string {
	var rs []struct{ Rule, Outcome string }
	if json.Unmarshal(raw, &rs) != nil {
		return ""
	}
	var out []string
	for _, r := range rs {
		if r.Outcome == "fail" || r.Outcome == "excepted" {
			out = append(out, r.Rule+"="+r.Outcome)
		}
	}
	return strings.Join(out, ",")
}
