package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// pgBin is where the PostgreSQL server programs are.
const pgBin = "/usr/lib/postgresql/15/bin"

// privatePostgres is a throwaway PostgreSQL cluster of the test's own, on a free port,
// that the test can stop and start again (never the machine's PostgreSQL).
type privatePostgres struct {
	dir, port string
}

// startPrivatePostgres creates and starts a cluster; it is stopped and deleted when the
// test ends. Without the PostgreSQL programs the test is skipped loudly, or fails under CI.
func startPrivatePostgres(t *testing.T) *privatePostgres {
	t.Helper()
	if _, err := os.Stat(filepath.Join(pgBin, "initdb")); err != nil {
		missing(t, "PostgreSQL server programs in "+pgBin)
	}
	// Not t.TempDir: the cluster's owner (postgres, when the test runs as root) must
	// reach it.
	dir, err := os.MkdirTemp("", "portcullis-pg-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	pg := &privatePostgres{dir: dir, port: freePort(t)}
	t.Cleanup(func() {
		_ = pg.ctl("stop", "-m", "immediate")
		_ = os.RemoveAll(dir)
	})
	if out, err := pg.command("initdb", "-D", pg.data(), "-A", "trust", "-U", "postgres", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	pg.start(t)
	return pg
}

func (pg *privatePostgres) data() string { return filepath.Join(pg.dir, "data") }

// url is the cluster's postgres database.
func (pg *privatePostgres) url() string {
	return "postgres://postgres@127.0.0.1:" + pg.port + "/postgres?sslmode=disable&connect_timeout=2"
}

// command runs a PostgreSQL program, as the postgres user when the test runs as root.
func (pg *privatePostgres) command(prog string, args ...string) *exec.Cmd {
	if os.Geteuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(pgBin, prog)}, args...)...)
	}
	return exec.Command(filepath.Join(pgBin, prog), args...)
}

func (pg *privatePostgres) ctl(args ...string) error {
	args = append(args, "-D", pg.data(), "-w", "-t", "30")
	out, err := pg.command("pg_ctl", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// start starts the cluster and waits until it answers.
func (pg *privatePostgres) start(t *testing.T) {
	t.Helper()
	opts := "-p " + pg.port + " -c listen_addresses=127.0.0.1 -k " + pg.dir + " -c fsync=off"
	if err := pg.ctl("start", "-l", filepath.Join(pg.dir, "log"), "-o", opts); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", pg.url())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if !poll(30*time.Second, func() bool { return db.Ping() == nil }) {
		t.Fatalf("private PostgreSQL on port %s does not answer", pg.port)
	}
}

// stop stops the cluster at once (as a crash would).
func (pg *privatePostgres) stop(t *testing.T) {
	t.Helper()
	if err := pg.ctl("stop", "-m", "immediate"); err != nil {
		t.Fatal(err)
	}
}

// missing skips the test loudly, or fails it under CI=true.
func missing(t *testing.T, what string) {
	t.Helper()
	msg := "\n" + strings.Repeat("!", 78) + "\n!!! NO " + what + ": this test is NOT RUN.\n" + strings.Repeat("!", 78)
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// sharedPostgresSchema creates a schema of the test's own in the machine's PostgreSQL
// (127.0.0.1:5432, database test) and returns a URL selecting it; dropped at the end.
func sharedPostgresSchema(t *testing.T) string {
	t.Helper()
	base := "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		missing(t, "POSTGRESQL AT 127.0.0.1:5432 ("+err.Error()+")")
	}
	schema := "e2e_" + strings.ToLower(randomBase62(t, 12))
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = db.Exec("DROP SCHEMA " + schema + " CASCADE")
		_ = db.Close()
	})
	return base + "&search_path=" + schema
}
