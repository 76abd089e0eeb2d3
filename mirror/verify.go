package mirror

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/sigstore/sigstore/pkg/signature"
)

// maxDecoderMemory bounds the zstd decoder's window and buffers.
const maxDecoderMemory = 128 << 20

// maxIndexBytes bounds the layout's index.json and oci-layout files.
const maxIndexBytes = 64 << 20

var blobPath = regexp.MustCompile(`^blobs/sha256/[a-f0-9]{64}$`)

// Verified is what Verify found in a bundle that passed every check.
type Verified struct {
	// Manifest is the verified bundle manifest.
	Manifest *BundleManifest
	// Blobs are the digests of the layout's blobs (manifests included).
	Blobs map[string]int64
	// Index is the layout's index.json.
	Index []byte
	// VulnDBManifest is the vulnerability database artifact's manifest, when carried.
	VulnDBManifest []byte
}

// Verify checks the bundle in dir before anything else reads it: the bundle manifest's
// signature with verifier, then every chunk's size and SHA-256, then, streaming, the
// decompressed layout: its size against the declared size, every tar entry (no name
// outside the layout, no links or devices) and every blob's digest against its name.
func Verify(dir string, verifier signature.Verifier, progress Progress) (*Verified, error) {
	return walkBundle(dir, verifier, progress, nil)
}

// Extract verifies the bundle in dir as Verify does and writes its OCI layout into out,
// which must not exist or be empty. On error, out may hold part of the layout and
// must be discarded.
func Extract(dir, out string, verifier signature.Verifier, progress Progress) (*Verified, error) {
	if _, err := emptyDir(out); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(out, "blobs", "sha256"), 0o755); err != nil {
		return nil, err
	}
	return walkBundle(dir, verifier, progress, func(name string, r io.Reader) error {
		f, err := os.OpenFile(filepath.Join(out, filepath.FromSlash(name)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, r); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	})
}

// ReadManifest reads and checks the signature of the bundle manifest in dir, then parses it.
func ReadManifest(dir string, verifier signature.Verifier) (*BundleManifest, error) {
	data, err := readCapped(filepath.Join(dir, ManifestFile), MaxManifestFileBytes)
	if err != nil {
		return nil, err
	}
	sig, err := readCapped(filepath.Join(dir, SignatureFile), 64<<10)
	if err != nil {
		return nil, err
	}
	if err := verifyBlob(verifier, sig, data); err != nil {
		return nil, err
	}
	return ParseBundleManifest(data)
}

func readCapped(path string, limit int64) ([]byte, error) {
	f, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", filepath.Base(path), limit)
	}
	return data, nil
}

// openRegular opens path only if it is a regular file (not a link, device or pipe).
func openRegular(path string) (*os.File, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: missing from the bundle", filepath.Base(path))
	}
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file (%s)", filepath.Base(path), fi.Mode().Type())
	}
	return os.Open(path)
}

// checkChunks checks every chunk's presence, size and SHA-256, and that no unlisted chunk
// lies beside them.
func checkChunks(dir string, m *BundleManifest) error {
	files, err := openChunks(dir, m)
	if err != nil {
		return err
	}
	defer closeAll(files)
	return hashChunks(m, files)
}

// openChunks opens every chunk the bundle manifest lists (regular files only) and checks
// that no unlisted chunk lies beside them.
func openChunks(dir string, m *BundleManifest) ([]*os.File, error) {
	files := make([]*os.File, 0, len(m.Chunks))
	for _, c := range m.Chunks {
		f, err := openRegular(filepath.Join(dir, c.Name))
		if err != nil {
			closeAll(files)
			return nil, fmt.Errorf("chunk %s: %w", c.Name, err)
		}
		files = append(files, f)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		closeAll(files)
		return nil, err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ChunkPrefix) {
			if i := sort.Search(len(m.Chunks), func(i int) bool { return m.Chunks[i].Name >= e.Name() }); i == len(m.Chunks) || m.Chunks[i].Name != e.Name() {
				closeAll(files)
				return nil, fmt.Errorf("chunk %s: not listed in the bundle manifest", e.Name())
			}
		}
	}
	return files, nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// hashChunks checks the size and SHA-256 of every open chunk. Chunks are independent
