package layer

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"strings"
)

// digestReader hashes and counts the compressed bytes as they are read, and
// stops reading once done (the analysis's context) reports an error.
type digestReader struct {
	done      func() error
	r         io.Reader
	h         hash.Hash
	algorithm string
	n         int64
	eof       bool
}

// newDigestReader reads r, hashing with the algorithm of expected ("" means sha256).
func newDigestReader(ctx context.Context, r io.Reader, expected string) (*digestReader, error) {
	done := func() error {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return nil
	}
	d := &digestReader{done: done, r: r, algorithm: "sha256"}
	if expected != "" {
		alg, hexPart, ok := strings.Cut(expected, ":")
		if !ok || hexPart == "" {
			return nil, fmt.Errorf("malformed digest %q", expected)
		}
		d.algorithm = alg
	}
	switch d.algorithm {
	case "sha256":
		d.h = sha256.New()
	case "sha512":
		d.h = sha512.New()
	default:
		return nil, fmt.Errorf("unsupported digest algorithm %q", d.algorithm)
	}
	return d, nil
}

// Read reads and hashes the blob.
func (d *digestReader) Read(p []byte) (int, error) {
	if err := d.done(); err != nil {
		return 0, err
	}
	n, err := d.r.Read(p)
	d.h.Write(p[:n])
	d.n += int64(n)
	if err == io.EOF {
		d.eof = true
	}
	return n, err
}

func (d *digestReader) digest() string {
	return d.algorithm + ":" + hex.EncodeToString(d.h.Sum(nil))
}

// limitError is a limit reached while reading the layer.
type limitError struct{ reason string }

// Error returns the reason.
func (e *limitError) Error() string { return e.reason }

// errorMemo remembers the first error other than io.EOF its reader returned,
// so that a read failure inside an extractor is seen as the layer's.
type errorMemo struct {
	r   io.Reader
	err error
}

// Read reads from the underlying reader.
func (m *errorMemo) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	if err != nil && err != io.EOF && m.err == nil {
		m.err = err
	}
	return n, err
}

// entryReader reads one tar entry's content for the analysis and its
// extractors. It checks the deadline on every read, and counts the bytes it
// hands out beyond those the tar stream held for the entry (the holes of a
// sparse file, which the tar reader expands into zeros) against the same
// limit as the stream's bytes: a few hundred bytes of tar may declare 2^62
// bytes of holes.
type entryReader struct {
	r      io.Reader
	ra     *readAhead
	start  int64 // ra.pos when the entry's content began
	handed int64 // bytes handed out
	holes  int64 // of which counted as holes
}

// Read reads the entry's content.
func (e *entryReader) Read(p []byte) (int, error) {
	if err := e.ra.deadline.check(); err != nil {
		return 0, err
	}
	n, err := e.r.Read(p)
	e.handed += int64(n)
	if h := e.handed - (e.ra.pos - e.start); h > e.holes {
		more := h - e.holes
		e.holes = h
		if lerr := e.ra.addHoles(more); lerr != nil {
			return n, lerr
		}
	}
	return n, err
}
