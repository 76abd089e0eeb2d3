package e2e

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// OCI media types of the images the tests build.
const (
	mediaManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaConfig   = "application/vnd.oci.image.config.v1+json"
	mediaLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// image is a real single-layer OCI image, built byte by byte so every digest is known
// before a client touches it.
type image struct {
	layerTar []byte // uncompressed layer
	layer    []byte // gzip of layerTar, the layer blob
	config   []byte
	manifest []byte
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type manifestDoc struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType,omitempty"`
	Config        descriptor   `json:"config"`
	Layers        []descriptor `json:"layers"`
}

type indexDoc struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType,omitempty"`
	Manifests     []descriptor `json:"manifests"`
}

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// newImage builds an image whose layer holds a small text file and 1 MiB of random bytes,
// so that two calls never produce the same blobs.
func newImage(t *testing.T) image {
	t.Helper()
	random := make([]byte, 1<<20)
	_, _ = rand.Read(random)
	layerTar, layer := tarLayer(t, map[string][]byte{
		"etc/portcullis-e2e/hello.txt":      []byte("hello from the portcullis e2e tests\n"),
		"var/lib/portcullis-e2e/random.bin": random,
	})
	img := image{layerTar: layerTar, layer: layer}
	img.config = mustJSON(t, map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"config":       map[string]any{"User": "65532", "Cmd": []string{"/bin/true"}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{sha256Digest(img.layerTar)}},
	})
	img.manifest = mustJSON(t, manifestDoc{
		SchemaVersion: 2,
		MediaType:     mediaManifest,
		Config:        descriptor{MediaType: mediaConfig, Digest: sha256Digest(img.config), Size: int64(len(img.config))},
		Layers:        []descriptor{{MediaType: mediaLayer, Digest: sha256Digest(img.layer), Size: int64(len(img.layer))}},
	})
	return img
}

func (img image) digest() string      { return sha256Digest(img.manifest) }
func (img image) layerDigest() string { return sha256Digest(img.layer) }

// writeLayout writes img as an OCI image layout in dir, tagged tag.
func (img image) writeLayout(t *testing.T, dir, tag string) {
	t.Helper()
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{img.layer, img.config, img.manifest} {
		writeFile(t, filepath.Join(blobs, strings.TrimPrefix(sha256Digest(b), "sha256:")), b)
	}
	writeFile(t, filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`))
	writeFile(t, filepath.Join(dir, "index.json"), mustJSON(t, indexDoc{
		SchemaVersion: 2,
		MediaType:     "application/vnd.oci.image.index.v1+json",
		Manifests: []descriptor{{
			MediaType: mediaManifest, Digest: img.digest(), Size: int64(len(img.manifest)),
			Annotations: map[string]string{"org.opencontainers.image.ref.name": tag},
		}},
	}))
}

// layoutManifests returns the manifest descriptors listed in an OCI layout's index.json.
func layoutManifests(t *testing.T, dir string) []descriptor {
	t.Helper()
	var idx indexDoc
	if err := json.Unmarshal(readFile(t, filepath.Join(dir, "index.json")), &idx); err != nil {
		t.Fatalf("%s/index.json: %v", dir, err)
	}
	return idx.Manifests
}

// layoutBlob reads a blob from an OCI layout and checks it matches its digest.
func layoutBlob(t *testing.T, dir, digest string) []byte {
	t.Helper()
	alg, hexd, _ := strings.Cut(digest, ":")
	b := readFile(t, filepath.Join(dir, "blobs", alg, hexd))
	if got := sha256Digest(b); got != digest {
		t.Fatalf("layout blob %s has digest %s", digest, got)
	}
	return b
}

// gunzip decompresses b.
func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
