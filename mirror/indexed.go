package mirror

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/sigstore/sigstore/pkg/signature"
)

// A format 2 bundle lists where every file's frame lies (BundleManifest.Entries), so an
// import checks the bundle without decompressing the blobs: the signature, every chunk's
// SHA-256 (in parallel), then the tar's structure, reading only the small frames between
// the files (headers and padding); each blob is then decompressed and hashed while it is
// pushed, straight from the chunks, several at once.

// maxMetaBytes bounds the decompressed bytes between files per entry: a tar header
// with a long PAX record, and padding.
const maxMetaBytes = 16 << 10

// chunkSet is the chunks of a bundle read as one stream, at any offset.
type chunkSet struct {
	files  []*os.File
	starts []int64 // offset of each chunk's first byte
	size   int64
}

func newChunkSet(m *BundleManifest, files []*os.File) *chunkSet {
	cs := &chunkSet{files: files, starts: make([]int64, len(files))}
	for i, c := range m.Chunks {
		cs.starts[i] = cs.size
		cs.size += c.Size
	}
	return cs
}

// ReadAt reads the stream at off, across chunk boundaries.
func (cs *chunkSet) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("chunks: negative offset")
	}
	n := 0
	for len(p) > 0 {
		if off >= cs.size {
			return n, io.EOF
		}
		i := sort.Search(len(cs.starts), func(i int) bool { return cs.starts[i] > off }) - 1
		end := cs.size
		if i+1 < len(cs.starts) {
			end = cs.starts[i+1]
		}
		k := min(int64(len(p)), end-off)
		m, err := cs.files[i].ReadAt(p[:k], off-cs.starts[i])
		n += m
		off += int64(m)
		p = p[m:]
		if err != nil && !(errors.Is(err, io.EOF) && int64(m) == k) {
			if errors.Is(err, io.EOF) {
				return n, fmt.Errorf("chunk %d changed while the bundle was read: truncated", i)
			}
			return n, err
		}
	}
	return n, nil
}

func (cs *chunkSet) close() { closeAll(cs.files) }

// decoders are zstd decoders for one frame at a time, decoding in the caller's goroutine
// (each pushing goroutine decodes its own blob).
var decoders = sync.Pool{New: func() any {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxDecoderMemory), zstd.WithDecoderMaxWindow(maxDecoderMemory))
	if err != nil {
		panic(err) // only for invalid options
	}
	return d
}}

// frameSource reads the files of a checked format 2 bundle from its chunks.
type frameSource struct {
	cs      *chunkSet
	entries map[string]Entry
}

// open streams the file name: its frame decompressed, at most its declared size, hashed;
// for a blob, a digest that does not match (or a size) is an error from the last Read,
// so that an upload of it fails rather than completes.
func (s *frameSource) open(name string) (io.ReadCloser, error) {
	e, ok := s.entries[name]
	if !ok {
		return nil, fmt.Errorf("layout: %s is not in the bundle", name)
	}
	dec := decoders.Get().(*zstd.Decoder)
	if err := dec.Reset(io.NewSectionReader(s.cs, e.Offset, e.Length)); err != nil {
		decoders.Put(dec)
		return nil, fmt.Errorf("layout: %s: %w", name, err)
	}
	r := &frameReader{dec: dec, r: io.LimitReader(dec, e.Size+1), e: e, h: sha256.New()}
	if blobPath.MatchString(name) {
		r.want = strings.TrimPrefix(name, "blobs/sha256/")
	}
	return r, nil
}

