package mirror

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"os"
	"path/filepath"
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

// writebackEvery is how many bytes of a chunk are written before the kernel is asked to
// start writing them to disk, when chunks are fsynced: the fsync closing the chunk then
// has little left to wait for.
const writebackEvery = 8 << 20

const (
	// smallWrite is the largest write copied into the chunk writer's buffer; larger ones
	// are handed to the kernel from the caller's memory.
	smallWrite = 4 << 10
	// pendSize is the buffer of small writes (tar headers, raw block headers).
	pendSize = 64 << 10
	// maxVec bounds the buffers of one writev(2) (IOV_MAX is 1024).
	maxVec = 1024
)

// chunkWriter splits what is written into files of at most size bytes, hashing each.
// Small writes are buffered; large ones go to the file from the caller's memory in one
// writev(2) with what is buffered, so the bytes of a blob are never copied in user space.
type chunkWriter struct {
	dir  string
	size int64
	// sync fsyncs each chunk when it is complete (writeback starts every 8 MiB).
	sync   bool
	chunks []Chunk
	f      *os.File
	h      hash.Hash
	// n counts the current chunk's bytes, hashed and written or queued.
	n int64
	// total is the offset of the next byte in the chunks read as one stream.
	total int64
	// q is what is queued for the next writev: pieces of pend and of the caller's
	// buffers; borrowed says q holds the caller's memory, so it is written before the
	// write returns.
	q                  [][]byte
	borrowed, lastPend bool
	pend               []byte
	// written counts the chunk's bytes in the file, flushed those handed to writeback.
	written, flushed int64
}

func (c *chunkWriter) offset() int64 { return c.total }

// Write writes p (split across chunks as needed).
func (c *chunkWriter) Write(p []byte) (int, error) {
	if err := c.writeVec([][]byte{p}); err != nil {
		return 0, err
	}
	return len(p), nil
}

// writeVec writes bufs in order, as one write.
func (c *chunkWriter) writeVec(bufs [][]byte) error {
	for _, p := range bufs {
		for len(p) > 0 {
			if c.f == nil || c.n == c.size {
				if err := c.next(); err != nil {
					return err
				}
			}
			k := min(int64(len(p)), c.size-c.n)
			if err := c.queue(p[:k]); err != nil {
				return err
			}
			c.h.Write(p[:k])
			c.n += k
			c.total += k
			p = p[k:]
		}
	}
	if c.borrowed {
		return c.flush()
	}
	return nil
}

// queue adds p to what the next writev writes: a copy when it is small, else p itself.
func (c *chunkWriter) queue(p []byte) error {
	if len(p) > smallWrite {
		c.q = append(c.q, p)
		c.borrowed, c.lastPend = true, false
	} else {
		if len(c.pend)+len(p) > cap(c.pend) {
			if err := c.flush(); err != nil {
				return err
			}
		}
		start := len(c.pend)
		c.pend = append(c.pend, p...)
		if last := len(c.q) - 1; c.lastPend {
			c.q[last] = c.q[last][:len(c.q[last])+len(p)]
		} else {
			c.q = append(c.q, c.pend[start:])
			c.lastPend = true
		}
	}
	if len(c.q) >= maxVec {
		return c.flush()
	}
	return nil
}

// flush writes what is queued into the current chunk's file.
func (c *chunkWriter) flush() error {
	if len(c.q) == 0 {
		return nil
	}
	var n int64
	for _, b := range c.q {
		n += int64(len(b))
	}
	err := writeVec(c.f, c.q)
	clear(c.q)
	c.q, c.pend, c.borrowed, c.lastPend = c.q[:0], c.pend[:0], false, false
	if err != nil {
		return err
	}
	c.written += n
	if c.sync && c.written-c.flushed >= writebackEvery {
		startWriteback(c.f, c.flushed, c.written-c.flushed)
		c.flushed = c.written
	}
	return nil
}

// next closes the current chunk and opens the following one.
func (c *chunkWriter) next() error {
	if err := c.finish(); err != nil {
		return err
	}
	name := ChunkName(len(c.chunks))
	f, err := os.OpenFile(filepath.Join(c.dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if c.pend == nil {
		c.pend = make([]byte, 0, pendSize)
	}
	c.f, c.h, c.n, c.written, c.flushed = f, sha256.New(), 0, 0, 0
	c.chunks = append(c.chunks, Chunk{Name: name})
	return nil
}

// finish closes the current chunk, if any, and records its size and hash.
func (c *chunkWriter) finish() error {
	if c.f == nil {
		return nil
	}
	err := c.flush()
	if err == nil && c.sync {
		err = c.f.Sync()
	}
	if cerr := c.f.Close(); err == nil {
		err = cerr
	}
	last := &c.chunks[len(c.chunks)-1]
	last.Size, last.SHA256 = c.n, hex.EncodeToString(c.h.Sum(nil))
	c.f = nil
	return err
}

// abort closes the current chunk's file, if any, without recording it.
func (c *chunkWriter) abort() {
	if c.f != nil {
		_ = c.f.Close()
		c.f = nil
	}
}
