package records

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// migration is one schema version: its statements per backend.
type migration struct {
	version  int
	sqlite   []string
	postgres []string
}

// migrationLock is the PostgreSQL advisory lock key taken while migrating ("portcull").
const migrationLock int64 = 0x706f7274637531

// migrations are applied in order; a version once released never changes.
var migrations = []migration{{
	version: 1,
	sqlite: []string{
		`CREATE TABLE tag_ledger (repository TEXT NOT NULL, tag TEXT NOT NULL, digest TEXT NOT NULL, at BIGINT NOT NULL, PRIMARY KEY (repository, tag))`,
		`CREATE TABLE sightings (repository TEXT NOT NULL, advisory TEXT NOT NULL, first_seen BIGINT NOT NULL, last_seen BIGINT NOT NULL, PRIMARY KEY (repository, advisory))`,
		`CREATE TABLE previous_push (repository TEXT PRIMARY KEY, digest TEXT NOT NULL, at BIGINT NOT NULL)`,
		`CREATE TABLE baselines (repository TEXT NOT NULL, digest TEXT NOT NULL, how TEXT NOT NULL, base_repository TEXT NOT NULL, base_digest TEXT NOT NULL, manifest BLOB, at BIGINT NOT NULL, PRIMARY KEY (repository, digest))`,
		`CREATE TABLE layer_index (layers_hash TEXT PRIMARY KEY, repository TEXT NOT NULL, digest TEXT NOT NULL, at BIGINT NOT NULL)`,
		`CREATE TABLE reminders (exception_id TEXT NOT NULL, day TEXT NOT NULL, at BIGINT NOT NULL, PRIMARY KEY (exception_id, day))`,
		`CREATE TABLE decisions (id INTEGER PRIMARY KEY AUTOINCREMENT, at BIGINT NOT NULL, repository TEXT NOT NULL, digest TEXT NOT NULL, reference TEXT NOT NULL, action TEXT NOT NULL, environment TEXT NOT NULL, verdict TEXT NOT NULL, results TEXT NOT NULL, request_id TEXT NOT NULL, policy_revision TEXT NOT NULL)`,
	},
	postgres: []string{
		`CREATE TABLE tag_ledger (repository TEXT NOT NULL, tag TEXT NOT NULL, digest TEXT NOT NULL, at BIGINT NOT NULL, PRIMARY KEY (repository, tag))`,
		`CREATE TABLE sightings (repository TEXT NOT NULL, advisory TEXT NOT NULL, first_seen BIGINT NOT NULL, last_seen BIGINT NOT NULL, PRIMARY KEY (repository, advisory))`,
		`CREATE TABLE previous_push (repository TEXT PRIMARY KEY, digest TEXT NOT NULL, at BIGINT NOT NULL)`,
		`CREATE TABLE baselines (repository TEXT NOT NULL, digest TEXT NOT NULL, how TEXT NOT NULL, base_repository TEXT NOT NULL, base_digest TEXT NOT NULL, manifest BYTEA, at BIGINT NOT NULL, PRIMARY KEY (repository, digest))`,
		`CREATE TABLE layer_index (layers_hash TEXT PRIMARY KEY, repository TEXT NOT NULL, digest TEXT NOT NULL, at BIGINT NOT NULL)`,
		`CREATE TABLE reminders (exception_id TEXT NOT NULL, day TEXT NOT NULL, at BIGINT NOT NULL, PRIMARY KEY (exception_id, day))`,
		`CREATE TABLE decisions (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, at BIGINT NOT NULL, repository TEXT NOT NULL, digest TEXT NOT NULL, reference TEXT NOT NULL, action TEXT NOT NULL, environment TEXT NOT NULL, verdict TEXT NOT NULL, results TEXT NOT NULL, request_id TEXT NOT NULL, policy_revision TEXT NOT NULL)`,
	},
}, {
	version: 2,
	sqlite: []string{
		`CREATE UNIQUE INDEX decisions_identity ON decisions (at, repository, digest, reference, action, request_id)`,
		`CREATE INDEX decisions_repository ON decisions (repository, at)`,
		`CREATE INDEX decisions_digest ON decisions (digest, at)`,
		`CREATE INDEX sightings_last_seen ON sightings (last_seen)`,
	},
	postgres: []string{
		`CREATE UNIQUE INDEX decisions_identity ON decisions (at, repository, digest, reference, action, request_id)`,
		`CREATE INDEX decisions_repository ON decisions (repository, at)`,
		`CREATE INDEX decisions_digest ON decisions (digest, at)`,
		`CREATE INDEX sightings_last_seen ON sightings (last_seen)`,
	},
}}

// SchemaVersion is the schema version this build migrates to.
func SchemaVersion() int { return migrations[len(migrations)-1].version }

// migrate applies the migrations the database lacks. On PostgreSQL it holds an advisory
// lock on one connection meanwhile; on SQLite the transaction is IMMEDIATE (the write lock
// is taken at BEGIN), so concurrent openers of one file queue behind the busy timeout.
func (s *Store) migrate(ctx context.Context) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connecting: %w", err)
	}
	defer conn.Close()
	if s.backend == BackendPostgres {
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
			return fmt.Errorf("taking the migration lock: %w", err)
		}
		defer func() {
			_, _ = conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLock)
		}()
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("creating schema_migrations: %w", err)
	}
	for _, m := range migrations {
		if err := s.apply(ctx, conn, m); err != nil {
			return fmt.Errorf("schema migration %d: %w", m.version, err)
		}
	}
	var newest int
	if err := conn.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&newest); err != nil {
		return fmt.Errorf("reading the schema version: %w", err)
	}
	if newest > SchemaVersion() {
		return fmt.Errorf("the schema is at version %d, newer than this build knows (%d): upgrade portcullis", newest, SchemaVersion())
	}
	return nil
}

// apply applies m in one transaction unless it is recorded as applied.
func (s *Store) apply(ctx context.Context, conn *sql.Conn, m migration) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = $1`, m.version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	stmts := m.sqlite
	if s.backend == BackendPostgres {
		stmts = m.postgres
	}
	for _, st := range stmts {
		if _, err := tx.ExecContext(ctx, st); err != nil {
			return fmt.Errorf("%s: %w", strings.SplitN(st, "(", 2)[0], err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, m.version, nanos(time.Now())); err != nil {
		return err
	}
	return tx.Commit()
}