// read reads the whole file name, which must not be larger than limit.
func (s *frameSource) read(name string, limit int64) ([]byte, error) {
	if e, ok := s.entries[name]; ok && e.Size > limit {
		return nil, fmt.Errorf("layout: %s of %d bytes is too large", name, e.Size)
	}
	rc, err := s.open(name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// frameReader is one file's frame being decompressed and checked.
type frameReader struct {
	dec  *zstd.Decoder
	r    io.Reader
	e    Entry
	h    hash.Hash
	want string // hex digest, "" for oci-layout and index.json
	n    int64
	done bool
}

func (f *frameReader) Read(p []byte) (int, error) {
	if f.done {
		return 0, io.EOF
	}
	n, err := f.r.Read(p)
	f.n += int64(n)
	f.h.Write(p[:n])
	if f.n > f.e.Size {
		return 0, fmt.Errorf("layout: %s decompresses to more than its %d bytes (a compression bomb or a changed bundle)", f.e.Name, f.e.Size)
	}
	if errors.Is(err, io.EOF) {
		if f.n != f.e.Size {
			return n, fmt.Errorf("layout: %s decompresses to %d bytes, the bundle manifest says %d", f.e.Name, f.n, f.e.Size)
		}
		if f.want != "" {
			if got := hex.EncodeToString(f.h.Sum(nil)); got != f.want {
				return n, fmt.Errorf("layout: blob %s: its bytes hash to sha256:%s (a chunk changed after it was checked)", f.e.Name, got)
			}
		}
		f.done = true
	} else if err != nil {
		return n, fmt.Errorf("layout: %s: %w", f.e.Name, err)
	}
	return n, err
}

func (f *frameReader) Close() error {
	if f.dec != nil {
		_ = f.dec.Reset(nil)
		decoders.Put(f.dec)
		f.dec = nil
	}
	return nil
}

// openIndexed checks a format 2 bundle whose manifest m was read and its signature
// checked: every chunk's size and SHA-256, then the layout's structure from the frames
// between its files and the files it lists (see checkIndexed). The source reads its files
// until closed.
func openIndexed(dir string, m *BundleManifest, progress Progress) (*Verified, *frameSource, error) {
	files, err := openChunks(dir, m)
	if err != nil {
		return nil, nil, err
	}
	if err := hashChunks(m, files); err != nil {
		closeAll(files)
		return nil, nil, err
	}
	progress.Event(Event{Time: time.Now(), Phase: "verify", Item: "chunks", Total: m.LayoutSize})
	src := &frameSource{cs: newChunkSet(m, files), entries: make(map[string]Entry, len(m.Entries))}
	for _, e := range m.Entries {
		src.entries[e.Name] = e
	}
	v, err := checkIndexed(src, m)
	if err != nil {
		src.cs.close()
		return nil, nil, err
	}
	return v, src, nil
}

// checkIndexed reads the layout's tar as a format 2 bundle lays it out: the frames between
// the listed files are decompressed (bounded), the files' bytes are not. Every tar entry
// must be a layout file or one of its two directories, and every file's data must be
// exactly the frame the bundle manifest lists for it: then no tar entry holds what the
// import does not read, and no listed frame is outside the tar. oci-layout and
// index.json are read and checked, and the contents checked against the bundle manifest
// as Verify does.
func checkIndexed(src *frameSource, m *BundleManifest) (*Verified, error) {
	if err := checkFrameHeaders(src.cs, m); err != nil {
		return nil, err
	}
	ls, err := newLayoutStream(src.cs, m)
	if err != nil {
		return nil, err
	}
	at := make(map[int64]int, len(ls.segs))
	for _, s := range ls.segs {
		if s.entry >= 0 {
			at[s.start] = s.entry
		}
	}
	matched := make([]bool, len(m.Entries))
	v := &Verified{Manifest: m, Blobs: map[string]int64{}}
	tr := tar.NewReader(ls)
	seen := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, layoutErr(err, m)
		}
		name := hdr.Name
		if len(seen) >= len(m.Entries)+2 { // the files, blobs/, blobs/sha256/
			return nil, fmt.Errorf("layout: more entries than the %d files the bundle manifest lists", len(m.Entries))
		}
		if seen[name] {
			return nil, fmt.Errorf("layout: entry %q appears twice", name)
		}
		seen[name] = true
		switch hdr.Typeflag {
		case tar.TypeDir:
			if (name != "blobs/" && name != "blobs/sha256/") || hdr.Size != 0 {
				return nil, fmt.Errorf("layout: unexpected directory %q", name)
			}
			continue
		case tar.TypeReg:
		default:
			return nil, fmt.Errorf("layout: entry %q is a %s, not a regular file: links and devices are refused", name, typeName(hdr.Typeflag))
		}
		if name != "oci-layout" && name != "index.json" && !blobPath.MatchString(name) {
			return nil, fmt.Errorf("layout: entry %q is not part of an OCI layout (want oci-layout, index.json or blobs/sha256/<hex>): refused", name)
		}
		i, ok := at[ls.pos]
		if !ok || m.Entries[i].Name != name || m.Entries[i].Size != hdr.Size || matched[i] {
			return nil, fmt.Errorf("layout: the data of entry %q is not the frame the bundle manifest lists for it", name)
		}
		matched[i] = true
		if blobPath.MatchString(name) {
			v.Blobs["sha256:"+strings.TrimPrefix(name, "blobs/sha256/")] = hdr.Size
		}
	}
	if _, err := io.Copy(io.Discard, ls); err != nil {
		return nil, layoutErr(err, m)
	}
	for i, ok := range matched {
		if !ok {
			return nil, fmt.Errorf("layout: entries[%d] (%s) is not a file of the tar", i, m.Entries[i].Name)
		}
	}
	if data, err := src.read("oci-layout", maxIndexBytes); err != nil {
		return nil, err
	} else if !json.Valid(data) {
		return nil, errors.New("layout: oci-layout is not JSON")
	}
	if v.Index, err = src.read("index.json", maxIndexBytes); err != nil {
		return nil, err
	}
	if db := m.VulnDB; db != nil {
		if _, ok := src.entries[blobName(db.Manifest)]; ok {
			if v.VulnDBManifest, err = src.read(blobName(db.Manifest), maxVulnDBManifestBytes); err != nil {
				return nil, fmt.Errorf("vulnerability database: %w", err)
			}
		}
	}
	if err := checkContents(m, v); err != nil {
		return nil, err
	}
	return v, nil
}