// files, so they are hashed in parallel (one worker per CPU); the error reported is the
// first chunk's in bundle order, whatever order the workers finished in.
func hashChunks(m *BundleManifest, files []*os.File) error {
	byHash := map[string]string{}
	for _, c := range m.Chunks {
		byHash[c.SHA256] = c.Name
	}
	errs := make([]error, len(m.Chunks))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(m.Chunks)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = checkChunk(files[i], m.Chunks[i], byHash)
			}
		}()
	}
	for i := range m.Chunks {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// checkBuffer is the read size of checkChunk.
const checkBuffer = 1 << 20

// checkChunk checks one chunk's size and SHA-256, reading it from its start; byHash maps
// every listed SHA-256 to its chunk's name, to tell a reordered chunk from a corrupt one.
func checkChunk(f *os.File, c Chunk, byHash map[string]string) error {
	h := sha256.New()
	// Large reads: a chunk is hundreds of MiB, and io.Copy's 32 KiB would be a system
	// call for every 32 KiB.
	n, err := io.CopyBuffer(h, io.NewSectionReader(f, 0, c.Size+1), make([]byte, checkBuffer))
	if err != nil {
		return fmt.Errorf("chunk %s: %w", c.Name, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	switch {
	case sum == c.SHA256 && n == c.Size:
		return nil
	case byHash[sum] != "" && byHash[sum] != c.Name:
		return fmt.Errorf("chunk %s: holds the bytes of chunk %s: chunks are out of order", c.Name, byHash[sum])
	case n < c.Size:
		return fmt.Errorf("chunk %s: truncated: %d bytes, the bundle manifest says %d", c.Name, n, c.Size)
	case n > c.Size:
		return fmt.Errorf("chunk %s: longer than the %d bytes the bundle manifest says", c.Name, c.Size)
	default:
		return fmt.Errorf("chunk %s: SHA-256 %s does not match the bundle manifest's %s: the chunk is corrupt or was changed", c.Name, sum, c.SHA256)
	}
}

// walkBundle verifies the bundle and hands each blob entry to write, if not nil, while
// its digest is being checked.
func walkBundle(dir string, verifier signature.Verifier, progress Progress, write func(name string, r io.Reader) error) (*Verified, error) {
	if progress == nil {
		progress = noProgress{}
	}
	m, err := ReadManifest(dir, verifier)
	if err != nil {
		return nil, err
	}
	if err := checkChunks(dir, m); err != nil {
		return nil, err
	}
	progress.Event(Event{Time: time.Now(), Phase: "verify", Item: "chunks", Total: m.LayoutSize})
	cr := &chunkReader{dir: dir, chunks: m.Chunks}
	defer cr.close()
	// Concurrency 2 decodes the next blocks in the background while the caller hashes and
	// writes what is decoded (1 would decode in this goroutine).
	zr, err := zstd.NewReader(cr, zstd.WithDecoderMaxMemory(maxDecoderMemory), zstd.WithDecoderMaxWindow(maxDecoderMemory), zstd.WithDecoderConcurrency(2))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	lr := &io.LimitedReader{R: zr, N: m.LayoutSize + 1}
	v := &Verified{Manifest: m, Blobs: map[string]int64{}}
	if err := readLayout(tar.NewReader(lr), m, v, progress, write); err != nil {
		return nil, err
	}
	if _, err := io.Copy(io.Discard, lr); err != nil {
		return nil, fmt.Errorf("layout: %w", err)
	}
	if got := m.LayoutSize + 1 - lr.N; got != m.LayoutSize {
		if got > m.LayoutSize {
			return nil, fmt.Errorf("layout: decompresses to more than the declared %d bytes (a compression bomb or a changed bundle)", m.LayoutSize)
		}
		return nil, fmt.Errorf("layout: decompresses to %d bytes, the bundle manifest declares %d", got, m.LayoutSize)
	}
	if err := checkContents(m, v); err != nil {
		return nil, err
	}
	progress.Event(Event{Time: time.Now(), Phase: "done", Item: dir, Done: m.LayoutSize, Total: m.LayoutSize})
	return v, nil
}

// readLayout checks every tar entry and every blob's digest.
func readLayout(tr *tar.Reader, m *BundleManifest, v *Verified, progress Progress, write func(string, io.Reader) error) error {
	seen := map[string]bool{}
	var done int64
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return layoutErr(err, m)
		}
		name := hdr.Name
		if len(seen) >= m.Objects+4 { // the blobs, oci-layout, index.json, blobs/, blobs/sha256/
			return fmt.Errorf("layout: more entries than the %d objects the bundle manifest declares", m.Objects)
		}
		if seen[name] {
			return fmt.Errorf("layout: entry %q appears twice", name)
		}
		seen[name] = true
		switch hdr.Typeflag {
		case tar.TypeDir:
			if name != "blobs/" && name != "blobs/sha256/" {
				return fmt.Errorf("layout: unexpected directory %q", name)
			}
			continue
		case tar.TypeReg:
		default:
			return fmt.Errorf("layout: entry %q is a %s, not a regular file: links and devices are refused", name, typeName(hdr.Typeflag))
		}
		if hdr.Size < 0 || hdr.Size > m.LayoutSize {
			return fmt.Errorf("layout: entry %q of %d bytes is larger than the declared layout", name, hdr.Size)
		}
		switch {
		case name == "oci-layout" || name == "index.json":
			if hdr.Size > maxIndexBytes {
				return fmt.Errorf("layout: %s of %d bytes is too large", name, hdr.Size)
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				return layoutErr(err, m)
			}
			if name == "index.json" {
				v.Index = data
			} else if !json.Valid(data) {
				return errors.New("layout: oci-layout is not JSON")
			}
			if write != nil {
				if err := write(name, bytes.NewReader(data)); err != nil {
					return err
				}
			}
		case blobPath.MatchString(name):
			var src io.Reader = tr
			if m.VulnDB != nil && name == blobName(m.VulnDB.Manifest) {
				if hdr.Size > maxVulnDBManifestBytes {
					return fmt.Errorf("vulnerability database: manifest of %d bytes is too large", hdr.Size)
				}
				data, err := io.ReadAll(io.LimitReader(tr, hdr.Size))
				if err != nil {
					return layoutErr(err, m)
				}
				v.VulnDBManifest, src = data, bytes.NewReader(data)
			}
			if err := readBlob(src, name, hdr.Size, write); err != nil {
				return layoutErr(err, m)
			}
			v.Blobs["sha256:"+strings.TrimPrefix(name, "blobs/sha256/")] = hdr.Size
			done += hdr.Size
			progress.Event(Event{Time: time.Now(), Phase: "verify", Item: "sha256:" + strings.TrimPrefix(name, "blobs/sha256/"), Bytes: hdr.Size, Done: done, Total: m.LayoutSize})
		default:
			return fmt.Errorf("layout: entry %q is not part of an OCI layout (want oci-layout, index.json or blobs/sha256/<hex>): refused", name)
		}
	}
	return nil
}

func readBlob(r io.Reader, name string, size int64, write func(string, io.Reader) error) error {
	h := sha256.New()
	src := io.TeeReader(io.LimitReader(r, size), h)
	var err error
	if write != nil {
		err = write(name, src)
	} else {
		_, err = io.Copy(io.Discard, src)
	}
	if err != nil {
		return err
	}
	if got, want := hex.EncodeToString(h.Sum(nil)), strings.TrimPrefix(name, "blobs/sha256/"); got != want {
		return fmt.Errorf("layout: blob %s: its bytes hash to sha256:%s", name, got)
	}
	return nil
}

// layoutErr names a decompressed stream that ran past the declared size.
func layoutErr(err error, m *BundleManifest) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("layout: ends early, or decompresses to more than the declared %d bytes (a compression bomb or a changed bundle): %w", m.LayoutSize, err)
	}
	return fmt.Errorf("layout: %w", err)
}

