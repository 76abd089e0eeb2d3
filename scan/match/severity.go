package match

import (
	"strings"

	"github.com/portcullis-dev/portcullis/scan/vulndb"
)

// Severity is a finding's severity. The zero value is SeverityUnknown:
// a record that states no usable severity is never counted as low.
type Severity int

// Severities, lowest first.
const (
	SeverityUnknown Severity = iota
	SeverityNone
	SeverityLow
	SeverityMedium
	SeverityHigh
	SeverityCritical
)

var severityNames = [...]string{"Unknown", "None", "Low", "Medium", "High", "Critical"}

// String returns the severity's name, e.g. "High".
func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return "Unknown"
	}
	return severityNames[s]
}

// MarshalText encodes the severity as its name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes a severity name, without regard to case; an
// unrecognised name is Unknown.
func (s *Severity) UnmarshalText(b []byte) error {
	*s = ParseSeverity(string(b))
	return nil
}

// ParseSeverity reads a severity word as sources write it: the names above,
// GHSA's "MODERATE", Ubuntu's "negligible", Debian urgencies ("low",
// "medium", "high"; "unimportant" is Low). Anything else is Unknown.
func ParseSeverity(word string) Severity {
	switch strings.ToLower(strings.TrimRight(strings.TrimSpace(word), "*")) {
	case "critical":
		return SeverityCritical
	case "high", "important":
		return SeverityHigh
	case "medium", "moderate":
		return SeverityMedium
	case "low", "negligible", "unimportant":
		return SeverityLow
	case "none":
		return SeverityNone
	}
	return SeverityUnknown
}

// SeverityFromScore buckets a CVSS score the way CVSS v3 does.
func SeverityFromScore(score float64) Severity {
	switch {
	case score >= 9:
		return SeverityCritical
	case score >= 7:
		return SeverityHigh
	case score >= 4:
		return SeverityMedium
	case score > 0:
		return SeverityLow
	}
	return SeverityNone
}

// rate decides the severity of a record for one affected entry, in order:
// a CVSS v3 vector, then a CVSS v4 vector (scores computed; the entry's own
// before the record's), a severity word (Ubuntu severity entries,
// database_specific.severity as in GHSA), the Debian urgency. v3 comes
// first because it is what most sources and other scanners still rank by.
// CVSS v2 vectors are not used.
func rate(r vulndb.Record, a vulndb.Affected) (Severity, float64, string) {
	for _, typ := range []string{"CVSS_V3", "CVSS_V4"} {
		for _, list := range [][]vulndb.Severity{a.Severity, r.Severity} {
			for _, s := range list {
				if s.Type != typ {
					continue
				}
				score, err := CVSS3BaseScore(s.Score)
				if typ == "CVSS_V4" {
					score, err = CVSS4Score(s.Score)
				}
				if err == nil {
					return SeverityFromScore(score), score, s.Score
				}
			}
		}
	}
	vector := ""
	for _, list := range [][]vulndb.Severity{a.Severity, r.Severity} {
		for _, s := range list {
			if s.Type == "Ubuntu" {
				if sev := ParseSeverity(s.Score); sev != SeverityUnknown {
					return sev, 0, vector
				}
			}
		}
	}
	for _, w := range []string{a.DatabaseSeverity, r.DatabaseSeverity, a.Urgency} {
		if sev := ParseSeverity(w); sev != SeverityUnknown {
			return sev, 0, vector
		}
	}
	return SeverityUnknown, 0, vector
}
