package mirror

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// ChunkPrefix starts the name of every chunk file: bundle.tar.zst.0000, .0001, ...
const ChunkPrefix = "bundle.tar.zst."

// ChunkName is the file name of chunk i.
func ChunkName(i int) string { return fmt.Sprintf("%s%04d", ChunkPrefix, i) }

// Chunk is one part of the compressed layout.
type Chunk struct {
	// Name is the chunk's file name in the bundle directory.
	Name string `json:"name"`
	// Size is its length in bytes.
	Size int64 `json:"size"`
	// SHA256 is the hex SHA-256 of its bytes.
	SHA256 string `json:"sha256"`
}

// writebackEvery is how many bytes of a chunk are written through the page cache before
// the kernel is asked to start writing them to disk, when chunks are fsynced: the fsync
// closing the chunk then has little left to wait for.
const writebackEvery = 8 << 20

const (
	// stageSize is the size of the buffers the chunk writer fills and writes whole.
	stageSize = 1 << 20
	// stageBuffers is how many there are: one filling, the others being hashed and written.
	stageBuffers = 3
	// directAlign is the alignment of O_DIRECT writes: memory, offset and length (it
	// covers devices of 512- and 4096-byte logical blocks).
	directAlign = 4 << 10
)

// chunkWriter splits what is written into files of at most size bytes, hashing each.
// Bytes are hashed and copied into aligned buffers of stageSize; a goroutine per chunk
// writes each full buffer while the next one fills. Where the file system takes it, a
// chunk is written with O_DIRECT: the bytes go from the buffer to the disk without
// passing through (and allocating) the page cache, which a multi-GiB bundle would only
// fill with pages nobody reads again before the disk is carried away.
type chunkWriter struct {
	dir  string
	size int64
	// sync fsyncs each chunk when it is complete.
	sync bool
	// buffered writes through the page cache, never with O_DIRECT.
	buffered bool
	chunks   []Chunk
	cf       *chunkFile
	// h hashes the current chunk.
	h hash.Hash
	// buf is the buffer being filled; stage the buffers no chunk holds.
	buf   []byte
	stage [][]byte
	// n counts the current chunk's bytes, buffered or handed on.
	n int64
	// total is the offset of the next byte in the chunks read as one stream.
	total int64
	// direct counts the chunks that were written with O_DIRECT.
	direct int
}

func (c *chunkWriter) offset() int64 { return c.total }