func typeName(t byte) string {
	switch t {
	case tar.TypeSymlink:
		return "symbolic link"
	case tar.TypeLink:
		return "hard link"
	case tar.TypeChar, tar.TypeBlock:
		return "device"
	case tar.TypeFifo:
		return "named pipe"
	}
	return fmt.Sprintf("entry of type %q", t)
}

// checkContents checks the layout against the bundle manifest: the index and layout files
// are there, the object count matches, and (unless the bundle is a delta) every image,
// carried child and referrer is in the layout.
func checkContents(m *BundleManifest, v *Verified) error {
	if v.Index == nil {
		return errors.New("layout: index.json is missing")
	}
	if err := checkVulnDB(m, v); err != nil {
		return err
	}
	var idx struct {
		Manifests []struct {
			Digest       string `json:"digest"`
			ArtifactType string `json:"artifactType"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(v.Index, &idx); err != nil {
		return fmt.Errorf("layout: index.json: %w", err)
	}
	for i, d := range idx.Manifests {
		if _, ok := v.Blobs[d.Digest]; !ok {
			return fmt.Errorf("layout: index.json manifests[%d] names %s, which the layout does not hold", i, d.Digest)
		}
		if d.ArtifactType == VulnDBArtifactType && (m.VulnDB == nil || m.VulnDB.Manifest != d.Digest) {
			return fmt.Errorf("layout: index.json manifests[%d] is a vulnerability database the bundle manifest does not list", i)
		}
	}
	if len(v.Blobs) != m.Objects {
		return fmt.Errorf("layout: holds %d blobs, the bundle manifest says %d", len(v.Blobs), m.Objects)
	}
	if m.Delta != nil {
		return nil
	}
	for i, img := range m.Images {
		want := []string{img.Digest}
		for _, c := range img.Children {
			want = append(want, c.Digest)
		}
		for _, r := range img.Referrers {
			want = append(want, r.Digest)
		}
		for _, d := range want {
			if _, ok := v.Blobs[d]; !ok {
				return fmt.Errorf("layout: images[%d] (%s:%s) needs %s, which the layout does not hold", i, img.Name, img.Tag, d)
			}
		}
	}
	return nil
}

// chunkReader reads the chunks in order as one stream, hashing each again as it is read
// so that a chunk changed after checkChunks is caught.
type chunkReader struct {
	dir    string
	chunks []Chunk
	i      int
	f      *os.File
	h      hash.Hash
	n      int64
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for {
		if c.f == nil {
			if c.i == len(c.chunks) {
				return 0, io.EOF
			}
			f, err := openRegular(filepath.Join(c.dir, c.chunks[c.i].Name))
			if err != nil {
				return 0, err
			}
			c.f, c.h, c.n = f, sha256.New(), 0
		}
		ch := c.chunks[c.i]
		if c.n == ch.Size {
			c.f.Close()
			c.f = nil
			if hex.EncodeToString(c.h.Sum(nil)) != ch.SHA256 {
				return 0, fmt.Errorf("chunk %s changed while the bundle was read", ch.Name)
			}
			c.i++
			continue
		}
		k := min(int64(len(p)), ch.Size-c.n)
		n, err := c.f.Read(p[:k])
		c.h.Write(p[:n])
		c.n += int64(n)
		if errors.Is(err, io.EOF) && c.n < ch.Size {
			return n, fmt.Errorf("chunk %s changed while the bundle was read: truncated", ch.Name)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return n, err
		}
		if n > 0 {
			return n, nil
		}
	}
}

func (c *chunkReader) close() {
	if c.f != nil {
		c.f.Close()
	}
}
