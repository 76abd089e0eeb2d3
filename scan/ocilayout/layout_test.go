package ocilayout

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeLayout makes a layout with the given blobs and index.json.
func writeLayout(t *testing.T, index string, blobs ...[]byte) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), []byte(index), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		t.Fatal(err)
	}
	var digests []string
	for _, b := range blobs {
		sum := sha256.Sum256(b)
		h := hex.EncodeToString(sum[:])
		if err := os.WriteFile(filepath.Join(dir, "blobs", "sha256", h), b, 0o644); err != nil {
			t.Fatal(err)
		}
		digests = append(digests, "sha256:"+h)
	}
	return dir, digests
}

func TestLayout(t *testing.T) {
	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}`)
	sum := sha256.Sum256(manifest)
	d := "sha256:" + hex.EncodeToString(sum[:])
	index := `{"schemaVersion":2,"manifests":[{"digest":"` + d + `","annotations":{"org.opencontainers.image.ref.name":"1.0.0"}},` +
		`{"digest":"sha256:` + strings.Repeat("0", 64) + `","annotations":{"org.opencontainers.image.ref.name":"2.0.0"}}]}`
	dir, _ := writeLayout(t, index, manifest)
	l, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := l.Resolve("1.0.0"); err != nil || got != d {
		t.Fatalf("Resolve(1.0.0) = %q, %v", got, err)
	}
	if _, err := l.Resolve(""); err == nil || !strings.Contains(err.Error(), "name one") {
		t.Fatalf("Resolve of an ambiguous layout: %v", err)
	}
	if _, err := l.Resolve("9.9.9"); err == nil || !strings.Contains(err.Error(), "1.0.0") {
		t.Fatalf("Resolve of a missing name should list the names: %v", err)
	}
	body, mt, err := l.Manifest(context.Background(), "", d)
	if err != nil || string(body) != string(manifest) || mt != "application/vnd.oci.image.manifest.v1+json" {
		t.Fatalf("Manifest: %q %q %v", body, mt, err)
	}
	for _, bad := range []string{"sha256:../../etc/passwd", "sha512:" + strings.Repeat("a", 128), "sha256:" + strings.Repeat("z", 64), "nodigest"} {
		if _, err := l.Blob(context.Background(), "", bad, 1<<20); err == nil {
			t.Errorf("Blob(%q) read something", bad)
		}
		if _, err := l.OpenBlob(context.Background(), "", bad); err == nil {
			t.Errorf("OpenBlob(%q) opened something", bad)
		}
	}
	// A blob whose bytes do not match its name is refused, and caps hold.
	if err := os.WriteFile(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(d, "sha256:")), []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Blob(context.Background(), "", d, 1<<20); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("tampered blob: %v", err)
	}
	if _, err := l.Blob(context.Background(), "", d, 3); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("cap: %v", err)
	}
	if _, err := Open(t.TempDir()); err == nil {
		t.Fatal("a directory without oci-layout opened")
	}
}
