package config

import (
	"net/url"
	"path/filepath"
	"time"
)

// Records configures the records store: what cannot be recomputed (the tag ledger, first
// sightings, baselines, reminder marks, decisions). A SQLite file under DataDir by default;
// PostgreSQL, shared by every replica, when Postgres.URL is set.
type Records struct {
	// SQLitePath overrides the SQLite file; empty means "<dataDir>/records.db".
	SQLitePath string `yaml:"sqlitePath"`
	// Postgres selects PostgreSQL.
	Postgres Postgres `yaml:"postgres"`
	// Retention is how long decisions, and sightings of vulnerabilities no longer seen,
	// are kept.
	Retention Duration `yaml:"retention"`
	// ImportFromRedis copies the records a deployment kept in Redis into the store once,
	// on the first start with an empty store (default true).
	ImportFromRedis *bool `yaml:"importFromRedis,omitempty"`
}

// Postgres names a PostgreSQL database.
type Postgres struct {
	// URL is a postgres:// URL; prefer URLFile for one with a password.
	URL string `yaml:"url"`
	// URLFile holds the URL.
	URLFile string `yaml:"urlFile"`
}

// DefaultRetention is the default Records.Retention: 400 days.
const DefaultRetention = Duration(400 * 24 * time.Hour)

// MinRetention is the shortest Records.Retention: 31 days.
const MinRetention = Duration(31 * 24 * time.Hour)

// SQLiteFile returns the SQLite file the records store uses when no PostgreSQL is set.
func (c Config) SQLiteFile() string {
	if c.Records.SQLitePath != "" {
		return c.Records.SQLitePath
	}
	if c.DataDir == "" {
		return ""
	}
	return filepath.Join(c.DataDir, "records.db")
}

// validateRecords reports the records section's problems.
func (c Config) validateRecords(add func(path, format string, args ...any)) {
	r := c.Records
	pg := r.Postgres
	if pg.URL != "" && pg.URLFile != "" {
		add("records.postgres", "set url or urlFile, not both")
	}
	if pg.URL != "" {
		u, err := url.Parse(pg.URL)
		switch {
		case err != nil:
			add("records.postgres.url", "not a URL (the error is not shown: it may contain the password)")
		case u.Scheme != "postgres" && u.Scheme != "postgresql":
			add("records.postgres.url", "scheme must be postgres or postgresql, got %q", u.Scheme)
		case u.Host == "":
			add("records.postgres.url", "missing host")
		}
	}
	if (pg.URL != "" || pg.URLFile != "") && r.SQLitePath != "" {
		add("records.sqlitePath", "set either records.sqlitePath or records.postgres, not both")
	}
	if pg.URL == "" && pg.URLFile == "" && c.SQLiteFile() == "" && c.Upstream.URL != "" {
		add("records", "needs dataDir, records.sqlitePath or records.postgres.url: what cannot be recomputed (tag ledger, first sightings, baselines, decisions) is kept there")
	}
	if r.Retention < MinRetention {
		add("records.retention", "must be at least %s (31 days: a vulnerability still seen has its last-seen date renewed every 30 days), got %s",
			time.Duration(MinRetention), time.Duration(r.Retention))
	}
}
