package inventory

import (
	"fmt"
	"io"
)

// OSV ecosystem names used in Package.Ecosystem.
const (
	EcosystemDebian = "Debian"
	EcosystemUbuntu = "Ubuntu"
	EcosystemAlpine = "Alpine"
	EcosystemGo     = "Go"
	EcosystemNPM    = "npm"
	EcosystemPyPI   = "PyPI"
	EcosystemMaven  = "Maven"
)

// Version names what the extractors of this package find. It changes whenever
// any of them finds something different in the same file, or records more of
// it (inventory/2: Go binaries' GOOS and GOARCH; inventory/4: every
// extractor reads its file as its consumer does and reports what it cannot
// read as an error), so that inventories cached under an older version are
// recomputed.
const Version = "inventory/4"

// Package is one installed package found in an image.
type Package struct {
	// Ecosystem is the OSV ecosystem name, e.g. "Debian", "Go", "npm".
	// dpkg and apk databases yield "Debian" and "Alpine"; the image's distro may
	// refine that (a dpkg database in an Ubuntu image lists Ubuntu packages).
	Ecosystem string `json:"ecosystem"`
	// Name is the package name in its ecosystem ("groupId:artifactId" for Maven).
	Name string `json:"name"`
	// Version is the installed version, exactly as recorded.
	Version string `json:"version"`
	// SourceName is the source package an OS package was built from
	// (dpkg Source, apk origin), which OS advisories are keyed by.
	SourceName string `json:"sourceName,omitempty"`
	// SourceVersion is the source package's version when it differs from Version
	// (dpkg "Source: name (version)"); empty means the same as Version.
	SourceVersion string `json:"sourceVersion,omitempty"`
	// Path is the file the package was read from; a package inside an archive is
	// named by the archive's path, "!/" and the path inside it.
	Path string `json:"path"`
	// Layer is the diffID of the layer the package came from.
	Layer string `json:"layer,omitempty"`
	// Arch is an OS package's architecture as its database records it (dpkg
	// Architecture: "amd64", "all"; apk A: "x86_64"); empty when not recorded.
	Arch string `json:"arch,omitempty"`
	// GOOS is the operating system a Go binary was built for ("linux",
	// "windows", ...), as its build information records it; empty when
	// unknown or not a Go package.
	GOOS string `json:"goos,omitempty"`
	// GOARCH is the architecture a Go binary was built for ("amd64",
	// "arm64", ...), as its build information records it; empty when unknown
	// or not a Go package.
	GOARCH string `json:"goarch,omitempty"`
}

// Extractor reads packages from one kind of file, which it asks for by path.
// Extract must not keep data after it returns: the caller reuses the buffer.
//
// The extractors of this package return two kinds of error, each possibly
// alongside the packages read before it or elsewhere in the file (several
// may be joined with errors.Join; use errors.As): a *LimitError when a bound
// stopped them (too many packages, a value, file or archive too large, too
// deep), and a *ParseError when the file does not parse as its consumer
// (dpkg, apk, Node, Python, the JDK) reads it or parses ambiguously. Either
// means the file's packages may be incomplete; neither is ever turned into
// "no packages".
type Extractor interface {
	// Wants reports whether the file at the clean absolute path is one to read.
	Wants(path string) bool
	// Extract returns the packages recorded in the file's contents.
	Extract(path string, data []byte) ([]Package, error)
}

// Sniffer is implemented by extractors that decide by content as well as by path:
// a file they Want is read only if WantsContent accepts its size and first bytes.
type Sniffer interface {
	// WantsContent reports whether a file of this size starting with head
	// (its first bytes, at most SniffLen of them) is one to read.
	WantsContent(path string, size int64, head []byte) bool
}

// SniffLen is the most bytes of a file a Sniffer is shown.
const SniffLen = 512

// LimitError reports that an extractor stopped at one of its bounds, so the
// packages it returned alongside it may be incomplete.
type LimitError struct {
	// Reason says which bound, e.g. "nested archive depth over 3".
	Reason string
}

// Error returns the reason.
func (e *LimitError) Error() string { return e.Reason }

func limitf(format string, args ...any) *LimitError {
	return &LimitError{Reason: fmt.Sprintf(format, args...)}
}

// All returns every extractor in this package; archives are opened to
// maxDepth levels of nesting and maxArchiveBytes of decompressed content each.
func All(maxDepth int, maxArchiveBytes int64) []Extractor {
	return []Extractor{
		Dpkg{},
		APK{},
		GoBinary{},
		NPM{},
		Python{},
		Java{MaxDepth: maxDepth, MaxBytes: maxArchiveBytes},
	}
}

// StreamExtractor is implemented by extractors that can also read a file too
// large to hold in memory, as a stream read once from start to end.
type StreamExtractor interface {
	// ExtractStream returns the packages recorded in the file read from r.
	ExtractStream(path string, r io.Reader) ([]Package, error)
}
