package ocilayout

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Layout is an OCI image layout directory (oci-layout, index.json, blobs/<alg>/<hex>).
type Layout struct {
	dir string
}

// Open checks that dir is an OCI image layout.
func Open(dir string) (*Layout, error) {
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		return nil, fmt.Errorf("%s is not an OCI image layout (no oci-layout file): %w", dir, err)
	}
	return &Layout{dir: dir}, nil
}

// maxIndexBytes caps index.json and manifests.
const maxIndexBytes = 4 << 20

// Resolve returns the digest of the manifest tagged ref (annotation
// org.opencontainers.image.ref.name) in index.json, or of its only manifest when ref is "".
func (l *Layout) Resolve(ref string) (string, error) {
	data, err := readCapped(filepath.Join(l.dir, "index.json"), maxIndexBytes)
	if err != nil {
		return "", err
	}
	var idx struct {
		Manifests []struct {
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		return "", fmt.Errorf("index.json: %w", err)
	}
	var names []string
	for _, m := range idx.Manifests {
		name := m.Annotations["org.opencontainers.image.ref.name"]
		if ref == "" && len(idx.Manifests) == 1 || name == ref && ref != "" {
			return m.Digest, nil
		}
		names = append(names, name)
	}
	if ref == "" {
		return "", fmt.Errorf("index.json lists %d manifests: name one (%s)", len(idx.Manifests), strings.Join(names, ", "))
	}
	return "", fmt.Errorf("no manifest named %q in index.json (have %s)", ref, strings.Join(names, ", "))
}

// path returns the file of a blob, refusing digests that are not alg:hex.
func (l *Layout) path(digest string) (string, error) {
	alg, hexPart, ok := strings.Cut(digest, ":")
	if !ok || alg != "sha256" || len(hexPart) != 64 {
		return "", fmt.Errorf("unsupported digest %q", digest)
	}
	if _, err := hex.DecodeString(hexPart); err != nil {
		return "", fmt.Errorf("invalid digest %q", digest)
	}
	return filepath.Join(l.dir, "blobs", alg, hexPart), nil
}

// Manifest reads the manifest with digest ref (repo is ignored: a layout has none).
func (l *Layout) Manifest(_ context.Context, _, ref string) ([]byte, string, error) {
	data, err := l.Blob(context.Background(), "", ref, maxIndexBytes)
	if err != nil {
		return nil, "", err
	}
	var m struct {
		MediaType string `json:"mediaType"`
	}
	_ = json.Unmarshal(data, &m)
	return data, m.MediaType, nil
}

// Blob reads a whole blob of at most max bytes and checks its digest.
func (l *Layout) Blob(_ context.Context, _, digest string, max int64) ([]byte, error) {
	p, err := l.path(digest)
	if err != nil {
		return nil, err
	}
	data, err := readCapped(p, max)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	if "sha256:"+hex.EncodeToString(sum[:]) != digest {
		return nil, fmt.Errorf("blob %s: content does not match its digest", digest)
	}
	return data, nil
}

// OpenBlob streams a blob; the caller checks the digest while reading.
func (l *Layout) OpenBlob(_ context.Context, _, digest string) (io.ReadCloser, error) {
	p, err := l.path(digest)
	if err != nil {
		return nil, err
	}
	return os.Open(p)
}

// readCapped reads a file of at most max bytes.
func readCapped(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, errors.New(path + ": larger than " + fmt.Sprint(max) + " bytes")
	}
	return data, nil
}
