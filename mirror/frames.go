package mirror

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// Entry locates one file of the layout in the bundle: its bytes are exactly one zstd
// frame at [Offset, Offset+Length) of the chunks read as one stream, and that frame
// decompresses to Size bytes. Between entries lie frames holding only tar headers and
// padding, so the chunks stay one zstd stream of the layout's tar, and an import reads
// any file without decompressing the others.
type Entry struct {
	// Name is the file's path in the layout: oci-layout, index.json or blobs/sha256/<hex>.
	Name string `json:"name"`
	// Size is the file's length.
	Size int64 `json:"size"`
	// Offset is where its frame starts in the concatenated chunks.
	Offset int64 `json:"offset"`
	// Length is the frame's length in bytes.
	Length int64 `json:"length"`
}

// rawBlockMax is the largest raw block written: zstd's Block_Maximum_Size.
const rawBlockMax = 128 << 10

// rawWindowDescriptor declares a 128 KiB window (exponent 7, mantissa 0): raw blocks need
// no history, and a small window keeps every decoder's memory small.
const rawWindowDescriptor = 7 << 3

// writeRawFrameHeader writes the header of a zstd frame of raw (stored) blocks holding
// size bytes (RFC 8878 3.1.1): the magic number, a descriptor with an 8-byte content size
// and no checksum, the window descriptor and the content size.
func writeRawFrameHeader(w io.Writer, size int64) error {
	var h [14]byte
	binary.LittleEndian.PutUint32(h[0:], 0xFD2FB528)
	h[4] = 3 << 6 // Frame_Content_Size_flag 3: 8 bytes; not single-segment; no checksum, no dictionary
	h[5] = rawWindowDescriptor
	binary.LittleEndian.PutUint64(h[6:], uint64(size))
	_, err := w.Write(h[:])
	return err
}

// rawBlockHeader is the 3-byte header of a raw block of n bytes.
func rawBlockHeader(n int, last bool) [3]byte {
	v := uint32(n) << 3 // Block_Type 0 (raw) in bits 1-2
	if last {
		v |= 1
	}
	return [3]byte{byte(v), byte(v >> 8), byte(v >> 16)}
}

// rawFrame writes one zstd frame of raw blocks: what is already compressed (gzip or zstd
// layers) is stored, not compressed again, which would cost CPU for nothing.
type rawFrame struct {
	w    io.Writer
	left int64
}

func (f *rawFrame) reset(w io.Writer, size int64) error {
	f.w, f.left = w, size
	if err := writeRawFrameHeader(w, size); err != nil {
		return err
	}
	if size == 0 {
		h := rawBlockHeader(0, true)
		_, err := w.Write(h[:])
		return err
	}
	return nil
}

func (f *rawFrame) Write(p []byte) (int, error) {
	if int64(len(p)) > f.left {
		return 0, fmt.Errorf("raw frame: %d bytes more than its declared size", int64(len(p))-f.left)
	}
	written := 0
	for len(p) > 0 {
		k := min(len(p), rawBlockMax)
		f.left -= int64(k)
		h := rawBlockHeader(k, f.left == 0)
		if _, err := f.w.Write(h[:]); err != nil {
			return written, err
		}
		m, err := f.w.Write(p[:k])
		written += m
		if err != nil {
			return written, err
		}
		p = p[k:]
	}
	return written, nil
}

func (f *rawFrame) close() error {
	if f.left != 0 {
		return fmt.Errorf("raw frame: %d bytes short of its declared size", f.left)
	}
	return nil
}

// stored says whether a blob of this media type is stored rather than compressed: its
// bytes are compressed already.
func stored(mediaType string) bool {
	return strings.HasSuffix(mediaType, "gzip") || strings.HasSuffix(mediaType, "zstd") || mediaType == VulnDBLayerType
}

// offsetWriter is the chunks as one stream, with the offset of the next byte.
type offsetWriter interface {
	io.Writer
	offset() int64
}

// frameWriter sits under the tar writer of a collect: tar headers and padding collect in
// a buffer and become one small compressed frame before each file; each file's bytes
// become a frame of their own (compressed, or stored when already compressed), recorded
// as an Entry.
type frameWriter struct {
	out offsetWriter
	// enc compresses files' frames as a stream; small encodes metadata frames whole.
	enc, small *zstd.Encoder
	raw        rawFrame
	meta       bytes.Buffer
	frame      []byte
	data       io.Writer // the open file frame, nil between files
	cur        Entry
	entries    []Entry
	// n counts the tar's bytes: the layout's size.
	n int64
}

