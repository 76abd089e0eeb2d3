package mirror

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// The vulnerability database artifact: an OCI artifact manifest with the empty config and
// one layer, a zip archive of OSV records as `portcullis db import` takes it.
const (
	// VulnDBArtifactType is the artifactType of the database artifact's manifest.
	VulnDBArtifactType = "application/vnd.portcullis.vulndb.v1"
	// VulnDBLayerType is the media type of its one layer: a zip archive of OSV records.
	VulnDBLayerType = "application/vnd.portcullis.vulndb.osv.v1+zip"
	// VulnDBRefName is the layout index.json ref name of the database artifact.
	VulnDBRefName = "portcullis-vulndb"
	// AnnotationVulnDBRevision is the database revision the records import to.
	AnnotationVulnDBRevision = "dev.portcullis.vulndb.revision"
	// AnnotationVulnDBNewest is the modified time (RFC 3339) of the newest record.
	AnnotationVulnDBNewest = "dev.portcullis.vulndb.newest"
	// AnnotationVulnDBRecords is the number of records.
	AnnotationVulnDBRecords = "dev.portcullis.vulndb.records"
)

// maxVulnDBManifestBytes bounds the database artifact's manifest.
const maxVulnDBManifestBytes = 64 << 10

// emptyConfig is the OCI empty descriptor's content, the config of the artifact.
var emptyConfig = []byte("{}")

// VulnDB is the bundle manifest's entry for the vulnerability database it carries.
type VulnDB struct {
	// Manifest is the digest of the artifact manifest in the layout.
	Manifest string `json:"manifest"`
	// Layer is the digest of the zip archive of OSV records; Size its length.
	Layer string `json:"layer"`
	Size  int64  `json:"size"`
	// Revision is the database revision the records import to.
	Revision string `json:"revision"`
	// Newest is the modified time of the newest record: how fresh the data is.
	Newest time.Time `json:"newest"`
	// Records is the number of records.
	Records int `json:"records"`
}

// VulnDBSource is the database Write carries: a zip archive of OSV records already
// checked by an import (which gave its revision, newest record and count).
type VulnDBSource struct {
	// Zip is the path of the archive.
	Zip string
	// Revision, Newest and Records describe the database the archive imports to.
	Revision string
	Newest   time.Time
	Records  int
}

func (v *VulnDB) check() error {
	switch {
	case !digestPattern.MatchString(v.Manifest):
		return fmt.Errorf("vulnDB.manifest: invalid digest %q", v.Manifest)
	case !digestPattern.MatchString(v.Layer):
		return fmt.Errorf("vulnDB.layer: invalid digest %q", v.Layer)
	case v.Size <= 0:
		return fmt.Errorf("vulnDB.size: %d (want a positive size)", v.Size)
	case !sha256Hex.MatchString(v.Revision):
		return fmt.Errorf("vulnDB.revision: %q is not 64 lowercase hex digits", v.Revision)
	case v.Records < 0:
		return fmt.Errorf("vulnDB.records: %d (want a count)", v.Records)
	}
	return nil
}

// vulnDBManifest is the artifact manifest of the database.
type vulnDBManifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        descriptor        `json:"config"`
	Layers        []descriptor      `json:"layers"`
	Annotations   map[string]string `json:"annotations"`
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// writeVulnDB writes the database artifact into the layout tar: the empty config (unless
// written already), the zip archive (hashed again as it is copied, so a file changed
// since it was checked is refused) and the artifact manifest. It returns the bundle
// manifest's entry, the index.json entry and the number of blobs written.
func writeVulnDB(lt *layoutTar, src *VulnDBSource, written map[string]bool, now time.Time) (*VulnDB, map[string]any, int, error) {
	f, err := os.Open(src.Zip)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("vulnerability database: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	size, err := io.Copy(h, f)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("vulnerability database: %w", err)
	}
	if size == 0 {
		return nil, nil, 0, fmt.Errorf("vulnerability database %s: empty file", src.Zip)
	}
	layer := "sha256:" + hex.EncodeToString(h.Sum(nil))
	newest := src.Newest.UTC().Format(time.RFC3339Nano)
	m := vulnDBManifest{SchemaVersion: 2, MediaType: "application/vnd.oci.image.manifest.v1+json", ArtifactType: VulnDBArtifactType,
		Config: descriptor{MediaType: "application/vnd.oci.empty.v1+json", Digest: digestOf(emptyConfig), Size: int64(len(emptyConfig))},
		Layers: []descriptor{{MediaType: VulnDBLayerType, Digest: layer, Size: size}},
		Annotations: map[string]string{AnnotationVulnDBRevision: src.Revision, AnnotationVulnDBNewest: newest,
			AnnotationVulnDBRecords: strconv.Itoa(src.Records), "org.opencontainers.image.created": now.UTC().Format(time.RFC3339)}}
	data, err := json.Marshal(m)
	if err != nil {
		return nil, nil, 0, err
	}
	n := 0
	if cfg := digestOf(emptyConfig); !written[cfg] {
		if err := lt.file(blobName(cfg), emptyConfig); err != nil {
			return nil, nil, 0, err
		}
		written[cfg] = true
		n++
	}
	if !written[layer] {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, nil, 0, err
		}
		h2 := sha256.New()
		if err := lt.stream(blobName(layer), size, io.TeeReader(f, h2), true); err != nil {
			return nil, nil, 0, fmt.Errorf("vulnerability database %s: %w", src.Zip, err)
		}
		if "sha256:"+hex.EncodeToString(h2.Sum(nil)) != layer {
			return nil, nil, 0, fmt.Errorf("vulnerability database %s: the file changed while the bundle was written", src.Zip)
		}
		written[layer] = true
		n++
	}
	md := digestOf(data)
	if !written[md] {
		if err := lt.file(blobName(md), data); err != nil {
			return nil, nil, 0, err
		}
		written[md] = true
		n++
	}
	entry := map[string]any{"mediaType": m.MediaType, "artifactType": VulnDBArtifactType, "digest": md, "size": len(data),
		"annotations": map[string]string{"org.opencontainers.image.ref.name": VulnDBRefName, AnnotationVulnDBRevision: src.Revision}}
	return &VulnDB{Manifest: md, Layer: layer, Size: size, Revision: src.Revision, Newest: src.Newest.UTC(), Records: src.Records}, entry, n, nil
}

