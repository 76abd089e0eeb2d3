package layer

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/portcullis-dev/portcullis/scan/bytesize"
	"github.com/portcullis-dev/portcullis/scan/inventory"
	"github.com/portcullis-dev/portcullis/scan/secrets"
)

// AnalyzerVersion names what Analyze (with Limits.Secrets on), the extractors
// of package inventory and the detectors of package secrets find. Results
// cached under an older version must be recomputed; it changes whenever any of
// them finds something different in the same layer (layer/3: limits on
// records, sparse holes and extractor errors make a layer incomplete,
// candidate package databases, content under .wh..wh. directories).
const AnalyzerVersion = "portcullis-layer/3+" + secrets.Version + "+" + inventory.Version

// ErrDigestMismatch is returned (wrapped) when a layer's bytes do not have the
// expected digest.
var ErrDigestMismatch = errors.New("layer digest mismatch")

var errTimeout = errors.New("layer analysis timed out")

// Analyze reads one layer blob from r, gzip, zstd or plain tar as its first
// bytes say, and returns what it holds. It reads the stream once and writes
// nothing to disk; it holds in memory only the files an extractor wants (or,
// with limits.Secrets, the secret search), one at a time, each up to
// limits.MaxFileBytes, and reads each of them once.
//
// It checks the compressed bytes against expectedDigest ("sha256:<hex>" or
// "sha512:<hex>"; "" accepts any and reports the sha256 digest) and computes
// the diffID. A layer that reaches a limit is returned with Incomplete set and
// no error; a digest mismatch (ErrDigestMismatch), a corrupt stream or a
// cancelled ctx is an error.
func Analyze(ctx context.Context, r io.Reader, expectedDigest string, limits Limits, extractors ...inventory.Extractor) (Result, error) {
	limits = limits.withDefaults()
	ctx, cancel := context.WithTimeoutCause(ctx, limits.Timeout, errTimeout)
	defer cancel()
	dr, err := newDigestReader(ctx, r, expectedDigest)
	if err != nil {
		return Result{}, err
	}
	a := &analyzer{limits: limits, extractors: extractors, byPath: map[string]entryRef{},
		deadline: deadline{done: ctx.Done(), cause: func() error { return context.Cause(ctx) }}, ctx: ctx}
	complete, err := a.walk(ctx, dr)
	if err != nil {
		return Result{}, err
	}
	if complete || a.drain {
		// Read what the decompressor left (nothing in a well-formed blob), or
		// the rest of a layer abandoned at a limit, to check its digest.
		if _, err := io.Copy(io.Discard, dr); err != nil && !a.stopped(ctx, err) {
			return Result{}, fmt.Errorf("reading layer: %w", err)
		}
	}
	if dr.eof {
		a.res.Digest = dr.digest()
		if expectedDigest != "" && a.res.Digest != expectedDigest {
			return Result{}, fmt.Errorf("%w: read %s, expected %s", ErrDigestMismatch, a.res.Digest, expectedDigest)
		}
	}
	a.res.Size = dr.n
	a.finish()
	return a.res, nil
}

// walk decompresses and walks the tar stream; complete reports that it read
// the stream to its end.
func (a *analyzer) walk(ctx context.Context, dr *digestReader) (complete bool, err error) {
	br := bufio.NewReaderSize(dr, 64<<10)
	magic, _ := br.Peek(4)
	var dec io.Reader = br
	switch {
	case isGzip(magic):
		a.res.Compression = Gzip
		zr, err := gzip.NewReader(br)
		if err != nil {
			return false, a.stop(ctx, err)
		}
		dec = zr
	case isZstd(magic):
		a.res.Compression = Zstd
		window := uint64(max(a.limits.MaxZstdWindow, zstd.MinWindowSize))
		zd, err := zstd.NewReader(br,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxWindow(window),
			zstd.WithDecoderMaxMemory(window))
		if err != nil {
			return false, fmt.Errorf("starting zstd: %w", err)
		}
		defer zd.Close()
		dec = zd
	default:
		a.res.Compression = Uncompressed
	}
	ra := startReadAhead(dec, a.limits.MaxUncompressedBytes, a.deadline)
	defer func() {
		ra.close()
		a.res.UncompressedSize = ra.size()
	}()
	tr := tar.NewReader(ra)
	er := &entryReader{r: tr, ra: ra}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return false, a.stop(ctx, err)
		}
		if err := a.deadline.check(); err != nil {
			return false, a.stop(ctx, err)
		}
		if a.res.Entries == a.limits.MaxEntries {
			return false, a.stop(ctx, &limitError{"over " + formatCount(a.limits.MaxEntries) + " entries"})
		}
		a.res.Entries++
		*er = entryReader{r: tr, ra: ra, start: ra.pos}
		if err := a.entry(ctx, hdr, er); err != nil {
			return false, a.stop(ctx, err)
		}
	}
	// The tar's end is not the stream's: read its padding and the compressed
	// stream's trailer (which checks its CRC) so the diffID covers every byte.
	if err := ra.drain(); err != nil {
		return false, a.stop(ctx, err)
	}
	a.res.DiffID = ra.diffID()
	ra.close()
	if _, err := io.Copy(io.Discard, br); err != nil {
		return false, a.stop(ctx, err)
	}
	return true, nil
}

// isGzip reports whether a stream starting with magic is gzip.
func isGzip(magic []byte) bool {
	return len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b
}

// isZstd reports whether a stream starting with magic is zstd: a zstd frame
// (0xFD2FB528, little-endian) or a skippable frame (0x184D2A50 to
// 0x184D2A5F), which a zstd reader skips.
func isZstd(magic []byte) bool {
	if len(magic) < 4 {
		return false
	}
	return string(magic) == "\x28\xb5\x2f\xfd" ||
		magic[0]&0xf0 == 0x50 && magic[1] == 0x2a && magic[2] == 0x4d && magic[3] == 0x18
}

// stop turns a failure to read the layer into an incomplete result (a limit,
// nil error) or an error.
func (a *analyzer) stop(ctx context.Context, err error) error {
	if a.stopped(ctx, err) {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("analysing layer: %w", context.Cause(ctx))
	}
	return fmt.Errorf("reading layer: %w", err)
}

// stopped reports whether err is a limit, marking the result incomplete.
func (a *analyzer) stopped(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		if context.Cause(ctx) != errTimeout {
			return false
		}
		a.incomplete("not finished within " + a.limits.Timeout.String())
		a.drain = false
		return true
	}
	var le *limitError
	switch {
	case errors.As(err, &le):
		a.incomplete(le.reason)
	case errors.Is(err, zstd.ErrWindowSizeExceeded), errors.Is(err, zstd.ErrDecoderSizeExceeded):
		a.incomplete("zstd window over " + bytesize.Format(a.limits.MaxZstdWindow))
	default:
		return false
	}
	a.drain = true
	return true
}

// incomplete marks the result incomplete; the first reason is the one kept.
func (a *analyzer) incomplete(reason string) {
	if !a.res.Incomplete {
		a.res.Incomplete = true
		a.res.IncompleteReason = reason
	}
}
