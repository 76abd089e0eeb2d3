package layer

import (
	"github.com/portcullis-dev/portcullis/scan/inventory"
	"github.com/portcullis-dev/portcullis/scan/secrets"
)

// Compression is how a layer blob is compressed.
type Compression string

// Compressions Analyze recognises by their magic bytes.
const (
	Uncompressed Compression = "none"
	Gzip         Compression = "gzip"
	Zstd         Compression = "zstd"
)

// Result is what one layer holds, as far as the scan needs it. It depends only
// on the layer's content, so it can be cached by DiffID.
type Result struct {
	// Digest is the digest of the compressed bytes, "sha256:<hex>"; empty when
	// the analysis stopped before reading them all.
	Digest string `json:"digest,omitempty"`
	// DiffID is the sha256 digest of the uncompressed tar stream; empty when
	// the analysis stopped before its end.
	DiffID string `json:"diffID,omitempty"`
	// Compression is the compression Analyze found.
	Compression Compression `json:"compression"`
	// Size counts the compressed bytes read.
	Size int64 `json:"size"`
	// UncompressedSize counts the bytes of the tar stream read (at most
	// Limits.MaxUncompressedBytes).
	UncompressedSize int64 `json:"uncompressedSize"`
	// Entries counts the tar entries read.
	Entries int64 `json:"entries"`

	// Files are the files read that yielded packages, an extractor error or
	// content the analyzer keeps (os-release), in tar order.
	Files []File `json:"files,omitempty"`
	// Links are the symbolic and hard links, in tar order.
	Links []Link `json:"links,omitempty"`
	// Whiteouts are the paths this layer deletes from lower layers (".wh.<name>").
	Whiteouts []string `json:"whiteouts,omitempty"`
	// OpaqueDirs are the directories whose lower-layer content this layer
	// hides (".wh..wh..opq").
	OpaqueDirs []string `json:"opaqueDirs,omitempty"`
	// Paths is every entry's path, so that stacking knows what this layer replaces.
	Paths PathSet `json:"paths"`
	// Errors are the files an extractor could not parse; each makes the layer
	// incomplete (the first named in IncompleteReason).
	Errors []FileError `json:"errors,omitempty"`
	// Secrets are the secrets found in the layer's files, redacted, in tar
	// order, when Limits.Secrets is on: at most MaxSecrets of each
	// confidence level, so that low-confidence ones never push out others.
	Secrets []Secret `json:"secrets,omitempty"`
	// SecretsOmitted counts the secrets found past MaxSecrets, all levels
	// together.
	SecretsOmitted int `json:"secretsOmitted,omitempty"`
	// SecretsOmittedBy counts the secrets found past MaxSecrets by
	// confidence level.
	SecretsOmittedBy secrets.Counts `json:"secretsOmittedByConfidence,omitzero"`
	// SecretsNotSearched lists files (or files inside their archives) that
	// the secret search did not read although a secret could be there, with
	// the reason: over the size limit, an archive it could not open or
	// past its bounds, a link from a searched path to one the search skips
	// by design, a search stopped by the deadline. At most
	// secrets.MaxNotSearched of them. A policy that requires every file be
	// searched fails a layer with any (SecretsNotSearchedCount > 0).
	SecretsNotSearched []secrets.NotSearched `json:"secretsNotSearched,omitempty"`
	// SecretsNotSearchedCount counts the files not searched, listed in
	// SecretsNotSearched or not.
	SecretsNotSearchedCount int `json:"secretsNotSearchedCount,omitempty"`

	// Incomplete is set when the analysis reached a limit: the layer may hold
	// more than Files say.
	Incomplete bool `json:"incomplete,omitempty"`
	// IncompleteReason says which limit, e.g. "over 1,000,000 entries".
	IncompleteReason string `json:"incompleteReason,omitempty"`
}

// File is a regular file the analysis read. Every path in a Result is clean and
// absolute ("/etc/os-release"), whatever the tar entry said.
type File struct {
	// Path is the file's clean absolute path.
	Path string `json:"path"`
	// Size is the file's size in bytes.
	Size int64 `json:"size"`
	// Packages are what the extractors found in it.
	Packages []inventory.Package `json:"packages,omitempty"`
	// Data is the content of files the analyzer keeps (os-release), else nil.
	Data []byte `json:"data,omitempty"`
	// As is set for a file read as the package database at that path although
	// it is elsewhere ("/opt/db/status" read as "/var/lib/dpkg/status"): Squash
	// counts its packages only where the image's database path leads to it
	// through links. Empty for a file read at its own path.
	As string `json:"as,omitempty"`
	// Error is the extractor's error for a file read As a database, which
	// Squash reports only if the database path leads to it.
	Error string `json:"error,omitempty"`
}

// Link is a symbolic or hard link. Target is absolute and clean: a symlink's
// relative target is resolved against the link's directory
// ("/etc/os-release" → "../usr/lib/os-release" gives "/usr/lib/os-release").
type Link struct {
	// Path is the link's own path.
	Path string `json:"path"`
	// Target is the path it leads to.
	Target string `json:"target"`
	// Hard is set for a hard link, clear for a symlink.
	Hard bool `json:"hard,omitempty"`
	// Wanted is set for a hard link an extractor wants whose target is not a
	// file this layer read: Squash looks for the target in lower layers.
	Wanted bool `json:"wanted,omitempty"`
}

// FileError is a file an extractor could not parse.
type FileError struct {
	// Path is the file's path.
	Path string `json:"path"`
	// Err is the extractor's error message.
	Err string `json:"error"`
}

// Packages returns the packages of all Files.
func (r Result) Packages() []inventory.Package {
	var pkgs []inventory.Package
	for _, f := range r.Files {
		pkgs = append(pkgs, f.Packages...)
	}
	return pkgs
}