func blobName(digest string) string { return "blobs/sha256/" + strings.TrimPrefix(digest, "sha256:") }

// checkVulnDB checks the database artifact against the bundle manifest's entry: its
// manifest and layer are in the layout (their digests were checked as they were read),
// the manifest has the database's artifactType and names exactly that layer and revision.
func checkVulnDB(m *BundleManifest, v *Verified) error {
	d := m.VulnDB
	if d == nil {
		return nil
	}
	if v.VulnDBManifest == nil {
		return fmt.Errorf("vulnerability database: the layout does not hold its manifest %s", d.Manifest)
	}
	if size, ok := v.Blobs[d.Layer]; !ok || size != d.Size {
		return fmt.Errorf("vulnerability database: the layout does not hold its records %s of %d bytes", d.Layer, d.Size)
	}
	dec := json.NewDecoder(bytes.NewReader(v.VulnDBManifest))
	var am vulnDBManifest
	if err := dec.Decode(&am); err != nil {
		return fmt.Errorf("vulnerability database: manifest %s: %w", d.Manifest, err)
	}
	switch {
	case am.ArtifactType != VulnDBArtifactType:
		return fmt.Errorf("vulnerability database: manifest %s has artifactType %q, want %q", d.Manifest, am.ArtifactType, VulnDBArtifactType)
	case len(am.Layers) != 1 || am.Layers[0].Digest != d.Layer || am.Layers[0].Size != d.Size || am.Layers[0].MediaType != VulnDBLayerType:
		return fmt.Errorf("vulnerability database: manifest %s does not name the one layer %s (%s, %d bytes) the bundle manifest lists", d.Manifest, d.Layer, VulnDBLayerType, d.Size)
	case am.Annotations[AnnotationVulnDBRevision] != d.Revision:
		return fmt.Errorf("vulnerability database: manifest %s says revision %q, the bundle manifest %q", d.Manifest, am.Annotations[AnnotationVulnDBRevision], d.Revision)
	}
	return nil
}

// VulnDBResult is what an import did with the bundle's vulnerability database.
type VulnDBResult struct {
	// Revision, Newest and Records describe the carried database.
	Revision string    `json:"revision"`
	Newest   time.Time `json:"newest"`
	Records  int       `json:"records"`
	// Status is "imported", "unchanged" (that revision was already imported) or
	// "not imported" (no database directory was given).
	Status string `json:"status"`
	// Message says where it went, or why not.
	Message string `json:"message,omitempty"`
}

// VulnDBImporter imports the carried records (a zip archive at zip) as `portcullis db
// import` does. It returns the status ("imported" or "unchanged") and a message; an
// error refuses the bundle before anything else of it is imported.
type VulnDBImporter func(zip string, db *VulnDB) (status, message string, err error)

// importVulnDB hands the verified records to the importer.
func importVulnDB(work string, src layoutSource, v *Verified, imp VulnDBImporter) (*VulnDBResult, error) {
	d := v.Manifest.VulnDB
	if d == nil {
		return nil, nil
	}
	res := &VulnDBResult{Revision: d.Revision, Newest: d.Newest, Records: d.Records}
	if imp == nil {
		res.Status, res.Message = "not imported", "no vulnerability database directory was given"
		return res, nil
	}
	zip := work + "/vulndb-osv.zip"
	if err := copyFile(src, blobName(d.Layer), zip); err != nil {
		return nil, fmt.Errorf("vulnerability database: %w", err)
	}
	status, msg, err := imp(zip, d)
	if err != nil {
		return nil, err
	}
	if status == "" {
		return nil, errors.New("vulnerability database: the importer gave no status")
	}
	res.Status, res.Message = status, msg
	return res, nil
}
