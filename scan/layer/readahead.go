package layer

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"

	"github.com/portcullis-dev/portcullis/scan/bytesize"
)

// The read-ahead holds up to readAheadBlocks blocks, allocated as needed
// (a small layer needs one), 32 KiB for the first and twice the previous for
// each further one.
const (
	readAheadFirstBlock = 32 << 10
	readAheadBlocks     = 4
)

// readAhead decompresses in a goroutine of its own, a few blocks ahead of the
// tar walk, so that decompressing and hashing the tar stream use two cores.
// It hashes and counts the tar stream (the diffID) as blocks arrive, failing
// with a limitError past max bytes, and lets the tar reader skip file
// contents without copying them (Seek).
type readAhead struct {
	blocks chan block
	free   chan []byte
	stop   chan struct{}
	done   chan struct{}

	cur      []byte // unread part of the current block
	buf      []byte // the current block's buffer, to recycle
	err      error  // sticky: the producer's error, the deadline or the limit
	h        hash.Hash
	n        int64 // bytes received
	pos      int64 // bytes consumed
	holes    int64 // sparse-file hole bytes handed out (see addHoles)
	max      int64 // bounds n + holes
	stopping bool
	deadline deadline
}

// deadline is the analysis's deadline: done closes when it passes (or the
// analysis is cancelled) and cause then says why.
type deadline struct {
	done  <-chan struct{}
	cause func() error
}

// check returns the cause once the deadline has passed, else nil.
func (d deadline) check() error {
	select {
	case <-d.done:
		return d.cause()
	default:
		return nil
	}
}

type block struct {
	data []byte
	err  error
}

// startReadAhead starts reading r; close must be called before r is used again.
func startReadAhead(r io.Reader, max int64, d deadline) *readAhead {
	ra := &readAhead{
		deadline: d,
		blocks:   make(chan block, readAheadBlocks-1),
		free:     make(chan []byte, readAheadBlocks),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		h:        sha256.New(),
		max:      max,
	}
	go ra.produce(r)
	return ra
}

func (ra *readAhead) produce(r io.Reader) {
	defer close(ra.done)
	allocated := 0
	for {
		var buf []byte
		select {
		case buf = <-ra.free:
		default:
			if allocated < readAheadBlocks {
				buf = make([]byte, readAheadFirstBlock<<allocated)
				allocated++
				break
			}
			select {
			case buf = <-ra.free:
			case <-ra.stop:
				return
			}
		}
		n, err := fill(r, buf)
		select {
		case ra.blocks <- block{buf[:n], err}:
		case <-ra.stop:
			return
		}
		if err != nil {
			return
		}
	}
}

// fill reads until buf is full or r fails; unlike io.ReadFull it passes on
// the reader's own io.ErrUnexpectedEOF (a truncated stream) as it is.
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		k, err := r.Read(buf[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// next makes the next block current, reporting false at the end or an error.
func (ra *readAhead) next() bool {
	if ra.err != nil {
		return false
	}
	if ra.buf != nil {
		ra.free <- ra.buf[:cap(ra.buf)]
		ra.buf = nil
	}
	var b block
	select {
	case b = <-ra.blocks:
	case <-ra.deadline.done:
		ra.err, ra.cur = ra.deadline.cause(), nil
		return false
	}
	ra.h.Write(b.data)
	ra.n += int64(len(b.data))
	ra.cur, ra.buf = b.data, b.data
	switch {
	case ra.n+ra.holes > ra.max:
		ra.overLimit()
	case b.err != nil:
		ra.err = b.err
	}
	return len(ra.cur) > 0
}

// overLimit makes the limit the sticky error.
func (ra *readAhead) overLimit() {
	ra.cur = nil
	if ra.holes > 0 {
		ra.err = &limitError{"uncompressed size over " + bytesize.Format(ra.max) + " (sparse file holes included)"}
		return
	}
	ra.err = &limitError{"uncompressed size over " + bytesize.Format(ra.max)}
}

// addHoles counts n more bytes of sparse-file holes handed out, which the
// stream does not hold but the tar reader expands into zeros: they count
// against the same limit as the stream's bytes.
func (ra *readAhead) addHoles(n int64) error {
	ra.holes += n
	if ra.n+ra.holes > ra.max && (ra.err == nil || ra.err == io.EOF) {
		ra.overLimit()
	}
	if ra.err != nil && ra.err != io.EOF {
		return ra.err
	}
	return nil
}

// Read reads the tar stream.
func (ra *readAhead) Read(p []byte) (int, error) {
	for len(ra.cur) == 0 {
		if !ra.next() && len(ra.cur) == 0 {
			return 0, ra.err
		}
	}
	n := copy(p, ra.cur)
	ra.cur = ra.cur[n:]
	ra.pos += int64(n)
	return n, nil
}

// Seek skips forward: only whence io.SeekCurrent and offset >= 0 are supported.
func (ra *readAhead) Seek(offset int64, whence int) (int64, error) {
	if whence != io.SeekCurrent || offset < 0 {
		return ra.pos, errors.New("readAhead: can only skip forward")
	}
	for offset > 0 {
		if len(ra.cur) == 0 && !ra.next() && len(ra.cur) == 0 {
			if ra.err == io.EOF {
				return ra.pos, nil // the reader reports the truncation
			}
			return ra.pos, ra.err
		}
		k := min(offset, int64(len(ra.cur)))
		ra.cur = ra.cur[k:]
		ra.pos += k
		offset -= k
	}
	return ra.pos, nil
}

// drain consumes the rest of the stream.
func (ra *readAhead) drain() error {
	for ra.next() || len(ra.cur) > 0 {
		ra.pos += int64(len(ra.cur))
		ra.cur = nil
	}
	if ra.err == io.EOF {
		return nil
	}
	return ra.err
}

// diffID returns the digest of the whole stream, once drained.
func (ra *readAhead) diffID() string {
	return "sha256:" + hex.EncodeToString(ra.h.Sum(nil))
}

// size returns the bytes received, at most max.
func (ra *readAhead) size() int64 { return min(ra.n, ra.max) }

// close stops the producer and waits for it, so its reader may be used again.
func (ra *readAhead) close() {
	if !ra.stopping {
		ra.stopping = true
		close(ra.stop)
	}
	<-ra.done
}
