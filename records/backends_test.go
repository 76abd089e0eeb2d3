package records_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/records"
)

// postgresURL is the PostgreSQL tests use: $PORTCULLIS_TEST_POSTGRES, or the machine's.
func postgresURL() string {
	if u := os.Getenv("PORTCULLIS_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

var schemaSeq atomic.Int64

// postgresSchema creates a schema of its own for the test in the test PostgreSQL and
// returns a URL selecting it; the schema is dropped when the test ends. Without a
// PostgreSQL the test is skipped loudly, or fails when CI=true.
func postgresSchema(t *testing.T) string {
	t.Helper()
	base := postgresURL()
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		msg := "\n" + strings.Repeat("!", 78) + "\n!!! NO POSTGRESQL AT " + base + " (" + err.Error() + "): this test is NOT RUN.\n" +
			"!!! Start one (trust auth, database test) or set PORTCULLIS_TEST_POSTGRES.\n" + strings.Repeat("!", 78)
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	schema := fmt.Sprintf("records_test_%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9, schemaSeq.Add(1))
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("dropping %s: %v", schema, err)
		}
		_ = db.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// backend opens stores of one kind; each call to fresh gives a new empty database, and
// again reopens the last one.
type backend struct {
	name  string
	fresh func(t *testing.T) (open func(t *testing.T) *records.Store)
}

var backends = []backend{
	{records.BackendSQLite, func(t *testing.T) func(t *testing.T) *records.Store {
		path := filepath.Join(t.TempDir(), records.FileName)
		return func(t *testing.T) *records.Store {
			s, err := records.OpenSQLite(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		}
	}},
	{records.BackendPostgres, func(t *testing.T) func(t *testing.T) *records.Store {
		dsn := postgresSchema(t)
		return func(t *testing.T) *records.Store {
			s, err := records.OpenPostgres(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		}
	}},
}

// forEachBackend runs test against each backend, in parallel, each with a fresh database.
func forEachBackend(t *testing.T, test func(t *testing.T, open func(t *testing.T) *records.Store)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			test(t, b.fresh(t))
		})
	}
}
