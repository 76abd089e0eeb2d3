package spool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// A segment file is the magic followed by records; each record is a 4-byte big-endian
// payload length, the payload's CRC-32C (Castagnoli), big-endian, and the payload.
const (
	magic     = "PCSPOOL1"
	headerLen = int64(len(magic))
	frameLen  = 8
	// MaxRecord is the largest payload a record may carry.
	MaxRecord = 16 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errCorrupt marks bytes that are not a valid record (a torn write, or damage).
var errCorrupt = errors.New("corrupt spool record")

// frame returns rec framed as a record.
func frame(rec []byte) []byte {
	b := make([]byte, frameLen+len(rec))
	binary.BigEndian.PutUint32(b[0:4], uint32(len(rec)))
	binary.BigEndian.PutUint32(b[4:8], crc32.Checksum(rec, castagnoli))
	copy(b[frameLen:], rec)
	return b
}

// readRecord reads one record from r; io.EOF at a clean end, errCorrupt (wrapped) for a
// bad or truncated record. limit bounds the payload length accepted (the bytes left in the
// file), so a damaged length never makes it allocate more than the file holds.
func readRecord(r io.Reader, limit int64) ([]byte, error) {
	var h [frameLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("%w: truncated frame header", errCorrupt)
	}
	n := int64(binary.BigEndian.Uint32(h[0:4]))
	if n > MaxRecord || n > limit-frameLen {
		return nil, fmt.Errorf("%w: length %d past the end of the segment or the %d-byte limit", errCorrupt, n, MaxRecord)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return nil, fmt.Errorf("%w: truncated payload", errCorrupt)
	}
	if crc32.Checksum(p, castagnoli) != binary.BigEndian.Uint32(h[4:8]) {
		return nil, fmt.Errorf("%w: checksum mismatch", errCorrupt)
	}
	return p, nil
}

// scan is what a segment's bytes hold: the valid records from the start, the offset of
// each, and the length of the valid prefix. err is non-nil when the bytes after valid are
// not records (or the magic is wrong: then valid is 0).
type scan struct {
	offsets []int64
	valid   int64
	err     error
}

// scanSegment reads a whole segment file's bytes.
func scanSegment(data []byte) scan {
	if int64(len(data)) < headerLen || string(data[:headerLen]) != magic {
		return scan{err: fmt.Errorf("%w: not a spool segment (bad magic)", errCorrupt)}
	}
	s := scan{valid: headerLen}
	r := bytes.NewReader(data[headerLen:])
	for {
		left := int64(r.Len())
		_, err := readRecord(r, left)
		if err == io.EOF {
			return s
		}
		if err != nil {
			s.err = err
			return s
		}
		s.offsets = append(s.offsets, s.valid)
		s.valid += left - int64(r.Len())
	}
}
