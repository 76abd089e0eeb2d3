package records

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // the "sqlite" database/sql driver, pure Go
)

// Backend names.
const (
	BackendSQLite   = "sqlite"
	BackendPostgres = "postgres"
)

// FileName is the name of the SQLite file under the data directory.
const FileName = "records.db"

// sqliteBusyTimeout is how long a SQLite write waits for another writer (another process
// on the same file) before it fails.
const sqliteBusyTimeout = 10 * time.Second

// ErrInvalid is wrapped by errors about arguments the store refuses (empty names, digests
// that are not digests, dates before 1970).
var ErrInvalid = errors.New("invalid record")

// Store is the records store. Both backends share this type and its SQL; only the schema's
// column types and the migration lock differ. It is safe for concurrent use.
type Store struct {
	db *sql.DB
	// ex runs the writes: db, or the transaction of Write.
	ex      execer
	backend string
}

// execer runs a statement: a *sql.DB or a *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// OpenSQLite opens (creating it if needed) the SQLite records file at path, in WAL mode
// with a busy timeout, and applies the schema migrations it lacks.
func OpenSQLite(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, fmt.Errorf("records: %w: no SQLite file name", ErrInvalid)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("records: creating the directory of %s: %w", path, err)
	}
	q := url.Values{}
	for _, p := range []string{
		fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeout.Milliseconds()),
		"journal_mode(WAL)",
		"synchronous(NORMAL)",
		"foreign_keys(1)",
	} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("records: opening %s: %w", path, err)
	}
	// The first connection to a new file switches it to WAL, and that switch can answer
	// SQLITE_BUSY at once (without the busy timeout) while another process opens the
	// same file: retry it within the busy timeout.
	deadline := time.Now().Add(sqliteBusyTimeout)
	for {
		err := db.PingContext(ctx)
		if err == nil || !sqliteBusy(err) || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			db.Close()
			return nil, fmt.Errorf("records: opening %s: %w", path, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return open(ctx, db, BackendSQLite, path)
}

// OpenPostgres connects to the PostgreSQL database at dsn (a postgres:// URL or key=value
// string; a search_path parameter selects the schema) and applies the schema migrations it
// lacks, under an advisory lock so that replicas starting together apply each one once.
func OpenPostgres(ctx context.Context, dsn string) (*Store, error) {
	if dsn == "" {
		return nil, fmt.Errorf("records: %w: no PostgreSQL URL", ErrInvalid)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("records: opening PostgreSQL: %w", err)
	}
	db.SetMaxOpenConns(16)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return open(ctx, db, BackendPostgres, redact(dsn))
}

func open(ctx context.Context, db *sql.DB, backend, where string) (*Store, error) {
	s := &Store{db: db, ex: db, backend: backend}
	if err := s.migrate(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("records: %s at %s: %w", backend, where, err)
	}
	return s, nil
}

// redact hides the password of a PostgreSQL URL for messages.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return "(connection string)"
	}
	return u.Redacted()
}

// Backend returns BackendSQLite or BackendPostgres.
func (s *Store) Backend() string { return s.backend }

// Ping checks that the store answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("records: %s does not answer: %w", s.backend, err)
	}
	return nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

// nanos converts a time to the stored form: UTC nanoseconds since 1970.
func nanos(t time.Time) int64 { return t.UnixNano() }

// fromNanos converts the stored form back.
func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// latestTime bounds stored times (nanoseconds since 1970 overflow in 2262).
var latestTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)

// checkTime refuses zero times and times outside 1970 to 2200 (not representable as
// stored).
func checkTime(what string, t time.Time) error {
	if t.IsZero() || t.Before(time.Unix(0, 0)) || t.After(latestTime) {
		return fmt.Errorf("records: %w: %s %v is not a date between 1970 and 2200", ErrInvalid, what, t)
	}
	return nil
}

// checkNames refuses empty or oversized names and names with NUL bytes (PostgreSQL refuses
// them in text; refusing them on both backends keeps export and import symmetric).
func checkNames(kv ...string) error {
	for i := 0; i+1 < len(kv); i += 2 {
		name, v := kv[i], kv[i+1]
		switch {
		case v == "":
			return fmt.Errorf("records: %w: %s is empty", ErrInvalid, name)
		case len(v) > maxName:
			return fmt.Errorf("records: %w: %s is longer than %d bytes", ErrInvalid, name, maxName)
		case strings.ContainsRune(v, 0):
			return fmt.Errorf("records: %w: %s contains a NUL byte", ErrInvalid, name)
		}
	}
	return nil
}

// maxName bounds repository names, tags, digests and ids.
const maxName = 1024

// memSeq names in-memory databases apart.
var memSeq atomic.Int64

// OpenMemory opens a SQLite store held in memory, lost when it is closed: for a gate
// constructed without a store (tests, tools), never for a gateway.
func OpenMemory(ctx context.Context) (*Store, error) {
	name := fmt.Sprintf("file:portcullis-records-%d-%d?mode=memory&cache=shared&_txlock=immediate", os.Getpid(), memSeq.Add(1))
	db, err := sql.Open("sqlite", name)
	if err != nil {
		return nil, fmt.Errorf("records: opening a memory store: %w", err)
	}
	// One connection: the database lives as long as it does, and shared-cache locking
	// between connections would fail writers instead of queueing them.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	return open(ctx, db, BackendSQLite, "memory")
}

// Empty reports whether the store holds no tag, sighting, push or baseline: a store that
// nothing has been written to yet.
func (s *Store) Empty(ctx context.Context) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM tag_ledger LIMIT 1) a) + (SELECT COUNT(*) FROM (SELECT 1 FROM sightings LIMIT 1) b)
		+ (SELECT COUNT(*) FROM (SELECT 1 FROM previous_push LIMIT 1) c) + (SELECT COUNT(*) FROM (SELECT 1 FROM baselines LIMIT 1) d)`).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("records: %w", err)
	}
	return n == 0, nil
}

// sqliteBusy says whether err is SQLite's "database is locked".
func sqliteBusy(err error) bool {
	return strings.Contains(err.Error(), "SQLITE_BUSY") || strings.Contains(err.Error(), "database is locked")
}
