package inventory

import "fmt"

// Bounds on what one file may make an extractor keep. Past one, the extractor
// returns a *LimitError (the layer is then incomplete), never a silently
// shortened list.
const (
	// MaxPackagesPerFile bounds the packages one file may yield: a dpkg or
	// apk database of a large real image lists a few thousand.
	MaxPackagesPerFile = 100_000
	// MaxFieldBytes bounds one kept field value (a name, a version, a
	// source): real ones are a few dozen bytes.
	MaxFieldBytes = 4 << 10
	// MaxManifestBytes bounds a package.json or Python METADATA file read
	// whole; real ones are at most a few hundred KiB.
	MaxManifestBytes = 16 << 20
)

// ParseError reports that a file an extractor wanted does not parse as its
// consumer would read it (or parses ambiguously), so the packages returned
// alongside it may be incomplete.
type ParseError struct {
	// Format names the parser, e.g. "dpkg status", "package.json".
	Format string
	// Line is the 1-based line the problem is on; 0 when not line-based.
	Line int
	// Reason says what is wrong.
	Reason string
}

// Error returns the format, line and reason.
func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s: line %d: %s", e.Format, e.Line, e.Reason)
	}
	return e.Format + ": " + e.Reason
}

func parseErrorf(format string, line int, reason string, args ...any) *ParseError {
	return &ParseError{Format: format, Line: line, Reason: fmt.Sprintf(reason, args...)}
}
