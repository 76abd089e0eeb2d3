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
