package loadgen

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// OCI media types the generated image uses and the nodes ask for.
const (
	MediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	MediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	MediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// Descriptor is an OCI content descriptor.
type Descriptor struct {
	MediaType string    `json:"mediaType"`
	Digest    string    `json:"digest"`
	Size      int64     `json:"size"`
	Platform  *Platform `json:"platform,omitempty"`
}

// Platform names the OS and architecture a manifest of an index is for.
type Platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

// Manifest is an OCI image manifest.
type Manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        Descriptor   `json:"config"`
	Layers        []Descriptor `json:"layers"`
}

// Index is an OCI image index.
type Index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []Descriptor `json:"manifests"`
}

// ImageSpec describes the image a rollout pulls: a multi-platform index whose linux/amd64
// manifest has one layer per entry of LayerSizes (gzip-framed tars of incompressible
// files, stored without compression so that generating them costs little CPU), plus a
// small linux/arm64 manifest the nodes skip, as in a real multi-arch image.
type ImageSpec struct {
	// Repository and Tag name the image, e.g. "bench/rollout" and "v1".
	Repository, Tag string
	// LayerSizes are the approximate sizes of the amd64 layers in bytes.
	LayerSizes []int64
	// Seed makes the content reproducible: the same spec gives the same digests.
	Seed uint64
}

// Image is what PushImage pushed.
type Image struct {
	Repository string     `json:"repository"`
	Tag        string     `json:"tag"`
	Index      Descriptor `json:"index"`
	Manifest   Descriptor `json:"manifest"`
	Config     Descriptor `json:"config"`
	// Layers of the amd64 manifest.
	Layers []Descriptor `json:"layers"`
	// BlobBytes is what one node downloads in blobs: the config and every amd64 layer.
	BlobBytes int64 `json:"blobBytes"`
}

// PushImage generates the image of spec and pushes it to the registry at base (e.g.
// http://127.0.0.1:5000) with client: blobs streamed in one PATCH each, the platform
// manifests, then the index under the tag.
func PushImage(ctx context.Context, client *http.Client, base string, spec ImageSpec) (*Image, error) {
	if spec.Repository == "" || spec.Tag == "" {
		return nil, errors.New("push: repository and tag are required")
	}
	if len(spec.LayerSizes) == 0 {
		return nil, errors.New("push: at least one layer size is required")
	}
	p := &pusher{ctx: ctx, client: client, base: strings.TrimSuffix(base, "/"), repo: spec.Repository}
	img := &Image{Repository: spec.Repository, Tag: spec.Tag}
	var diffIDs []string
	for i, size := range spec.LayerSizes {
		if size <= 0 {
			return nil, fmt.Errorf("push: layer %d: size must be positive, got %d", i, size)
		}
		d, diffID, err := p.pushLayer(spec.Seed, uint64(i), size)
		if err != nil {
			return nil, fmt.Errorf("push: layer %d: %w", i, err)
		}
		img.Layers = append(img.Layers, d)
		diffIDs = append(diffIDs, diffID)
	}
	var err error
	img.Config, err = p.pushJSON(MediaTypeConfig, imageConfig("amd64", diffIDs))
	if err != nil {
		return nil, fmt.Errorf("push: config: %w", err)
	}
	img.Manifest, err = p.pushManifest(MediaTypeManifest, Manifest{SchemaVersion: 2, MediaType: MediaTypeManifest, Config: img.Config, Layers: img.Layers}, "")
	if err != nil {
		return nil, fmt.Errorf("push: amd64 manifest: %w", err)
	}
	img.Manifest.Platform = &Platform{Architecture: "amd64", OS: "linux"}

	// The other platform: one small layer and its own config.
	armLayer, armDiffID, err := p.pushLayer(spec.Seed, 1<<32, 64<<10)
	if err != nil {
		return nil, fmt.Errorf("push: arm64 layer: %w", err)
	}
	armConfig, err := p.pushJSON(MediaTypeConfig, imageConfig("arm64", []string{armDiffID}))
	if err != nil {
		return nil, fmt.Errorf("push: arm64 config: %w", err)
	}
	armManifest, err := p.pushManifest(MediaTypeManifest, Manifest{SchemaVersion: 2, MediaType: MediaTypeManifest, Config: armConfig, Layers: []Descriptor{armLayer}}, "")
	if err != nil {
		return nil, fmt.Errorf("push: arm64 manifest: %w", err)
	}
	armManifest.Platform = &Platform{Architecture: "arm64", OS: "linux"}

	img.Index, err = p.pushManifest(MediaTypeIndex, Index{SchemaVersion: 2, MediaType: MediaTypeIndex, Manifests: []Descriptor{img.Manifest, armManifest}}, spec.Tag)
	if err != nil {
		return nil, fmt.Errorf("push: index: %w", err)
	}
	img.BlobBytes = img.Config.Size
	for _, l := range img.Layers {
		img.BlobBytes += l.Size
	}
	return img, nil
}

// imageConfig is an OCI image configuration that runs as a non-root user (so the
// starter policy's runs-as-root rule does not warn on every pull).
func imageConfig(arch string, diffIDs []string) any {
	return map[string]any{
		"architecture": arch,
		"os":           "linux",
		"created":      "2026-01-01T00:00:00Z",
		"config": map[string]any{
			"User":       "65532:65532",
			"Entrypoint": []string{"/app/server"},
			"Env":        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		},
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
	}
}

