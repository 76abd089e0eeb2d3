package vulndb

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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
	// Platforms limits a Go entry to binaries built for some platforms: one
	// element per distinct platform limit of the packages it names
	// (ecosystem_specific.imports[].goos and goarch). The entry affects a
	// binary built for a platform that any element admits. Empty means every
	// platform: the entry names no packages, or one of them is not limited.
	Platforms []Platform `json:"platforms,omitempty"`
}

// Platform is the platform limit of one affected Go package: the operating
// systems and architectures it is vulnerable on. An empty list admits every
// value.
type Platform struct {
	// GOOS lists the operating systems ("windows", "linux", ...).
	GOOS []string `json:"goos,omitempty"`
	// GOARCH lists the architectures ("amd64", "arm64", ...).
	GOARCH []string `json:"goarch,omitempty"`
}

// Admits reports whether a binary built for goos/goarch is on the platform,
// as govulncheck decides it: each of GOOS and GOARCH admits the binary's
// value when the list is empty, the value is unknown (""), or the list holds it.
func (p Platform) Admits(goos, goarch string) bool {
	return admits(p.GOOS, goos) && admits(p.GOARCH, goarch)
}

func admits(list []string, v string) bool {
	return v == "" || len(list) == 0 || slices.Contains(list, v)
}

// AffectsPlatform reports whether the entry applies to a binary built for
// goos/goarch ("" for either when unknown): it has no platform limit, or one
// of its Platforms admits the binary.
func (a Affected) AffectsPlatform(goos, goarch string) bool {
	if len(a.Platforms) == 0 {
		return true
	}
	for _, p := range a.Platforms {
		if p.Admits(goos, goarch) {
			return true
		}
	}
	return false
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
			Platforms:        goPlatforms(a.Package.Ecosystem, a.EcosystemSpecific),
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

// goPlatforms returns the platform limits of a Go entry's packages
// (ecosystem_specific.imports[].goos/goarch), each list sorted and the
// limits distinct, or nil when the entry is not a Go one, names no packages
// or names one that is not limited.
func goPlatforms(ecosystem string, raw json.RawMessage) []Platform {
	if ecosystem != "Go" || len(raw) == 0 {
		return nil
	}
	var v struct {
		Imports []struct {
			GOOS   []string `json:"goos"`
			GOARCH []string `json:"goarch"`
		} `json:"imports"`
	}
	if json.Unmarshal(raw, &v) != nil {
		return nil
	}
	var out []Platform
	for _, imp := range v.Imports {
		if len(imp.GOOS) == 0 && len(imp.GOARCH) == 0 {
			return nil
		}
		p := Platform{GOOS: sortedSet(imp.GOOS), GOARCH: sortedSet(imp.GOARCH)}
		if !slices.ContainsFunc(out, func(q Platform) bool {
			return slices.Equal(p.GOOS, q.GOOS) && slices.Equal(p.GOARCH, q.GOARCH)
		}) {
			out = append(out, p)
		}
	}
	return out
}

func sortedSet(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}