// checkFrameHeaders reads the header of every listed frame: a zstd frame that declares
// the file's size as its content size (the decoder refuses a frame that decompresses to
// another size), so that a frame declaring more is refused before anything is pushed.
func checkFrameHeaders(cs *chunkSet, m *BundleManifest) error {
	var buf [zstd.HeaderMaxSize]byte
	for i, e := range m.Entries {
		n, err := cs.ReadAt(buf[:min(int64(len(buf)), e.Length)], e.Offset)
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		var h zstd.Header
		if err := h.Decode(buf[:n]); err != nil {
			return fmt.Errorf("layout: entries[%d] (%s): no zstd frame at offset %d: %w", i, e.Name, e.Offset, err)
		}
		if h.Skippable || !h.HasFCS || h.FrameContentSize != uint64(e.Size) {
			return fmt.Errorf("layout: entries[%d] (%s): its frame does not declare the file's %d bytes (a compression bomb or a changed bundle)", i, e.Name, e.Size)
		}
	}
	return nil
}

// layoutStream is the decompressed layout as the tar reader sees it while a format 2
// bundle's structure is checked: the frames between files decompressed; the files' bytes
// not decompressed (the tar reader skips them: seeking passes over them, reading gives
// zeros).
type layoutStream struct {
	segs []segment
	i    int   // current segment
	off  int64 // offset in it
	pos  int64 // offset in the layout
}

type segment struct {
	start int64
	size  int64
	data  []byte // the decompressed frames between files; nil for a file
	entry int    // the file's index in the bundle manifest's entries, -1 between files
}

