package vulndb

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// FormatVersion is the version of the on-disk layout written by Import:
// a directory holding manifest.json (format, Status, and the file of each
// base ecosystem) and one gzip'd JSON file per base ecosystem ("Debian",
// "Go", ...) mapping each package name (normalised, see NormalizeName) to
// the records affecting it, each trimmed to that package's Affected
// entries. Releases stay in Affected.Ecosystem ("Debian:12"). Open refuses
// any other format version: import again. Version 2 added the platform
// limits of Go entries (Affected.Platforms), which a version 1 database
// lacks, so it would report Windows-only advisories for Linux binaries.
const FormatVersion = 2

// manifestName is the file, in a database directory, that describes it.
const manifestName = "manifest.json"

// Status describes an imported database.
type Status struct {
	// Revision identifies the database content: the hex SHA-256 over the
	// format version, the sorted record ids, their modified times and the
	// SHA-256 of each record's bytes. The same records in the same format,
	// the same revision.
	Revision string `json:"revision"`
	// Imported is when the database was written.
	Imported time.Time `json:"imported"`
	// Counts is the number of records per base ecosystem ("Debian", "Go").
	// A record affecting several ecosystems counts once in each.
	Counts map[string]int `json:"counts"`
	// Records is the number of distinct records.
	Records int `json:"records"`
	// Withdrawn is the number of withdrawn records skipped on import.
	Withdrawn int `json:"withdrawn,omitempty"`
	// Newest is the modified time of the newest record: how fresh the data is,
	// whenever it was imported. Zero for databases imported before it was kept.
	Newest time.Time `json:"newest,omitzero"`
}

// manifest is the database's manifest.json.
type manifest struct {
	Format int `json:"format"`
	Status
	// Files maps a base ecosystem to its file in the directory.
	Files map[string]string `json:"files"`
}

// ecosystemFile is the content of one ecosystem's gzip'd JSON file:
// package name (normalised) to the records affecting it, each trimmed to
// that package's Affected entries.
type ecosystemFile struct {
	Ecosystem string              `json:"ecosystem"`
	Packages  map[string][]Record `json:"packages"`
}

// DB is an opened, read-only vulnerability database, safe for concurrent use.
type DB struct {
	status Status
	// byEco maps a lowercased base ecosystem to its packages.
	byEco map[string]map[string][]Record
}

// maxEcosystemFile bounds the decompressed size of one ecosystem file.
const maxEcosystemFile = 8 << 30

// Open reads the database written by Import into dir.
func Open(dir string) (*DB, error) {
	raw, err := os.ReadFile(filepath.Join(dir, manifestName))
	if err != nil {
		return nil, fmt.Errorf("opening vulnerability database: %w", err)
	}
	var m manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("reading %s: %w", manifestName, err)
	}
	if m.Format != FormatVersion {
		return nil, fmt.Errorf("vulnerability database in %s has format %d, this portcullis reads format %d: re-run portcullis db import", dir, m.Format, FormatVersion)
	}
	db := &DB{status: m.Status, byEco: make(map[string]map[string][]Record, len(m.Files))}
	for eco, name := range m.Files {
		if name != filepath.Base(name) || strings.HasPrefix(name, ".") {
			return nil, fmt.Errorf("manifest names file %q outside the database", name)
		}
		ef, err := readEcosystemFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("reading %s records: %w", eco, err)
		}
		db.byEco[strings.ToLower(eco)] = ef.Packages
	}
	return db, nil
}

func readEcosystemFile(path string) (ecosystemFile, error) {
	var ef ecosystemFile
	f, err := os.Open(path)
	if err != nil {
		return ef, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return ef, err
	}
	lr := &io.LimitedReader{R: zr, N: maxEcosystemFile + 1}
	if err := json.NewDecoder(lr).Decode(&ef); err != nil {
		return ef, err
	}
	if lr.N <= 0 {
		return ef, errors.New("file too large")
	}
	return ef, nil
}

// Revision returns the database's content revision (see Status.Revision).
func (db *DB) Revision() string { return db.status.Revision }

// Status returns what the database holds and when it was imported.
func (db *DB) Status() Status {
	s := db.status
	s.Counts = make(map[string]int, len(db.status.Counts))
	for k, v := range db.status.Counts {
		s.Counts[k] = v
	}
	return s
}

// Lookup returns the records affecting the named package, each carrying only
// its Affected entries for that package. The ecosystem is matched without
// regard to case and may name a release: "Debian" returns the entries for
// every Debian release (Affected.Ecosystem says which, e.g. "Debian:12"),
// "Debian:12" only those for release 12. PyPI names are normalised (see
// NormalizeName). The records are shared: callers must not modify them.
func (db *DB) Lookup(ecosystem, name string) []Record {
	base := BaseEcosystem(ecosystem)
	recs := db.byEco[strings.ToLower(base)][NormalizeName(base, name)]
	if base == ecosystem {
		return recs
	}
	var out []Record
	for _, r := range recs {
		var keep []Affected
		for _, a := range r.Affected {
			if strings.EqualFold(a.Ecosystem, ecosystem) {
				keep = append(keep, a)
			}
		}
		if len(keep) > 0 {
			r.Affected = keep
			out = append(out, r)
		}
	}
	return out
}
