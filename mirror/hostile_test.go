package mirror

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// sharedBundle is one real bundle collected from a real registry, copied by each case.
func sharedBundle(t *testing.T) (string, *BundleManifest, signingKey) {
	t.Helper()
	src := newSource(t)
	key := newSigningKey(t)
	dir, m := collect(t, src.mirrorFile(t, ""), key, WriteOptions{ChunkSize: 8 << 10})
	if len(m.Chunks) < 3 {
		t.Fatalf("want at least 3 chunks, got %d", len(m.Chunks))
	}
	return dir, m, key
}

func TestVerifyRefusesDamagedBundles(t *testing.T) {
	dir, m, key := sharedBundle(t)
	if _, err := Verify(dir, key.verifier, nil); err != nil {
		t.Fatalf("the undamaged bundle: %v", err)
	}
	chunk := func(d string, i int) string { return filepath.Join(d, m.Chunks[i].Name) }
	other := newSigningKey(t)
	cases := []struct {
		name   string
		damage func(t *testing.T, d string)
		want   string
	}{
		{"flipped byte", func(t *testing.T, d string) {
			b, _ := os.ReadFile(chunk(d, 1))
			b[len(b)/2] ^= 0x01
			os.WriteFile(chunk(d, 1), b, 0o644)
		}, "chunk " + m.Chunks[1].Name + ": SHA-256"},
		{"missing chunk", func(t *testing.T, d string) { os.Remove(chunk(d, 2)) }, "chunk " + m.Chunks[2].Name + ": " + m.Chunks[2].Name + ": missing from the bundle"},
		{"reordered chunks", func(t *testing.T, d string) {
			os.Rename(chunk(d, 0), filepath.Join(d, "tmp"))
			os.Rename(chunk(d, 1), chunk(d, 0))
			os.Rename(filepath.Join(d, "tmp"), chunk(d, 1))
		}, "chunk " + m.Chunks[0].Name + ": holds the bytes of chunk " + m.Chunks[1].Name + ": chunks are out of order"},
		{"truncated chunk", func(t *testing.T, d string) {
			os.Truncate(chunk(d, 1), m.Chunks[1].Size-100)
		}, "chunk " + m.Chunks[1].Name + ": truncated"},
		{"extra chunk", func(t *testing.T, d string) {
			os.WriteFile(filepath.Join(d, ChunkName(len(m.Chunks))), []byte("x"), 0o644)
		}, "not listed in the bundle manifest"},
		{"chunk is a symlink", func(t *testing.T, d string) {
			os.Remove(chunk(d, 0))
			os.Symlink("/dev/zero", chunk(d, 0))
		}, "not a regular file"},
		{"manifest edited", func(t *testing.T, d string) {
			b, _ := os.ReadFile(filepath.Join(d, ManifestFile))
			os.WriteFile(filepath.Join(d, ManifestFile), bytes.Replace(b, []byte(`"2.1.0"`), []byte(`"2.9.9"`), 1), 0o644)
		}, "bundle.json.sig does not verify"},
		{"re-signed by an unknown key", func(t *testing.T, d string) {
			b, _ := os.ReadFile(filepath.Join(d, ManifestFile))
			b = bytes.Replace(b, []byte(`"2.1.0"`), []byte(`"2.9.9"`), 1)
			os.WriteFile(filepath.Join(d, ManifestFile), b, 0o644)
			sig, err := signBlob(other.signer, b)
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(d, SignatureFile), sig, 0o644)
		}, "bundle.json.sig does not verify with the given key"},
		{"signature missing", func(t *testing.T, d string) { os.Remove(filepath.Join(d, SignatureFile)) }, "bundle.json.sig: missing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := copyDir(t, dir)
			c.damage(t, d)
			out := filepath.Join(t.TempDir(), "out")
			_, err := Extract(d, out, key.verifier, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want it to contain %q", err, c.want)
			}
			// Nothing was read past the failed check: the layout directory stays empty.
			if entries, _ := os.ReadDir(filepath.Join(out, "blobs", "sha256")); len(entries) > 0 {
				t.Fatalf("%d blobs extracted from a refused bundle", len(entries))
			}
		})
	}
}

// entry is one tar entry of a crafted layout.
type entry struct {
	hdr  tar.Header
	data []byte
}

func file(name string, data []byte) entry {
	return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data))}, data: data}
}

func blob(data []byte) entry {
	sum := sha256.Sum256(data)
	return file("blobs/sha256/"+hex.EncodeToString(sum[:]), data)
}