// newLayoutStream decompresses the frames between the listed files, at most maxMetaBytes
// per file in all, and checks that the layout's size is what the bundle manifest says.
func newLayoutStream(cs *chunkSet, m *BundleManifest) (*layoutStream, error) {
	budget := int64(maxMetaBytes) * int64(len(m.Entries)+2)
	dec := decoders.Get().(*zstd.Decoder)
	defer decoders.Put(dec)
	defer dec.Reset(nil)
	ls := &layoutStream{}
	var pos, from int64
	gap := func(to int64) error {
		if to == from {
			return nil
		}
		if err := dec.Reset(io.NewSectionReader(cs, from, to-from)); err != nil {
			return layoutErr(err, m)
		}
		data, err := io.ReadAll(io.LimitReader(dec, budget+1))
		if err != nil {
			return layoutErr(err, m)
		}
		if int64(len(data)) > budget {
			return fmt.Errorf("layout: the frames between files decompress to more than %d bytes (a compression bomb or a changed bundle)", budget)
		}
		budget -= int64(len(data))
		ls.segs = append(ls.segs, segment{start: pos, size: int64(len(data)), data: data, entry: -1})
		pos += int64(len(data))
		return nil
	}
	for i, e := range m.Entries {
		if err := gap(e.Offset); err != nil {
			return nil, err
		}
		ls.segs = append(ls.segs, segment{start: pos, size: e.Size, entry: i})
		pos += e.Size
		from = e.Offset + e.Length
	}
	if err := gap(cs.size); err != nil {
		return nil, err
	}
	if pos != m.LayoutSize {
		return nil, fmt.Errorf("layout: decompresses to %d bytes, the bundle manifest declares %d", pos, m.LayoutSize)
	}
	return ls, nil
}

func (l *layoutStream) Read(p []byte) (int, error) {
	for l.i < len(l.segs) && l.off == l.segs[l.i].size {
		l.i, l.off = l.i+1, 0
	}
	if l.i == len(l.segs) {
		return 0, io.EOF
	}
	s := l.segs[l.i]
	k := min(int64(len(p)), s.size-l.off)
	if s.data != nil {
		copy(p[:k], s.data[l.off:])
	} else {
		clear(p[:k])
	}
	l.off += k
	l.pos += k
	return int(k), nil
}

// Seek moves forward from the current offset only (io.SeekCurrent), as the tar reader
// does to skip a file's data.
func (l *layoutStream) Seek(offset int64, whence int) (int64, error) {
	if whence != io.SeekCurrent || offset < 0 {
		return l.pos, errors.New("layout: the stream only seeks forward")
	}
	for offset > 0 && l.i < len(l.segs) {
		k := min(offset, l.segs[l.i].size-l.off)
		l.off += k
		l.pos += k
		offset -= k
		if l.off == l.segs[l.i].size {
			l.i, l.off = l.i+1, 0
		}
	}
	return l.pos, nil
}

// layoutSource is where an import reads the files of a checked layout: the chunks of a
// format 2 bundle, or the directory a format 1 bundle was extracted into.
type layoutSource interface {
	// open streams the file name (a path in the layout).
	open(name string) (io.ReadCloser, error)
	// read reads the whole file name, no larger than limit.
	read(name string, limit int64) ([]byte, error)
}

// dirSource is an extracted, verified layout.
type dirSource string

func (d dirSource) open(name string) (io.ReadCloser, error) {
	return os.Open(string(d) + "/" + name)
}

func (d dirSource) read(name string, limit int64) ([]byte, error) {
	f, err := os.Open(string(d) + "/" + name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err == nil && int64(len(data)) > limit {
		return nil, fmt.Errorf("layout: %s is larger than %d bytes", name, limit)
	}
	return data, err
}

// openBundle checks the bundle in dir before anything of it is used, and returns where
// the import reads its files: a format 2 bundle straight from its chunks; a format 1
// bundle is extracted (and verified whole) into work first. close releases it.
func openBundle(dir, work string, verifier signature.Verifier, progress Progress) (v *Verified, src layoutSource, close func(), err error) {
	m, err := ReadManifest(dir, verifier)
	if err != nil {
		return nil, nil, nil, err
	}
	if m.FormatVersion >= 2 {
		v, fs, err := openIndexed(dir, m, progress)
		if err != nil {
			return nil, nil, nil, err
		}
		progress.Event(Event{Time: time.Now(), Phase: "verify", Item: dir, Done: m.LayoutSize, Total: m.LayoutSize})
		return v, fs, fs.cs.close, nil
	}
	v, err = Extract(dir, work+"/layout", verifier, progress)
	if err != nil {
		return nil, nil, nil, err
	}
	return v, dirSource(work + "/layout"), func() {}, nil
}

// copyFile writes the file name of src to path.
func copyFile(src layoutSource, name, path string) error {
	r, err := src.open(name)
	if err != nil {
		return err
	}
	defer r.Close()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
