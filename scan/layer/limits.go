package layer

import (
	"strconv"
	"time"

	"github.com/portcullis-dev/portcullis/scan/inventory"
)

// Limits bound the work and memory the analysis of one layer may take. A
// layer that reaches one is returned Incomplete with the reason, never as
// clean. A zero field takes its value from DefaultLimits.
type Limits struct {
	// MaxUncompressedBytes bounds the expanded bytes of one analysis: the
	// uncompressed tar stream plus the holes of sparse files, which the tar
	// reader expands into zeros when a file is read.
	MaxUncompressedBytes int64
	// MaxEntries bounds the number of tar entries.
	MaxEntries int64
	// MaxFileBytes bounds a file read into memory for an extractor.
	MaxFileBytes int64
	// MaxDepth bounds the nesting of archives opened inside a file (a jar in a jar).
	MaxDepth int
	// MaxZstdWindow bounds the window (and so the memory) a zstd frame may ask for.
	MaxZstdWindow int64
	// Timeout bounds the whole analysis, checked in every loop that can run
	// long: reading and decompressing, walking entries, the readers handed to
	// extractors, stacking.
	Timeout time.Duration
	// MaxPathBytes bounds an entry's path and a link's target (Linux's
	// PATH_MAX is 4 KiB).
	MaxPathBytes int
	// MaxRecordBytes bounds what the Result keeps of a layer: the paths of
	// its links, whiteouts and files, the packages found (their strings and a
	// fixed overhead each) and the content kept of files (os-release).
	MaxRecordBytes int64
	// MaxPackages bounds the packages one layer's Result lists.
	MaxPackages int
	// MaxKeptFileBytes bounds the content kept of one file (os-release).
	MaxKeptFileBytes int64

	// Secrets is not a bound but a switch: it makes Analyze search the files
	// secrets.Wants accepts (at most secrets.MaxFileBytes each) for
	// credentials, reported redacted in Result.Secrets. Off by default; a
	// Result analysed with it off must not be cached under AnalyzerVersion.
	Secrets bool
}

// DefaultLimits returns limits that fit large real images (8 GiB, a million
// entries) while keeping one analysis's memory to a few hundred MiB.
func DefaultLimits() Limits {
	return Limits{
		MaxUncompressedBytes: 8 << 30,
		MaxEntries:           1_000_000,
		MaxFileBytes:         128 << 20,
		MaxDepth:             3,
		MaxZstdWindow:        128 << 20,
		Timeout:              10 * time.Minute,
		MaxPathBytes:         4 << 10,
		MaxRecordBytes:       64 << 20,
		MaxPackages:          200_000,
		MaxKeptFileBytes:     64 << 10,
	}
}

// withDefaults fills zero (and negative) fields from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	orDefault(&l.MaxUncompressedBytes, d.MaxUncompressedBytes)
	orDefault(&l.MaxEntries, d.MaxEntries)
	orDefault(&l.MaxFileBytes, d.MaxFileBytes)
	orDefault(&l.MaxDepth, d.MaxDepth)
	orDefault(&l.MaxZstdWindow, d.MaxZstdWindow)
	orDefault(&l.Timeout, d.Timeout)
	orDefault(&l.MaxPathBytes, d.MaxPathBytes)
	orDefault(&l.MaxRecordBytes, d.MaxRecordBytes)
	orDefault(&l.MaxPackages, d.MaxPackages)
	orDefault(&l.MaxKeptFileBytes, d.MaxKeptFileBytes)
	return l
}

// orDefault sets *v to d when *v is zero or negative.
func orDefault[T ~int | ~int64](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// DefaultExtractors returns every extractor of package inventory, with
// archives bounded by l: MaxDepth levels of nesting and MaxFileBytes of
// content decompressed from each.
func DefaultExtractors(l Limits) []inventory.Extractor {
	l = l.withDefaults()
	return inventory.All(l.MaxDepth, l.MaxFileBytes)
}

// formatCount writes n with thousands separators: 1000000 → "1,000,000".
func formatCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	if n < 0 {
		return "-" + formatCount(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
