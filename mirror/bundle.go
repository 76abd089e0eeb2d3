package mirror

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// FormatVersion is the version of the bundle format this package writes. Version 2 lists
// every file's frame (Entries), so that an import reads each blob straight from the
// chunks; version 1 bundles, without them, are still read (extracted whole first).
const FormatVersion = 2

// Bundle file names.
const (
	// ManifestFile is the bundle manifest.
	ManifestFile = "bundle.json"
	// SignatureFile holds the base64 signature over ManifestFile's bytes.
	SignatureFile = "bundle.json.sig"
)

// MaxManifestFileBytes bounds the bundle manifest.
const MaxManifestFileBytes = 64 << 20

// BundleManifest describes a bundle: the images it carries and the chunks of its
// compressed OCI layout.
type BundleManifest struct {
	// FormatVersion is FormatVersion.
	FormatVersion int `json:"formatVersion"`
	// Created is when the bundle was written.
	Created time.Time `json:"created"`
	// Compression of the layout tar; "zstd" is the only one.
	Compression string `json:"compression"`
	// LayoutSize is the length of the uncompressed layout tar; a reader stops beyond it.
	LayoutSize int64 `json:"layoutSize"`
	// Objects is the number of blobs and manifests in the layout.
	Objects int `json:"objects"`
	// Delta, when set, says the bundle leaves out what an inventory listed.
	Delta *Delta `json:"delta,omitempty"`
	// Images are the pinned images carried.
	Images []Image `json:"images"`
	// Chunks are the parts of the compressed layout, in order.
	Chunks []Chunk `json:"chunks"`
	// Entries locate every file of the layout in the chunks, in order (format 2).
	Entries []Entry `json:"entries,omitempty"`
	// VulnDB, when set, is the vulnerability database the layout carries as an artifact.
	VulnDB *VulnDB `json:"vulnDB,omitempty"`
	// LeftOut are the images the mirror file selected that failed publisher verification
	// and were left out (collect --unverified leave-out).
	LeftOut []Unverified `json:"leftOut,omitempty"`
}

// Delta names the inventory a delta bundle was computed against.
type Delta struct {
	// Registry is the inventory's registry.
	Registry string `json:"registry"`
	// InventoryCreated is when that inventory was taken.
	InventoryCreated time.Time `json:"inventoryCreated"`
	// Omitted counts the blobs and manifests left out.
	Omitted int `json:"omitted"`
}

