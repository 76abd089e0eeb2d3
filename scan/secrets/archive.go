package secrets

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/bzip2"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/portcullis-dev/portcullis/scan/bytesize"
)

// Defaults of Options.
const (
	// DefaultMaxDepth is how many levels of archives Search opens: an
	// archive, the archives inside it and those inside them.
	DefaultMaxDepth = 3
	// DefaultMaxExpandedBytes bounds the bytes Search decompresses from one
	// file's archives, all levels together.
	DefaultMaxExpandedBytes = 64 << 20
)

// maxMemberName bounds the length of a member name kept in a finding.
const maxMemberName = 512

// zstdMaxWindow bounds the memory a zstd stream inside a file may ask for.
const zstdMaxWindow = 8 << 20

// Options bound Search.
type Options struct {
	// MaxDepth bounds the nesting of archives opened: 1 opens the file if
	// it is an archive but not the archives inside it. Zero or less means
	// DefaultMaxDepth.
	MaxDepth int
	// MaxExpandedBytes bounds the bytes decompressed from the file's
	// archives (gzip, bzip2, zstd, zip members), all levels together. Zero
	// or less means DefaultMaxExpandedBytes.
	MaxExpandedBytes int64
}

func (o Options) withDefaults() Options {
	if o.MaxDepth <= 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	if o.MaxExpandedBytes <= 0 {
		o.MaxExpandedBytes = DefaultMaxExpandedBytes
	}
	return o
}

// Search returns the secrets in the contents of the file at path: in its
// bytes as they are, binary or not, and, when it is an archive (zip and jar,
// tar, gzip, bzip2 or zstd, recognised by content, whatever the name), in
// the files inside it, to opts.MaxDepth levels and opts.MaxExpandedBytes of
// decompressed data. Members it cannot open (over MaxFileBytes, encrypted,
// corrupt, xz or 7z, past a bound) are listed in Report.NotSearched with the
// reason; so is the file itself when ctx ends before the search does, in
// which case Search returns what it found so far and context.Cause(ctx).
// Its time is linear in the bytes searched and decompressed (O(n log n) in
// the candidate matches), its memory a few times MaxFileBytes per level.
// Like Scan it keeps nothing of data and does not change it.
func Search(ctx context.Context, path string, data []byte, opts Options) (Report, error) {
	s := &searcher{b: newBudget(ctx), c: newCollector(MaxFindings), path: path, opts: opts.withDefaults()}
	err := s.search("", data, 0)
	if err != nil {
		s.notSearched("", "search stopped: "+err.Error())
	}
	return Report{
		Secrets: s.c.secrets, Omitted: s.c.omitted,
		NotSearched: s.skipped, NotSearchedCount: s.skippedCount,
		ExpandedBytes: s.expanded,
	}, err
}

// searcher is the state of one Search.
type searcher struct {
	b            *budget
	c            *collector
	path         string
	opts         Options
	expanded     int64
	skipped      []NotSearched
	skippedCount int
}

func (s *searcher) notSearched(member, reason string) {
	s.skippedCount++
	if len(s.skipped) < MaxNotSearched {
		s.skipped = append(s.skipped, NotSearched{Path: s.path, Member: member, Reason: reason})
	}
}

// errStop marks errors that end the whole search (the caller's context),
// as opposed to one archive being unreadable.
type errStop struct{ err error }

func (e *errStop) Error() string { return e.err.Error() }
func (e *errStop) Unwrap() error { return e.err }

// search searches data, the member (empty for the file itself) at the
// given depth of archive nesting: first the files inside it, if it is an
// archive, then its own bytes, skipping what the members already showed
// (a stored zip entry or a tar member is in the archive's bytes as well).
func (s *searcher) search(member string, data []byte, depth int) error {
	if err := s.b.err(); err != nil {
		return err
	}
	before := len(s.c.secrets)
	if err := s.open(member, data, depth); err != nil {
		return err
	}
	type key struct {
		typ         string
		fingerprint uint64
	}
	var shown map[key]bool
	if inner := s.c.secrets[before:]; len(inner) > 0 {
		shown = make(map[key]bool, len(inner))
		for _, f := range inner {
			shown[key{f.Type, f.fingerprint}] = true
		}
	}
	return run(s.b, textFilter, bytesText(data), s.c, Secret{Path: s.path, Member: member}, func(typ string, fp uint64) bool {
		return shown[key{typ, fp}]
	})
}

// open searches the members of data if it is an archive, at depth.
func (s *searcher) open(member string, data []byte, depth int) error {
	kind := archiveKind(data)
	if kind == "" {
		return nil
	}
	if depth >= s.opts.MaxDepth {
		s.notSearched(member, fmt.Sprintf("%s archive nested deeper than %d levels", kind, s.opts.MaxDepth))
		return nil
	}
	var err error
	switch kind {
	case "zip":
		err = s.zip(member, data, depth)
	case "tar":
		err = s.tar(member, bytes.NewReader(data), depth)
	case "gzip", "bzip2", "zstd":
		err = s.stream(kind, member, data, depth)
	default:
		s.notSearched(member, kind+" archive, which the secret search cannot open")
		return nil
	}
	if se := (*errStop)(nil); errors.As(err, &se) {
		return se.err
	}
	if err != nil {
		s.notSearched(member, fmt.Sprintf("%s archive not read to its end: %v", kind, err))
	}
	return nil
}

// archiveKind names the archive format data is in, by its first bytes (a
// zip also by the end-of-central-directory record of a zip with something
// before it, as the JDK and unzip find it): "" for none.
func archiveKind(data []byte) string {
	switch {
	case bytes.HasPrefix(data, []byte("PK\x03\x04")), bytes.HasPrefix(data, []byte("PK\x05\x06")):
		return "zip"
	case bytes.HasPrefix(data, []byte{0x1f, 0x8b}):
		return "gzip"
	case len(data) >= 4 && bytes.HasPrefix(data, []byte("BZh")) && data[3] >= '1' && data[3] <= '9':
		return "bzip2"
	case bytes.HasPrefix(data, []byte("\x28\xb5\x2f\xfd")):
		return "zstd"
	case bytes.HasPrefix(data, []byte("\xfd7zXZ\x00")):
		return "xz"
	case bytes.HasPrefix(data, []byte("7z\xbc\xaf\x27\x1c")):
		return "7z"
	case isTar(data):
		return "tar"
	case hasZipEnd(data):
		return "zip"
	}
	return ""
}

// isTar reports whether data starts with a POSIX or GNU tar header.
func isTar(data []byte) bool {
	return len(data) >= 512 && bytes.HasPrefix(data[257:], []byte("ustar"))
}

// hasZipEnd reports whether a zip's end-of-central-directory record is
// where a zip reader looks for it: in the last 64 KiB and 22 bytes, a
// comment's length before the end.
func hasZipEnd(data []byte) bool {
	tail := data[max(0, len(data)-(65535+22)):]
	for {
		i := bytes.LastIndex(tail, []byte("PK\x05\x06"))
		if i < 0 {
			return false
		}
		if i+22 <= len(tail) {
			comment := int(tail[i+20]) | int(tail[i+21])<<8
			if i+22+comment == len(tail) {
				return true
			}
		}
		tail = tail[:i]
	}
}

// joinMember names a member of the archive member parent.
func joinMember(parent, name string) string {
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	if len(name) > maxMemberName {
		name = name[:maxMemberName] + "…"
	}
	if parent == "" {
		return name
	}
	return parent + "!/" + name
}

// zip searches the entries of a zip (jar, war, wheel …).
func (s *searcher) zip(member string, data []byte, depth int) error {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		if !bytes.HasPrefix(data, []byte("PK")) {
			return nil // a chance "PK\x05\x06" near the end of some other file
		}
		return err
	}
	for _, f := range zr.File {
		if err := s.b.err(); err != nil {
			return &errStop{err}
		}
		if strings.HasSuffix(f.Name, "/") {
			continue
		}
		name := joinMember(member, f.Name)
		switch {
		case f.UncompressedSize64 > MaxFileBytes:
			s.notSearched(name, "over "+bytesize.Format(MaxFileBytes))
			continue
		case f.Flags&1 != 0:
			s.notSearched(name, "encrypted")
			continue
		}
		rc, err := f.Open()
		if err != nil {
			s.notSearched(name, unreadable(err))
			continue
		}
		content, err := s.read(rc, f.Method != zip.Store)
		rc.Close()
		if err != nil {
			s.notSearched(name, unreadable(err))
			continue
		}
		if err := s.search(name, content, depth+1); err != nil {
			return &errStop{err}
		}
	}
	return nil
}

// boundError is a member past a bound of the search: too large, or past
// the decompression allowed.
type boundError struct{ reason string }

func (e *boundError) Error() string { return e.reason }

// errTooBig is a member that decompressed to more than MaxFileBytes.
var errTooBig = &boundError{"over " + bytesize.Format(MaxFileBytes)}

// read reads a member of at most MaxFileBytes, counting what it
// decompresses against the search's bound, which it never reads past.
func (s *searcher) read(r io.Reader, compressed bool) ([]byte, error) {
	limit := int64(MaxFileBytes + 1)
	if compressed {
		left := s.opts.MaxExpandedBytes - s.expanded
		if left < 0 {
			return nil, s.overExpanded()
		}
		limit = min(limit, left+1)
	}
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(r, limit))
	if compressed {
		s.expanded += n
		if s.expanded > s.opts.MaxExpandedBytes {
			return nil, s.overExpanded()
		}
	}
	if err != nil {
		return nil, err
	}
	if n > MaxFileBytes {
		return nil, errTooBig
	}
	return buf.Bytes(), nil
}

func (s *searcher) overExpanded() error {
	return &boundError{fmt.Sprintf("over %s decompressed", bytesize.Format(s.opts.MaxExpandedBytes))}
}

// unreadable says why a member was not read.
func unreadable(err error) string {
	if be := (*boundError)(nil); errors.As(err, &be) {
		return be.reason
	}
	return "unreadable: " + err.Error()
}

// countingReader counts the bytes a decompressor produces against the
// search's bound.
type countingReader struct {
	s *searcher
	r io.Reader
}

func (c *countingReader) Read(p []byte) (int, error) {
	left := c.s.opts.MaxExpandedBytes - c.s.expanded
	if left < 0 {
		return 0, c.s.overExpanded()
	}
	if err := c.s.b.err(); err != nil {
		return 0, &errStop{err}
	}
	if int64(len(p)) > left+1 {
		p = p[:left+1]
	}
	n, err := c.r.Read(p)
	c.s.expanded += int64(n)
	return n, err
}

// stream searches what a gzip, bzip2 or zstd file decompresses to: the
// members of a tar (a .tar.gz), or one file.
func (s *searcher) stream(kind, member string, data []byte, depth int) error {
	var r io.Reader
	name := strings.TrimSuffix(path.Base("/"+member), path.Ext(member))
	if member == "" {
		name = strings.TrimSuffix(path.Base(s.path), path.Ext(s.path))
	}
	switch kind {
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return err
		}
		if zr.Name != "" {
			name = zr.Name
		}
		r = zr
	case "bzip2":
		r = bzip2.NewReader(bytes.NewReader(data))
	case "zstd":
		zd, err := zstd.NewReader(bytes.NewReader(data), zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxWindow(zstdMaxWindow), zstd.WithDecoderMaxMemory(MaxFileBytes+zstdMaxWindow))
		if err != nil {
			return err
		}
		defer zd.Close()
		r = zd
	}
	br := bufio.NewReaderSize(&countingReader{s: s, r: r}, 4096)
	head, err := br.Peek(512)
	if err != nil && err != io.EOF {
		return err
	}
	if isTar(head) {
		return s.tar(member, br, depth)
	}
	content, err := s.read(br, false)
	if err != nil {
		return err
	}
	if err := s.search(joinMember(member, name), content, depth+1); err != nil {
		return &errStop{err}
	}
	return nil
}

// tar searches the regular files of a tar stream.
func (s *searcher) tar(member string, r io.Reader, depth int) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeGNUSparse {
			continue
		}
		name := joinMember(member, hdr.Name)
		if hdr.Size > MaxFileBytes {
			s.notSearched(name, "over "+bytesize.Format(MaxFileBytes))
			continue
		}
		content := make([]byte, hdr.Size)
		if _, err := io.ReadFull(tr, content); err != nil {
			return err
		}
		if err := s.search(name, content, depth+1); err != nil {
			return &errStop{err}
		}
	}
}