func newFrameWriter(out offsetWriter) (*frameWriter, error) {
	// Fastest level: on text it is 5 % larger than the default for a quarter less CPU.
	// Concurrency 2 compresses in the background while the next bytes are fetched.
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(2))
	if err != nil {
		return nil, err
	}
	small, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	return &frameWriter{out: out, enc: enc, small: small}, nil
}

func (f *frameWriter) Write(p []byte) (int, error) {
	var n int
	var err error
	if f.data == nil {
		n, err = f.meta.Write(p)
	} else {
		n, err = f.data.Write(p)
	}
	f.n += int64(n)
	return n, err
}

// begin ends the metadata frame and opens the frame of the file name of size bytes.
func (f *frameWriter) begin(name string, size int64, store bool) error {
	if err := f.flushMeta(); err != nil {
		return err
	}
	f.cur = Entry{Name: name, Size: size, Offset: f.out.offset()}
	// Below 256 bytes the encoder declares no content size, which the import checks
	// before anything is decompressed; so few bytes are stored.
	if store || size < 256 {

		if err := f.raw.reset(f.out, size); err != nil {
			return err
		}
		f.data = &f.raw
		return nil
	}
	f.enc.ResetContentSize(f.out, size)
	f.data = f.enc
	return nil
}

// end closes the open file frame and records its entry.
func (f *frameWriter) end() error {
	var err error
	if f.data == &f.raw {
		err = f.raw.close()
	} else {
		err = f.enc.Close()
	}
	f.data = nil
	if err != nil {
		return fmt.Errorf("%s: %w", f.cur.Name, err)
	}
	f.cur.Length = f.out.offset() - f.cur.Offset
	f.entries = append(f.entries, f.cur)
	return nil
}

// flushMeta writes the buffered tar headers and padding as one frame.
func (f *frameWriter) flushMeta() error {
	if f.meta.Len() == 0 {
		return nil
	}
	f.frame = f.small.EncodeAll(f.meta.Bytes(), f.frame[:0])
	f.meta.Reset()
	_, err := f.out.Write(f.frame)
	return err
}

// close writes what remains: the last padding and the tar's end.
func (f *frameWriter) close() error { return f.flushMeta() }

// layoutTar writes the layout's tar through a frameWriter: every file in a frame of its
// own, recorded as an Entry.
type layoutTar struct {
	tw  *tar.Writer
	fw  *frameWriter
	buf []byte
}

func newLayoutTar(out offsetWriter) (*layoutTar, error) {
	fw, err := newFrameWriter(out)
	if err != nil {
		return nil, err
	}
	return &layoutTar{tw: tar.NewWriter(fw), fw: fw, buf: make([]byte, 1<<20)}, nil
}

// errSize means a file's reader gave more or fewer bytes than its declared size.
var errSize = errors.New("more or fewer bytes than declared")

// file writes a file held in memory, compressed.
func (l *layoutTar) file(name string, data []byte) error {
	return l.stream(name, int64(len(data)), bytes.NewReader(data), false)
}

// begin starts the file name of size bytes: its tar header, then its frame (stored when
// store: its bytes are compressed already). Its bytes follow through l.tw; end closes it.
func (l *layoutTar) begin(name string, size int64, store bool) error {
	if err := l.tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return err
	}
	return l.fw.begin(name, size, store)
}

// write adds p to the open file; more than its declared size is errSize.
func (l *layoutTar) write(p []byte) error {
	if _, err := l.tw.Write(p); err != nil {
		if errors.Is(err, tar.ErrWriteTooLong) {
			return errSize
		}
		return err
	}
	return nil
}

// end closes the open file, which must have had its declared size.
func (l *layoutTar) end() error { return l.fw.end() }

// stream writes the file name of size bytes read from r, stored when store, else
// compressed. A reader giving more or fewer bytes is errSize.
func (l *layoutTar) stream(name string, size int64, r io.Reader, store bool) error {
	if err := l.begin(name, size, store); err != nil {
		return err
	}
	n, err := io.CopyBuffer(l.tw, io.LimitReader(r, size+1), l.buf)
	switch {
	case err != nil && !errors.Is(err, tar.ErrWriteTooLong):
		return err
	case n != size || errors.Is(err, tar.ErrWriteTooLong):
		return errSize
	}
	return l.end()
}

// close ends the tar and writes its last frame.
func (l *layoutTar) close() error {
	if err := l.tw.Close(); err != nil {
		return err
	}
	return l.fw.close()
}
