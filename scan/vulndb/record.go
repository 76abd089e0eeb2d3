package vulndb

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Record is one OSV vulnerability as stored in the database. Records returned
// by Lookup carry only the Affected entries for the package looked up.
type Record struct {
	// ID is the record's identifier, e.g. "GO-2022-1059", "DSA-5417-1".
	ID string `json:"id"`
	// Aliases are other identifiers of the same vulnerability (CVE, GHSA, ...).
	Aliases []string `json:"aliases,omitempty"`
	// Upstream are identifiers of the upstream vulnerability a distribution
	// record is about (osv.dev's DEBIAN-CVE-*, ALPINE-CVE-* records).
	Upstream []string `json:"upstream,omitempty"`
	// Related are identifiers of related but distinct vulnerabilities.
	Related []string `json:"related,omitempty"`
	// Modified is when the record last changed.
	Modified time.Time `json:"modified"`
	// Published is when the record was first published, if known.
	Published time.Time `json:"published,omitzero"`
	// Summary is the one-line summary, or the start of the details when the
	// record has no summary.
	Summary string `json:"summary,omitempty"`
	// Severity lists the record's severity scores (CVSS vectors and the like).
	Severity []Severity `json:"severity,omitempty"`
	// DatabaseSeverity is database_specific.severity when the source states
	// one as a word (GHSA: CRITICAL, HIGH, MODERATE, LOW).
	DatabaseSeverity string `json:"databaseSeverity,omitempty"`
	// Affected lists the affected packages and their version ranges.
	Affected []Affected `json:"affected,omitempty"`
}

// Severity is one OSV severity entry.
type Severity struct {
	// Type is the scoring system: "CVSS_V2", "CVSS_V3", "CVSS_V4", "Ubuntu".
	Type string `json:"type"`
	// Score is the vector string (CVSS) or the word (Ubuntu: "medium").
	Score string `json:"score"`
}

// Affected is one affected package of a record.
type Affected struct {
	// Ecosystem is the OSV ecosystem exactly as in the record, release
	// included: "Go", "Debian:12", "Alpine:v3.20", "Ubuntu:22.04:LTS".
	Ecosystem string `json:"ecosystem"`
	// Name is the package name; OS ecosystems name source packages.
	Name string `json:"name"`
	// PURL is the package URL, if the record gives one.
	PURL string `json:"purl,omitempty"`
	// Ranges are the affected version ranges.
	Ranges []Range `json:"ranges,omitempty"`
	// Versions lists affected versions explicitly.
	Versions []string `json:"versions,omitempty"`
	// Severity is a per-package severity, which overrides the record's.
	Severity []Severity `json:"severity,omitempty"`
	// Urgency is ecosystem_specific.urgency (Debian security tracker:
	// "low", "medium", "high", "unimportant", "not yet assigned").
	Urgency string `json:"urgency,omitempty"`
	// DatabaseSeverity is database_specific.severity of this entry, if a word.
	DatabaseSeverity string `json:"databaseSeverity,omitempty"`
}

// Release returns the part of Ecosystem after the first colon ("12" for
// "Debian:12", "v3.20" for "Alpine:v3.20"), or "" when there is none.
func (a Affected) Release() string {
	_, rel, _ := strings.Cut(a.Ecosystem, ":")
	return rel
}

// Range is one OSV range: a type and its events.
type Range struct {
	// Type is "SEMVER", "ECOSYSTEM" or "GIT".
	Type string `json:"type"`
	// Events are the range's events in record order.
	Events []Event `json:"events"`
}

// Event is one OSV range event; exactly one field is set.
type Event struct {
	// Introduced is the first affected version ("0": every version before).
	Introduced string `json:"introduced,omitempty"`
	// Fixed is the first version no longer affected.
	Fixed string `json:"fixed,omitempty"`
	// LastAffected is the last affected version.
	LastAffected string `json:"last_affected,omitempty"`
	// Limit is an upper bound: versions at or above it are not affected.
	Limit string `json:"limit,omitempty"`
}