// craft writes a bundle whose layout holds entries, signed by key (as an insider or a
// stolen key would), declaring layoutSize (0: the true size) and objects.
func craft(t *testing.T, key signingKey, entries []entry, layoutSize int64, objects int) string {
	t.Helper()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	var trailer []byte
	for _, e := range entries {
		if e.hdr.Name == "" {
			trailer = append(trailer, e.data...) // bytes after the end of the archive
			continue
		}
		h := e.hdr
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	raw.Write(trailer)
	if layoutSize == 0 {
		layoutSize = int64(raw.Len())
	}
	dir := t.TempDir()
	cw := &chunkWriter{dir: dir, size: 1 << 20}
	zw, _ := zstd.NewWriter(cw)
	zw.Write(raw.Bytes())
	zw.Close()
	cw.finish()
	m := BundleManifest{FormatVersion: 1, Created: time.Now().UTC(), Compression: "zstd", LayoutSize: layoutSize, Objects: objects, Images: []Image{}, Chunks: cw.chunks}
	signManifest(t, dir, key, &m)
	return dir
}

func TestVerifyRefusesHostileLayouts(t *testing.T) {
	key := newSigningKey(t)
	layoutFile := file("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	index := file("index.json", []byte(`{"schemaVersion":2,"manifests":[]}`))
	good := blob([]byte("hello"))
	wrong := good
	wrong.data = []byte("jello")
	zeros := make([]byte, 64<<20)
	cases := []struct {
		name    string
		entries []entry
		size    int64
		objects int
		want    string
	}{
		{"well formed", []entry{layoutFile, good, index}, 0, 1, ""},
		{"escaping entry", []entry{layoutFile, file("../x", []byte("x")), index}, 0, 1, `entry "../x" is not part of an OCI layout`},
		{"absolute entry", []entry{layoutFile, file("/etc/passwd", []byte("x")), index}, 0, 1, `entry "/etc/passwd" is not part of an OCI layout`},
		{"dot segments", []entry{layoutFile, file("blobs/sha256/../../x", []byte("x")), index}, 0, 1, "is not part of an OCI layout"},
		{"symlink", []entry{layoutFile, {hdr: tar.Header{Name: "blobs/sha256/" + strings.Repeat("a", 64), Typeflag: tar.TypeSymlink, Linkname: "/etc/shadow"}}, index}, 0, 1, "is a symbolic link, not a regular file"},
		{"hard link", []entry{layoutFile, {hdr: tar.Header{Name: "index.json", Typeflag: tar.TypeLink, Linkname: "../../etc/passwd"}}}, 0, 0, "is a hard link"},
		{"device", []entry{layoutFile, {hdr: tar.Header{Name: "blobs/sha256/" + strings.Repeat("b", 64), Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 5}}, index}, 0, 1, "is a device"},
		{"blob digest mismatch", []entry{layoutFile, wrong, index}, 0, 1, "its bytes hash to"},
		{"duplicate entry", []entry{layoutFile, good, good, index}, 0, 1, "appears twice"},
		{"zstd bomb", []entry{layoutFile, blob(zeros), index}, 1 << 20, 1, "larger than the declared layout"},
		{"bomb past the declared size", []entry{layoutFile, good, index, {data: zeros}}, 4 << 10, 1, "more than the declared"},
		{"index names a missing manifest", []entry{layoutFile, good, file("index.json", []byte(`{"manifests":[{"digest":"sha256:`+strings.Repeat("c", 64)+`"}]}`))}, 0, 1, "which the layout does not hold"},
		{"more entries than declared", []entry{layoutFile, good, blob([]byte("a")), blob([]byte("b")), blob([]byte("c")), blob([]byte("d")), index}, 0, 1, "more entries than the 1 objects"},
		{"object count differs", []entry{layoutFile, good, index}, 0, 2, "holds 1 blobs, the bundle manifest says 2"},
		{"index missing", []entry{layoutFile, good}, 0, 1, "index.json is missing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := craft(t, key, c.entries, c.size, c.objects)
			out := filepath.Join(t.TempDir(), "out")
			_, err := Extract(dir, out, key.verifier, nil)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want it to contain %q", err, c.want)
			}
			if _, err := os.Lstat(filepath.Join(filepath.Dir(out), "x")); err == nil {
				t.Fatal("an entry was written outside the layout")
			}
		})
	}
}
