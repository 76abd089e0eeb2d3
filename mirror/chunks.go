package mirror

import (
	"bufio"
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
// start writing them to disk, so that the fsync closing the chunk has little left to wait
// for (the bundle is meant to be carried away on that disk).
const writebackEvery = 8 << 20

// chunkWriter splits what is written into files of at most size bytes, hashing each.
type chunkWriter struct {
	dir    string
	size   int64
	chunks []Chunk
	f      *os.File
	buf    *bufio.Writer
	h      hash.Hash
	n      int64
	// total is the offset of the next byte in the chunks read as one stream.
	total int64
	// flushed is how much of the current chunk was handed to the kernel for writeback.
	flushed int64
}

func (c *chunkWriter) offset() int64 { return c.total }

func (c *chunkWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if c.f == nil || c.n == c.size {
			if err := c.next(); err != nil {
				return written, err
			}
		}
		k := min(int64(len(p)), c.size-c.n)
		m, err := c.buf.Write(p[:k])
		c.h.Write(p[:m])
		c.n += int64(m)
		c.total += int64(m)
		written += m
		if err != nil {
			return written, err
		}
		p = p[k:]
		if c.n-c.flushed >= writebackEvery {
			if err := c.buf.Flush(); err != nil {
				return written, err
			}
			startWriteback(c.f, c.flushed, c.n-c.flushed)
			c.flushed = c.n
		}
	}
	return written, nil
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
	if c.buf == nil {
		c.buf = bufio.NewWriterSize(f, 1<<20)
	} else {
		c.buf.Reset(f)
	}
	c.f, c.h, c.n, c.flushed = f, sha256.New(), 0, 0
	c.chunks = append(c.chunks, Chunk{Name: name})
	return nil
}

// finish closes the current chunk, if any, and records its size and hash.
func (c *chunkWriter) finish() error {
	if c.f == nil {
		return nil
	}
	err := c.buf.Flush()
	if err == nil {
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