// osvRecord is the wire form of an OSV record, as much as this package reads.
type osvRecord struct {
	ID               string          `json:"id"`
	Aliases          []string        `json:"aliases"`
	Related          []string        `json:"related"`
	Upstream         []string        `json:"upstream"`
	Modified         string          `json:"modified"`
	Published        string          `json:"published"`
	Withdrawn        string          `json:"withdrawn"`
	Summary          string          `json:"summary"`
	Details          string          `json:"details"`
	Severity         []Severity      `json:"severity"`
	Affected         []osvAffected   `json:"affected"`
	DatabaseSpecific json.RawMessage `json:"database_specific"`
}

type osvAffected struct {
	Package struct {
		Ecosystem string `json:"ecosystem"`
		Name      string `json:"name"`
		PURL      string `json:"purl"`
	} `json:"package"`
	Ranges            []Range         `json:"ranges"`
	Versions          []string        `json:"versions"`
	Severity          []Severity      `json:"severity"`
	EcosystemSpecific json.RawMessage `json:"ecosystem_specific"`
	DatabaseSpecific  json.RawMessage `json:"database_specific"`
}

// ErrWithdrawn is returned by ParseRecord for a record that has been withdrawn.
var ErrWithdrawn = errors.New("record withdrawn")

// maxSummary bounds the summary kept for a record without one.
const maxSummary = 200

// ParseRecord decodes one OSV record in JSON. It rejects records without an
// id or with an unparseable modified time, and returns ErrWithdrawn (with
// the record) for withdrawn ones.
func ParseRecord(data []byte) (Record, error) {
	var w osvRecord
	if err := json.Unmarshal(data, &w); err != nil {
		return Record{}, fmt.Errorf("decoding OSV record: %w", err)
	}
	if strings.TrimSpace(w.ID) == "" {
		return Record{}, errors.New("OSV record without id")
	}
	r := Record{ID: w.ID, Aliases: w.Aliases, Related: w.Related, Upstream: w.Upstream, Summary: w.Summary, Severity: w.Severity}
	var err error
	if r.Modified, err = parseTime(w.Modified); err != nil {
		return Record{}, fmt.Errorf("record %s: modified: %w", w.ID, err)
	}
	if w.Published != "" {
		r.Published, _ = parseTime(w.Published)
	}
	if r.Summary == "" {
		r.Summary = firstLine(w.Details)
	}
	r.DatabaseSeverity = severityWord(w.DatabaseSpecific)
	for _, a := range w.Affected {
		if a.Package.Name == "" || a.Package.Ecosystem == "" {
			continue
		}
		r.Affected = append(r.Affected, Affected{
			Ecosystem:        a.Package.Ecosystem,
			Name:             a.Package.Name,
			PURL:             a.Package.PURL,
			Ranges:           a.Ranges,
			Versions:         a.Versions,
			Severity:         a.Severity,
			Urgency:          urgency(a.EcosystemSpecific),
			DatabaseSeverity: severityWord(a.DatabaseSpecific),
		})
	}
	if w.Withdrawn != "" {
		return r, ErrWithdrawn
	}
	return r, nil
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("missing")
	}
	return time.Parse(time.RFC3339Nano, s)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > maxSummary {
		s = strings.ToValidUTF8(s[:maxSummary], "") + "…"
	}
	return s
}

// severityWord returns a "severity" string field of a database_specific
// object, ignoring any other shape.
func severityWord(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var v struct {
		Severity any `json:"severity"`
	}
	if json.Unmarshal(raw, &v) != nil {
		return ""
	}
	s, _ := v.Severity.(string)
	return s
}

func urgency(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var v struct {
		Urgency any `json:"urgency"`
	}
	if json.Unmarshal(raw, &v) != nil {
		return ""
	}
	s, _ := v.Urgency.(string)
	return s
}