// Write writes p (split across chunks as needed).
func (c *chunkWriter) Write(p []byte) (int, error) {
	if err := c.write(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *chunkWriter) write(p []byte) error {
	for len(p) > 0 {
		if c.cf == nil || c.n == c.size {
			if err := c.next(); err != nil {
				return err
			}
		}
		k := min(int64(len(p)), c.size-c.n, int64(cap(c.buf)-len(c.buf)))
		c.buf = append(c.buf, p[:k]...)
		c.h.Write(p[:k])
		c.n += k
		c.total += k
		p = p[k:]
		if len(c.buf) == cap(c.buf) {
			b, err := c.cf.submit(c.buf)
			c.buf = b
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// next closes the current chunk and opens the following one.
func (c *chunkWriter) next() error {
	if err := c.finish(); err != nil {
		return err
	}
	if c.stage == nil {
		for range stageBuffers {
			c.stage = append(c.stage, alignedBuffer(stageSize, directAlign))
		}
	}
	name := ChunkName(len(c.chunks))
	cf, err := openChunkFile(filepath.Join(c.dir, name), !c.buffered, c.sync, c.stage)
	if err != nil {
		return err
	}
	if cf.direct {
		c.direct++
	}
	c.cf, c.buf, c.stage, c.n, c.h = cf, c.stage[0][:0], nil, 0, sha256.New()
	c.chunks = append(c.chunks, Chunk{Name: name})
	return nil
}

// finish closes the current chunk, if any, and records its size and hash.
func (c *chunkWriter) finish() error {
	if c.cf == nil {
		return nil
	}
	held := c.buf
	if len(c.buf) > 0 && !c.cf.closed {
		// The chunk's last bytes: the goroutine writes them and hands the buffer back.
		c.cf.jobs <- c.buf
		held = nil
	}
	bufs, err := c.cf.close()
	if held != nil {
		bufs = append(bufs, held[:0])
	}
	c.stage, c.buf, c.cf = bufs, nil, nil
	last := &c.chunks[len(c.chunks)-1]
	last.Size, last.SHA256 = c.n, hex.EncodeToString(c.h.Sum(nil))
	return err
}

// abort closes the current chunk's file, if any, without recording it.
func (c *chunkWriter) abort() {
	if c.cf != nil {
		c.stage, _ = c.cf.close()
		c.cf, c.buf = nil, nil
	}
}

// chunkFile is one chunk being written: a goroutine writes the buffers handed to it, in
// order, while the writer fills the next.
type chunkFile struct {
	f    *os.File
	sync bool
	// jobs carries full buffers (and the chunk's last one) to the goroutine, free brings
	// them back written; done closes when the goroutine has ended.
	jobs, free chan []byte
	done       chan struct{}
	closed     bool
	// failed is set with err, for the writer to stop early.
	failed atomic.Bool
	// The goroutine's: the file offset, whether O_DIRECT is on, the first error, and how
	// far writeback was started.
	off     int64
	direct  bool
	err     error
	flushed int64
}

// openChunkFile creates path (it must not exist) and starts its goroutine with bufs, the
// first of which the caller fills. With direct, O_DIRECT is turned on when the file
// system takes it.
func openChunkFile(path string, direct, sync bool, bufs [][]byte) (*chunkFile, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	cf := &chunkFile{f: f, sync: sync, jobs: make(chan []byte, len(bufs)), free: make(chan []byte, len(bufs)), done: make(chan struct{})}
	cf.direct = direct && setDirect(f, true) == nil
	for _, b := range bufs[1:] {
		cf.free <- b[:0]
	}
	go cf.run()
	return cf, nil
}

func (cf *chunkFile) run() {
	defer close(cf.done)
	for b := range cf.jobs {
		if cf.err == nil {
			if cf.err = cf.write(b); cf.err != nil {
				cf.failed.Store(true)
			}
		}
		cf.free <- b[:0]
	}
}

// submit hands b to the goroutine and returns an empty buffer to fill, or the error that
// stopped the chunk's writes.
func (cf *chunkFile) submit(b []byte) ([]byte, error) {
	cf.jobs <- b
	next := <-cf.free
	if cf.failed.Load() {
		_, err := cf.close()
		return next[:0], err
	}
	return next[:0], nil
}

// write writes b at the end of the file: its aligned part with O_DIRECT when
// that is on, the rest (a chunk's unaligned end) through the page cache. A device that
// refuses the direct write gets it through the page cache too.
func (cf *chunkFile) write(b []byte) error {
	if cf.direct {
		if k := len(b) &^ (directAlign - 1); k > 0 {
			n, err := cf.f.WriteAt(b[:k], cf.off)
			cf.off += int64(n)
			b = b[n:]
			if err != nil && !errors.Is(err, syscall.EINVAL) {
				return err
			}
		}
		if len(b) > 0 {
			if err := setDirect(cf.f, false); err != nil {
				return fmt.Errorf("%s: %w", cf.f.Name(), err)
			}
			cf.direct = false
		}
	}
	if len(b) == 0 {
		return nil
	}
	n, err := cf.f.WriteAt(b, cf.off)
	cf.off += int64(n)
	if err != nil {
		return err
	}
	if cf.sync && cf.off-cf.flushed >= writebackEvery {
		startWriteback(cf.f, cf.flushed, cf.off-cf.flushed)
		cf.flushed = cf.off
	}
	return nil
}

// close waits for the goroutine, fsyncs the file if asked and closes it; it returns the
// buffers and the first error. A second close returns the error again.
func (cf *chunkFile) close() (bufs [][]byte, err error) {
	if !cf.closed {
		cf.closed = true
		close(cf.jobs)
		<-cf.done
		if cf.err == nil && cf.sync {
			cf.err = cf.f.Sync()
		}
		if cerr := cf.f.Close(); cf.err == nil {
			cf.err = cerr
		}
	}
	for len(cf.free) > 0 {
		bufs = append(bufs, <-cf.free)
	}
	return bufs, cf.err
}

// alignedBuffer returns an empty buffer of capacity size whose first byte's address is a
// multiple of align (a power of two), as O_DIRECT needs.
func alignedBuffer(size, align int) []byte {
	b := make([]byte, size+align)
	off := int(-uintptr(unsafe.Pointer(&b[0])) & uintptr(align-1))
	return b[off : off : off+size]
}