type pusher struct {
	ctx    context.Context
	client *http.Client
	base   string
	repo   string
}

// maxFileBytes bounds each file of a generated layer.
const maxFileBytes = 16 << 20

// pushLayer streams a generated layer to the registry and returns its descriptor and diffID.
func (p *pusher) pushLayer(seed, stream uint64, size int64) (Descriptor, string, error) {
	pr, pw := io.Pipe()
	digest, diffID := sha256.New(), sha256.New()
	counter := &countWriter{}
	go func() {
		pw.CloseWithError(writeLayer(io.MultiWriter(pw, digest, counter), diffID, seed, stream, size))
	}()
	dgst, err := p.upload(pr, func() string { return "sha256:" + hex.EncodeToString(digest.Sum(nil)) })
	pr.CloseWithError(errors.New("upload ended"))
	if err != nil {
		return Descriptor{}, "", err
	}
	return Descriptor{MediaType: MediaTypeLayer, Digest: dgst, Size: counter.n}, "sha256:" + hex.EncodeToString(diffID.Sum(nil)), nil
}

// writeLayer writes a gzip stream (stored blocks) of a tar of incompressible files totalling
// about size bytes to w, and the tar itself to diffID.
func writeLayer(w io.Writer, diffID hash.Hash, seed, stream uint64, size int64) error {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[0:], seed)
	binary.LittleEndian.PutUint64(key[8:], stream)
	copy(key[16:], "portcullis-bench")
	rnd := rand.NewChaCha8(key)
	zw, err := gzip.NewWriterLevel(w, gzip.NoCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(io.MultiWriter(zw, diffID))
	dir := "app/layer-" + strconv.FormatUint(stream, 10) + "/"
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: time.Unix(1767225600, 0)}); err != nil {
		return err
	}
	for i, left := 0, size; left > 0; i++ {
		n := min(left, maxFileBytes)
		left -= n
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: dir + "blob-" + strconv.Itoa(i) + ".bin", Mode: 0o644, Size: n, ModTime: time.Unix(1767225600, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.CopyN(tw, rnd, n); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

// pushJSON pushes v as a blob of mediaType.
func (p *pusher) pushJSON(mediaType string, v any) (Descriptor, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return Descriptor{}, err
	}
	dgst := digestOf(data)
	if _, err := p.upload(bytes.NewReader(data), func() string { return dgst }); err != nil {
		return Descriptor{}, err
	}
	return Descriptor{MediaType: mediaType, Digest: dgst, Size: int64(len(data))}, nil
}

// pushManifest PUTs a manifest by its digest, or by tag when tag is set.
func (p *pusher) pushManifest(mediaType string, v any, tag string) (Descriptor, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return Descriptor{}, err
	}
	dgst := digestOf(data)
	ref := dgst
	if tag != "" {
		ref = tag
	}
	req, err := http.NewRequestWithContext(p.ctx, http.MethodPut, p.base+"/v2/"+p.repo+"/manifests/"+ref, bytes.NewReader(data))
	if err != nil {
		return Descriptor{}, err
	}
	req.Header.Set("Content-Type", mediaType)
	if err := p.expect(req, http.StatusCreated); err != nil {
		return Descriptor{}, err
	}
	return Descriptor{MediaType: mediaType, Digest: dgst, Size: int64(len(data))}, nil
}

// upload sends body as one blob: POST to open a session, one streamed PATCH, and a PUT
// with the digest, which digestOf tells once the body has been read to its end.
func (p *pusher) upload(body io.Reader, digestOf func() string) (string, error) {
	req, err := http.NewRequestWithContext(p.ctx, http.MethodPost, p.base+"/v2/"+p.repo+"/blobs/uploads/", nil)
	if err != nil {
		return "", err
	}
	loc, err := p.location(req, http.StatusAccepted)
	if err != nil {
		return "", fmt.Errorf("opening the upload: %w", err)
	}
	req, err = http.NewRequestWithContext(p.ctx, http.MethodPatch, loc, io.NopCloser(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	if loc, err = p.location(req, http.StatusAccepted); err != nil {
		return "", fmt.Errorf("sending the blob: %w", err)
	}
	dgst := digestOf()
	u, err := url.Parse(loc)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("digest", dgst)
	u.RawQuery = q.Encode()
	req, err = http.NewRequestWithContext(p.ctx, http.MethodPut, u.String(), nil)
	if err != nil {
		return "", err
	}
	if err := p.expect(req, http.StatusCreated); err != nil {
		return "", fmt.Errorf("closing the upload: %w", err)
	}
	return dgst, nil
}

// location sends req, expects status, and returns the absolute Location of the answer.
func (p *pusher) location(req *http.Request, status int) (string, error) {
	resp, err := p.client.Do(req)
	if err != nil {
		return "", err
	}
	defer drain(resp)
	if resp.StatusCode != status {
		return "", statusError(req, resp)
	}
	loc, err := resp.Location()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	return loc.String(), nil
}

// expect sends req and expects status.
func (p *pusher) expect(req *http.Request, status int) error {
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer drain(resp)
	if resp.StatusCode != status {
		return statusError(req, resp)
	}
	return nil
}

// statusError describes an unexpected answer with the start of its body.
func statusError(req *http.Request, resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, strings.TrimSpace(string(body)))
}

// drain reads a little of an answer's rest so its connection can be reused, and closes it.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

func digestOf(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }
