package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/klauspost/compress/zstd"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/mirror"
)

// TestMirrorImportRefusesHostileBundles runs `portcullis mirror import` on hostile
// bundles: a real bundle with a flipped byte in one chunk, with a chunk missing, with its
// bundle manifest changed and re-signed by an unknown key; and bundles signed with the
// right key (an insider, a stolen key) that declare a gzip stream (never decompressed:
// zstd with a bounded window is the only format read), whose layout holds a tar entry
// escaping the directory, or a zstd bomb (64 MiB of zeros declared as a 1 MiB layout). Each exits 1
// saying `nothing imported` and what is wrong, the target registry's catalog stays empty,
// no journal is started, and nothing is written outside the work directory. The undamaged
// bundle then imports.
func TestMirrorImportRefusesHostileBundles(t *testing.T) {
	dir := t.TempDir()
	src := regtest.Registry(t)
	img, err := random.Image(1<<20, 2)
	if err != nil {
		t.Fatal(err)
	}
	regtest.WriteImage(t, src, "team/app:1.0.0", img)
	password := []byte("pw")
	priv, pub, err := cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), func(bool) ([]byte, error) { return password, nil })
	if err != nil {
		t.Fatal(err)
	}
	signer, err := mirror.LoadSigner(priv, password)
	if err != nil {
		t.Fatal(err)
	}
	otherPriv, _, err := cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), func(bool) ([]byte, error) { return password, nil })
	if err != nil {
		t.Fatal(err)
	}
	other, err := mirror.LoadSigner(otherPriv, password)
	if err != nil {
		t.Fatal(err)
	}
	keyFile, pubFile, mirrorFile := filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub"), filepath.Join(dir, "mirror.yaml")
	writeFile(t, keyFile, priv)
	writeFile(t, pubFile, pub)
	writeFile(t, mirrorFile, []byte("version: 1\nsources:\n  - registry: "+strings.TrimPrefix(src, "http://")+"\n    repositories:\n      - {name: team/app, tags: [\"1.0.0\"]}\n"))
	good := filepath.Join(dir, "good")
	portcullis(t, 0, []string{"COSIGN_PASSWORD=pw"}, "mirror", "collect", "--file", mirrorFile, "--out", good, "--key", keyFile, "--chunk-size", "1MiB")
	var m struct{ Chunks []struct{ Name string } }
	if err := json.Unmarshal(readFile(t, filepath.Join(good, mirror.ManifestFile)), &m); err != nil || len(m.Chunks) < 2 {
		t.Fatalf("bundle.json: %v, %d chunks (want 2 or more)", err, len(m.Chunks))
	}
	chunk1 := m.Chunks[1].Name

	target := regtest.Registry(t)
	gw := startGateway(t, "--upstream", target)
	layoutFile := tarEntry("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	index := tarEntry("index.json", []byte(`{"schemaVersion":2,"manifests":[]}`))
	zeros := make([]byte, 64<<20)
	sum := sha256.Sum256(zeros)

	cases := []struct {
		name   string
		bundle func(t *testing.T, d string)
		want   string
	}{
		{"flipped byte in a chunk", func(t *testing.T, d string) {
			copyBundle(t, good, d)
			b := readFile(t, filepath.Join(d, chunk1))
			b[len(b)/2] ^= 0x01
			writeFile(t, filepath.Join(d, chunk1), b)
		}, "chunk " + chunk1 + ": SHA-256"},
		{"missing chunk", func(t *testing.T, d string) {
			copyBundle(t, good, d)
			if err := os.Remove(filepath.Join(d, chunk1)); err != nil {
				t.Fatal(err)
			}
		}, chunk1 + ": missing from the bundle"},
		{"re-signed by an unknown key", func(t *testing.T, d string) {
			copyBundle(t, good, d)
			b := bytes.Replace(readFile(t, filepath.Join(d, mirror.ManifestFile)), []byte(`"1.0.0"`), []byte(`"6.6.6"`), 1)
			writeFile(t, filepath.Join(d, mirror.ManifestFile), b)
			writeFile(t, filepath.Join(d, mirror.SignatureFile), signBlob(t, other, b))
		}, "bundle.json.sig does not verify with the given key"},
		{"gzip stream declared", func(t *testing.T, d string) {
			copyBundle(t, good, d)
			b := readFile(t, filepath.Join(d, mirror.ManifestFile))
			b = bytes.Replace(b, []byte(`"compression": "zstd"`), []byte(`"compression": "gzip"`), 1)
			writeFile(t, filepath.Join(d, mirror.ManifestFile), b)
			writeFile(t, filepath.Join(d, mirror.SignatureFile), signBlob(t, signer, b))
		}, `compression "gzip" is not supported (want zstd)`},
		{"tar entry escaping the directory", func(t *testing.T, d string) {
			craftBundle(t, d, signer, []tarFile{layoutFile, tarEntry("../../escaped", []byte("x")), index}, 0, 1)
		}, `entry "../../escaped" is not part of an OCI layout`},
		{"zstd bomb", func(t *testing.T, d string) {
			craftBundle(t, d, signer, []tarFile{layoutFile, tarEntry("blobs/sha256/"+hex.EncodeToString(sum[:]), zeros), index}, 1<<20, 1)
		}, "larger than the declared layout"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := filepath.Join(t.TempDir(), "bundle")
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			c.bundle(t, d)
			work := filepath.Join(t.TempDir(), "work")
			if err := os.MkdirAll(work, 0o755); err != nil {
				t.Fatal(err)
			}
			journal := filepath.Join(t.TempDir(), "journal.jsonl")
			out := portcullis(t, 1, nil, "mirror", "import", "--bundle", d, "--key", pubFile, "--gateway", "http://"+gw.addr,
				"--journal", journal, "--workdir", work)
			if !strings.Contains(out, "nothing imported") || !strings.Contains(out, c.want) {
				t.Errorf("output does not say %q and %q:\n%s", "nothing imported", c.want, out)
			}
			if cat := catalog(t, target); len(cat) != 0 {
				t.Errorf("the target registry holds %v after a refused bundle", cat)
			}
			if _, err := os.Stat(journal); !os.IsNotExist(err) {
				t.Errorf("a refused bundle started a journal (%v)", err)
			}
			for _, p := range []string{filepath.Join(work, "escaped"), filepath.Join(filepath.Dir(work), "escaped")} {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("an entry was written outside the layout: %s", p)
				}
			}
			if entries, _ := os.ReadDir(work); len(entries) != 0 {
				t.Errorf("the work directory keeps %d entries after a refused bundle", len(entries))
			}
		})
	}

	// The catalog check sees an import: the undamaged bundle is imported.
	portcullis(t, 0, nil, "mirror", "import", "--bundle", good, "--key", pubFile, "--gateway", "http://"+gw.addr, "--journal", filepath.Join(dir, "good.jsonl"))
	if cat := catalog(t, target); len(cat) != 1 {
		t.Fatalf("after importing the undamaged bundle the catalog is %v", cat)
	}
}

// tarFile is one entry of a crafted layout tar.
type tarFile struct {
	name string
	data []byte
}

func tarEntry(name string, data []byte) tarFile { return tarFile{name, data} }

// craftBundle writes into d a bundle whose layout tar holds entries, zstd-compressed in one
// chunk, declaring layoutSize (0: the true size) and objects, signed by signer.
func craftBundle(t *testing.T, d string, signer signature.Signer, entries []tarFile, layoutSize int64, objects int) {
	t.Helper()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(e.data))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if layoutSize == 0 {
		layoutSize = int64(raw.Len())
	}
	var z bytes.Buffer
	zw, err := zstd.NewWriter(&z)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(raw.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	name := mirror.ChunkName(0)
	writeFile(t, filepath.Join(d, name), z.Bytes())
	sum := sha256.Sum256(z.Bytes())
	// Format 1: the layout as one undivided stream, verified whole (format 2's own checks
	// of its frames are tested in the mirror package).
	manifest := mustJSON(t, map[string]any{
		"formatVersion": 1, "created": time.Now().UTC().Truncate(time.Second), "compression": "zstd",
		"layoutSize": layoutSize, "objects": objects, "images": []any{},
		"chunks": []any{map[string]any{"name": name, "size": z.Len(), "sha256": hex.EncodeToString(sum[:])}},
	})
	writeFile(t, filepath.Join(d, mirror.ManifestFile), manifest)
	writeFile(t, filepath.Join(d, mirror.SignatureFile), signBlob(t, signer, manifest))
}

// signBlob is the content of a `cosign sign-blob --key` signature file for blob.
func signBlob(t *testing.T, s signature.Signer, blob []byte) []byte {
	t.Helper()
	sig, err := s.SignMessage(bytes.NewReader(blob))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(base64.StdEncoding.EncodeToString(sig))
}

// copyBundle copies the files of bundle directory src into dst.
func copyBundle(t *testing.T, src, dst string) {
	t.Helper()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		writeFile(t, filepath.Join(dst, e.Name()), readFile(t, filepath.Join(src, e.Name())))
	}
}