// ParseBundleManifest reads a bundle manifest strictly and checks that it is well formed:
// known version and compression, chunks named in order, sizes and hashes well formed,
// image names and digests valid. It does not check the signature (see Verify).
func ParseBundleManifest(data []byte) (*BundleManifest, error) {
	if len(data) > MaxManifestFileBytes {
		return nil, fmt.Errorf("bundle manifest: larger than %d bytes", MaxManifestFileBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m BundleManifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("bundle manifest: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("bundle manifest: data after the JSON object")
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("bundle manifest: %w", err)
	}
	return &m, nil
}

func (m *BundleManifest) check() error {
	if m.FormatVersion != 1 && m.FormatVersion != FormatVersion {
		return fmt.Errorf("formatVersion %d is not supported (want 1 or %d)", m.FormatVersion, FormatVersion)
	}
	if m.Compression != "zstd" {
		return fmt.Errorf("compression %q is not supported (want zstd)", m.Compression)
	}
	if m.LayoutSize <= 0 {
		return fmt.Errorf("layoutSize %d: want a positive size", m.LayoutSize)
	}
	if m.Objects < 0 {
		return fmt.Errorf("objects %d: want a count", m.Objects)
	}
	if len(m.Chunks) == 0 {
		return errors.New("chunks: none listed")
	}
	for i, c := range m.Chunks {
		if c.Name != ChunkName(i) {
			return fmt.Errorf("chunks[%d].name: %q (want %q: chunks are named in order)", i, c.Name, ChunkName(i))
		}
		if c.Size <= 0 {
			return fmt.Errorf("chunks[%d].size: %d (want a positive size)", i, c.Size)
		}
		if !sha256Hex.MatchString(c.SHA256) {
			return fmt.Errorf("chunks[%d].sha256: %q is not 64 lowercase hex digits", i, c.SHA256)
		}
	}
	if err := m.checkEntries(); err != nil {
		return err
	}
	if m.VulnDB != nil {
		if err := m.VulnDB.check(); err != nil {
			return err
		}
	}
	for i, img := range m.Images {
		p := fmt.Sprintf("images[%d]", i)
		if !pathPattern.MatchString(img.Name) {
			return fmt.Errorf("%s.name: invalid repository name %q", p, img.Name)
		}
		if img.Tag != "" && !tagPattern.MatchString(img.Tag) {
			return fmt.Errorf("%s.tag: invalid tag %q", p, img.Tag)
		}
		if !digestPattern.MatchString(img.Digest) {
			return fmt.Errorf("%s.digest: invalid digest %q", p, img.Digest)
		}
		for j, c := range img.Children {
			if !digestPattern.MatchString(c.Digest) {
				return fmt.Errorf("%s.children[%d].digest: invalid digest %q", p, j, c.Digest)
			}
		}
		if err := img.Publisher.check(p + ".publisher"); err != nil {
			return err
		}
		for j, r := range img.Referrers {
			if !digestPattern.MatchString(r.Digest) || !digestPattern.MatchString(r.Subject) {
				return fmt.Errorf("%s.referrers[%d]: invalid digest or subject", p, j)
			}
			if r.Tag != "" && !tagPattern.MatchString(r.Tag) {
				return fmt.Errorf("%s.referrers[%d].tag: invalid tag %q", p, j, r.Tag)
			}
		}
	}
	for i, u := range m.LeftOut {
		if !digestPattern.MatchString(u.Digest) {
			return fmt.Errorf("leftOut[%d].digest: invalid digest %q", i, u.Digest)
		}
	}
	return nil
}

// check reports a publisher record that names no authority or an invalid artifact.
func (p *Publisher) check(path string) error {
	if p == nil {
		return nil
	}
	if len(p.Verified) == 0 || len(p.Signatures) == 0 {
		return fmt.Errorf("%s: names no verified authority or signature", path)
	}
	for i, s := range p.Signatures {
		if s.Authority == "" || !digestPattern.MatchString(s.Artifact) {
			return fmt.Errorf("%s.signatures[%d]: want an authority and an artifact digest", path, i)
		}
	}
	return nil
}

// checkEntries checks that format 2 lists its files' frames (format 1 none): in order,
// apart, inside the chunks, each a layout file named once, every blob counted.
func (m *BundleManifest) checkEntries() error {
	if m.FormatVersion == 1 {
		if len(m.Entries) > 0 {
			return errors.New("entries: a format 1 bundle lists none")
		}
		return nil
	}
	if len(m.Entries) == 0 {
		return errors.New("entries: none listed")
	}
	var stream int64
	for _, c := range m.Chunks {
		stream += c.Size
	}
	names := make(map[string]bool, len(m.Entries))
	var end, sizes int64
	blobs := 0
	for i, e := range m.Entries {
		p := fmt.Sprintf("entries[%d]", i)
		switch {
		case e.Name == "oci-layout" || e.Name == "index.json":
		case blobPath.MatchString(e.Name):
			blobs++
		default:
			return fmt.Errorf("%s.name: %q is not a file of an OCI layout (want oci-layout, index.json or blobs/sha256/<hex>)", p, e.Name)
		}
		if names[e.Name] {
			return fmt.Errorf("%s.name: %q is listed twice", p, e.Name)
		}
		names[e.Name] = true
		if e.Size < 0 || e.Size > m.LayoutSize-sizes {
			return fmt.Errorf("%s.size: %d bytes does not fit the declared layout of %d", p, e.Size, m.LayoutSize)
		}
		sizes += e.Size
		if e.Offset < end || e.Length <= 0 || e.Length > stream-e.Offset {
			return fmt.Errorf("%s: frame at %d of %d bytes is out of order, overlaps the one before, or lies outside the %d bytes of chunks", p, e.Offset, e.Length, stream)
		}
		end = e.Offset + e.Length
	}
	if blobs != m.Objects {
		return fmt.Errorf("entries: %d blobs, the bundle manifest says %d objects", blobs, m.Objects)
	}
	return nil
}
