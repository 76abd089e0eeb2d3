package mirror

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// A collected bundle is format 2: every file of the layout has its own frame, listed in
// the bundle manifest; layers (gzip) are stored, not compressed again; the chunks are
// still one zstd stream of the whole layout (Verify decompresses it whole).
func TestCollectWritesAFrameForEveryFile(t *testing.T) {
	src := newSource(t)
	key := newSigningKey(t)
	dir, m := collect(t, src.mirrorFile(t, ""), key, WriteOptions{ChunkSize: 64 << 10})
	if m.FormatVersion != 2 || len(m.Entries) != m.Objects+2 {
		t.Fatalf("format %d with %d entries for %d objects: want format 2 listing every blob, oci-layout and index.json", m.FormatVersion, len(m.Entries), m.Objects)
	}
	v, err := Verify(dir, key.verifier, nil)
	if err != nil {
		t.Fatalf("the whole stream: %v", err)
	}
	mv, fs, err := openIndexed(dir, m, noProgress{})
	if err != nil {
		t.Fatal(err)
	}
	defer fs.cs.close()
	if !bytes.Equal(mv.Index, v.Index) || len(mv.Blobs) != len(v.Blobs) {
		t.Fatalf("the indexed check found %d blobs, the whole stream %d", len(mv.Blobs), len(v.Blobs))
	}
	stored := 0
	for _, e := range m.Entries {
		data, err := fs.read(e.Name, e.Size)
		if err != nil {
			t.Fatalf("%s: %v", e.Name, err)
		}
		if int64(len(data)) != e.Size {
			t.Fatalf("%s: %d bytes, listed as %d", e.Name, len(data), e.Size)
		}
		if strings.HasPrefix(e.Name, "blobs/") {
			sum := sha256.Sum256(data)
			if "blobs/sha256/"+hex.EncodeToString(sum[:]) != e.Name {
				t.Fatalf("%s: bytes hash to %x", e.Name, sum)
			}
		}
		head := make([]byte, 6)
		if _, err := fs.cs.ReadAt(head, e.Offset); err != nil {
			t.Fatal(err)
		}
		blocks := (e.Size + rawBlockMax - 1) / rawBlockMax
		if head[4] == 3<<6 && head[5] == rawWindowDescriptor && e.Length == 14+3*blocks+e.Size {
			if e.Size >= 256 {
				stored++
			}
			if isGzip := len(data) > 2 && data[0] == 0x1f && data[1] == 0x8b; !isGzip && e.Size >= 256 {
				t.Errorf("%s: stored, but it is neither a compressed layer nor a small file", e.Name)
			}
		}
	}
	// Every layer of the test images is gzip and larger than 256 bytes.
	if stored < 3 {
		t.Fatalf("%d frames stored as they are: layers should not be compressed again", stored)
	}
}

// craftIndexed writes a format 2 bundle signed by key (an insider or a stolen key) from
// files written as collect writes them; edit changes what is written (the frame writer,
// the entries) before the bundle manifest is signed.
func craftIndexed(t *testing.T, key signingKey, files []entry, edit func(lt *layoutTar, entries []Entry) []Entry) string {
	return craftIndexedSize(t, key, files, edit, 0)
}

// craftIndexedSize is craftIndexed declaring extra bytes of layout beyond the tar's.
func craftIndexedSize(t *testing.T, key signingKey, files []entry, edit func(lt *layoutTar, entries []Entry) []Entry, extra int64) string {
	t.Helper()
	dir := t.TempDir()
	cw := &chunkWriter{dir: dir, size: 1 << 20}
	lt, err := newLayoutTar(cw)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if err := lt.stream(f.hdr.Name, int64(len(f.data)), bytes.NewReader(f.data), false); err != nil {
			t.Fatal(err)
		}
	}
	entries := lt.fw.entries
	if edit != nil {
		entries = edit(lt, entries)
	}
	if err := lt.close(); err != nil {
		t.Fatal(err)
	}
	if err := cw.finish(); err != nil {
		t.Fatal(err)
	}
	objects := 0
	for _, e := range entries {
		if strings.HasPrefix(e.Name, "blobs/") {
			objects++
		}
	}
	m := BundleManifest{FormatVersion: 2, Created: time.Now().UTC(), Compression: "zstd", LayoutSize: lt.fw.n + extra, Objects: objects,
		Images: []Image{}, Chunks: cw.chunks, Entries: entries}
	signManifest(t, dir, key, &m)
	return dir
}

// openCrafted checks a crafted bundle as an import does before its first write.
func openCrafted(t *testing.T, dir string, key signingKey) (*frameSource, error) {
	t.Helper()
	m, err := ReadManifest(dir, key.verifier)
	if err != nil {
		return nil, err
	}
	_, fs, err := openIndexed(dir, m, noProgress{})
	if err == nil {
		t.Cleanup(fs.cs.close)
	}
	return fs, err
}

func TestIndexedCheckRefusesHostileLayouts(t *testing.T) {
	key := newSigningKey(t)
	layoutFile := file("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	index := file("index.json", []byte(`{"schemaVersion":2,"manifests":[]}`))
	a, b := blob([]byte("hello")), blob([]byte("world"))
	files := []entry{layoutFile, a, b, index}
	drop := func(name string) func(*layoutTar, []Entry) []Entry {
		return func(_ *layoutTar, es []Entry) []Entry {
			var out []Entry
			for _, e := range es {
				if e.Name != name {
					out = append(out, e)
				}
			}
			return out
		}
	}
	zeros := make([]byte, 64<<20)
	cases := []struct {
		name  string
		files []entry
		edit  func(*layoutTar, []Entry) []Entry
		want  string
		extra int64
	}{
		{"escaping entry left out of the entries", []entry{layoutFile, file("../x", []byte("x")), a, index}, drop("../x"), `entry "../x" is not part of an OCI layout`, 0},
		{"blob left out of the entries", []entry{layoutFile, a, blob([]byte("extra")), index}, drop(blob([]byte("extra")).hdr.Name), "is not the frame the bundle manifest lists", 0},
		{"entries name each other's frames", files, func(_ *layoutTar, es []Entry) []Entry {
			es[1].Name, es[2].Name = es[2].Name, es[1].Name
			return es
		}, "is not the frame the bundle manifest lists", 0},
		{"an entry lists a frame that is no file", files, func(lt *layoutTar, es []Entry) []Entry {
			lt.fw.flushMeta()
			off := lt.fw.out.offset()
			var frame rawFrame
			var buf bytes.Buffer
			frame.reset(&buf, 5)
			frame.Write([]byte("hello"))
			lt.fw.out.Write(buf.Bytes())
			return append(es, Entry{Name: "blobs/sha256/" + strings.Repeat("a", 64), Size: 5, Offset: off, Length: int64(buf.Len())})
		}, "is not a file of the tar", 5},
		{"frame declaring more than the file", files, func(lt *layoutTar, es []Entry) []Entry {
			// index.json's frame is replaced by 64 MiB of zeros declaring 64 MiB.
			lt.fw.flushMeta()
			bomb := lt.fw.small.EncodeAll(zeros, nil)
			es[len(es)-1].Offset, es[len(es)-1].Length = lt.fw.out.offset(), int64(len(bomb))
			lt.fw.out.Write(bomb)
			return es
		}, "does not declare the file's", 0},
		{"bomb between files", files, func(lt *layoutTar, es []Entry) []Entry {
			lt.fw.flushMeta()
			lt.fw.out.Write(lt.fw.small.EncodeAll(zeros, nil))
			return es
		}, "a compression bomb", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := craftIndexedSize(t, key, c.files, c.edit, c.extra)
			tg := newTarget(t)
			_, err := Import(context.Background(), dir, key.verifier, tg.options(t, filepath.Join(t.TempDir(), "j"), nil))
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "nothing imported") {
				t.Fatalf("error %v, want it to say nothing was imported because %q", err, c.want)
			}
			if n := tg.writes.Load(); n != 0 {
				t.Fatalf("a refused bundle wrote %d times", n)
			}
		})
	}
	// A frame that declares the file's size but holds more passes the check, and is
	// refused by the decoder when the blob is read (before its upload completes).
	dir := craftIndexed(t, key, []entry{layoutFile, b, index}, func(lt *layoutTar, es []Entry) []Entry {
		if err := lt.tw.WriteHeader(&a.hdr); err != nil {
			t.Fatal(err)
		}
		lt.fw.flushMeta()
		var frame bytes.Buffer
		writeRawFrameHeader(&frame, 5)
		h := rawBlockHeader(1000, true)
		frame.Write(h[:])
		frame.Write(make([]byte, 1000))
		e := Entry{Name: a.hdr.Name, Size: 5, Offset: lt.fw.out.offset(), Length: int64(frame.Len())}
		lt.fw.out.Write(frame.Bytes())
		lt.fw.data = io.Discard // the tar's own copy of the data is not written
		lt.tw.Write(a.data)
		lt.fw.data = nil
		return append(es, e)
	})
	fs, err := openCrafted(t, dir, key)
	if err != nil {
		t.Fatalf("a frame that lies about its size in its blocks only is found when read: %v", err)
	}
	if _, err := fs.read(a.hdr.Name, 1<<20); err == nil {
		t.Fatal("a frame holding 1000 bytes was read as a 5-byte blob")
	}
}

// A chunk changed after the check (between the check and the pushes) stops the import
// at the blob whose bytes no longer match, before any manifest is pushed.
func TestImportStopsBeforeManifestsWhenAChunkChangesAfterTheCheck(t *testing.T) {
	src := newSource(t)
	key := newSigningKey(t)
	dir, m := collect(t, src.mirrorFile(t, ""), key, WriteOptions{ChunkSize: 16 << 10})
	var last Entry
	for _, e := range m.Entries {
		if strings.HasPrefix(e.Name, "blobs/") && e.Size > last.Size {
			last = e // the largest blob: a layer
		}
	}
	tg := newTarget(t)
	change := changeAtStart{dir: dir, m: m, at: last.Offset + last.Length/2}
	_, err := Import(context.Background(), dir, key.verifier, tg.options(t, filepath.Join(t.TempDir(), "j"), &change))
	if !change.done {
		t.Fatal("the import never started pushing")
	}
	if err == nil || !strings.Contains(err.Error(), "a chunk changed after it was checked") {
		t.Fatalf("import of a bundle changed after its check: %v", err)
	}
	if n := tg.manifestWrites.Load(); n != 0 {
		t.Fatalf("%d manifests pushed although a blob was refused", n)
	}
}

// changeAtStart flips the byte at offset at (of the chunks as one stream) when the
// import starts pushing.
type changeAtStart struct {
	dir  string
	m    *BundleManifest
	at   int64
	done bool
}

func (c *changeAtStart) Event(e Event) {
	if e.Phase != "start" || c.done {
		return
	}
	c.done = true
	off := c.at
	for _, ch := range c.m.Chunks {
		if off < ch.Size {
			f, err := os.OpenFile(filepath.Join(c.dir, ch.Name), os.O_RDWR, 0)
			if err != nil {
				panic(err)
			}
			defer f.Close()
			b := make([]byte, 1)
			f.ReadAt(b, off)
			b[0] ^= 0xff
			f.WriteAt(b, off)
			return
		}
		off -= ch.Size
	}
}

// The raw frames written for stored files are zstd frames any decoder reads.
func TestRawFrameDecodes(t *testing.T) {
	for _, size := range []int{0, 1, rawBlockMax - 1, rawBlockMax, rawBlockMax + 1, 3*rawBlockMax + 17} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(i * 7)
		}
		var buf bytes.Buffer
		var f rawFrame
		if err := f.reset(&buf, int64(size)); err != nil {
			t.Fatal(err)
		}
		for p := data; len(p) > 0; {
			k := min(len(p), 50000)
			if _, err := f.Write(p[:k]); err != nil {
				t.Fatal(err)
			}
			p = p[k:]
		}
		if err := f.close(); err != nil {
			t.Fatal(err)
		}
		var h zstd.Header
		if err := h.Decode(buf.Bytes()); err != nil || !h.HasFCS || h.FrameContentSize != uint64(size) {
			t.Fatalf("size %d: header %+v, %v", size, h, err)
		}
		dec, _ := zstd.NewReader(bytes.NewReader(buf.Bytes()))
		got, err := io.ReadAll(dec)
		dec.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("size %d: decoded %d bytes, %v", size, len(got), err)
		}
		if size > 0 && binary.LittleEndian.Uint32(buf.Bytes()) != 0xFD2FB528 {
			t.Fatal("no zstd magic")
		}
	}
	var f rawFrame
	var buf bytes.Buffer
	f.reset(&buf, 3)
	if _, err := f.Write([]byte("four")); err == nil {
		t.Fatal("a raw frame took more than its declared size")
	}
}

// A format 1 bundle (no entries: written before format 2) is still imported: extracted
// and verified whole first.
func TestImportReadsFormat1Bundles(t *testing.T) {
	src := newSource(t)
	key := newSigningKey(t)
	dir, m := collect(t, src.mirrorFile(t, ""), key, WriteOptions{ChunkSize: 16 << 10})
	m.FormatVersion, m.Entries = 1, nil
	signManifest(t, dir, key, m)
	tg := newTarget(t)
	rep, err := Import(context.Background(), dir, key.verifier, tg.options(t, filepath.Join(t.TempDir(), "j"), nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Images {
		if r.Verdict == VerdictAllow && tg.tagDigest(t, r.Name, r.Tag) != r.Digest {
			t.Errorf("%s:%s allowed but not published", r.Name, r.Tag)
		}
	}
	if rep.Refused() != 1 {
		t.Fatalf("refused %d images, want the one tag the policy forbids", rep.Refused())
	}
}
