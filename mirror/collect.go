package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore/pkg/signature"
)

// DefaultChunkSize is the chunk size when none is given: 512 MiB.
const DefaultChunkSize = 512 << 20

// WriteOptions tune Write.
type WriteOptions struct {
	// ChunkSize is the largest chunk in bytes; 0 means DefaultChunkSize.
	ChunkSize int64
	// Have leaves out what an on-prem registry already holds.
	Have *Inventory
	// Progress receives events; nil drops them.
	Progress Progress
	// Now is the creation time written; zero means time.Now.
	Now time.Time
	// Remote reaches the source registries.
	Remote []remote.Option
	// VulnDB, when set, is carried as an OCI artifact and listed in the bundle manifest.
	VulnDB *VulnDBSource
	// LeaveOutUnverified writes the bundle without the plan's images that failed
	// publisher verification, listing them in the bundle manifest's leftOut. Without it,
	// Write refuses such a plan with an *UnverifiedError and writes nothing.
	LeaveOutUnverified bool
}

// Write fetches every blob of the plan and writes the bundle into dir (created; it must
// not exist or be empty): the OCI layout as a zstd-compressed tar split into chunks, the
// bundle manifest, and its signature by signer.
//
// A plan holding images that failed publisher verification is refused unless
// o.LeaveOutUnverified (they are not in the plan either way).
func Write(ctx context.Context, p *Plan, dir string, signer signature.Signer, o WriteOptions) (*BundleManifest, error) {
	if len(p.Unverified) > 0 && !o.LeaveOutUnverified {
		return nil, &UnverifiedError{Images: p.Unverified}
	}
	if o.ChunkSize <= 0 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.Progress == nil {
		o.Progress = noProgress{}
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if err := emptyDir(dir); err != nil {
		return nil, err
	}
	var carry []*object
	var total int64
	omitted := 0
	for _, d := range p.order {
		obj := p.objects[d]
		if needed(obj, o.Have) {
			carry = append(carry, obj)
			total += obj.size
		} else {
			omitted++
		}
	}
	cw := &chunkWriter{dir: dir, size: o.ChunkSize}
	lt, err := newLayoutTar(cw)
	if err != nil {
		return nil, err
	}
	if err := lt.file("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return nil, err
	}
	var done int64
	opts := append(append([]remote.Option(nil), o.Remote...), remote.WithContext(ctx))
	o.Progress.Event(Event{Time: time.Now(), Phase: "start", Item: dir, Total: total})
	bp, _ := o.Progress.(ByteProgress)
	for _, obj := range carry {
		if err := writeObject(lt, obj, opts, bp); err != nil {
			return nil, err
		}
		done += obj.size
		phase := "blob"
		if obj.manifest != nil {
			phase = "manifest"
		}
		o.Progress.Event(Event{Time: time.Now(), Phase: phase, Item: obj.digest, Bytes: obj.size, Done: done, Total: total})
	}
	var vdb *VulnDB
	var extra []any
	objects := len(carry)
	if o.VulnDB != nil {
		written := map[string]bool{}
		for _, obj := range carry {
			written[obj.digest] = true
		}
		d, entry, n, err := writeVulnDB(lt, o.VulnDB, written, o.Now)
		if err != nil {
			return nil, err
		}
		vdb, extra, objects = d, []any{entry}, objects+n
	}
	index, err := layoutIndex(p, carry, extra...)
	if err != nil {
		return nil, err
	}
	if err := lt.file("index.json", index); err != nil {
		return nil, err
	}
	if err := lt.close(); err != nil {
		return nil, fmt.Errorf("writing chunks: %w", err)
	}
	if err := cw.finish(); err != nil {
		return nil, fmt.Errorf("writing chunks: %w", err)
	}
	for _, c := range cw.chunks {
		o.Progress.Event(Event{Time: time.Now(), Phase: "chunk", Item: c.Name, Bytes: c.Size, Done: done, Total: total})
	}
	m := &BundleManifest{FormatVersion: FormatVersion, Created: o.Now.UTC().Truncate(time.Second), Compression: "zstd",
		LayoutSize: lt.fw.n, Objects: objects, Images: p.Images, Chunks: cw.chunks, Entries: lt.fw.entries, VulnDB: vdb, LeftOut: p.Unverified}
	if o.Have != nil {
		m.Delta = &Delta{Registry: o.Have.Registry, InventoryCreated: o.Have.Created, Omitted: omitted}
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	data = append(data, '\n')
	sig, err := signBlob(signer, data)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestFile), data, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, SignatureFile), sig, 0o644); err != nil {
		return nil, err
	}
	o.Progress.Event(Event{Time: time.Now(), Phase: "done", Item: dir, Done: done, Total: total})
	return m, nil
}

// needed says whether obj must be carried: some repository that needs it lacks it.
func needed(obj *object, have *Inventory) bool {
	if have == nil {
		return true
	}
	for r := range obj.repos {
		if !have.Has(r, obj.digest) {
			return true
		}
	}
	return false
}

// emptyDir creates dir, or accepts it if it exists and is empty.
func emptyDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("bundle directory %s is not empty", dir)
	}
	return nil
}

// writeObject writes a manifest from memory, or streams a blob from its source
// registry (go-containerregistry checks its digest while it is read), into the layout.
// A blob whose media type says it is compressed is stored as it is.
func writeObject(lt *layoutTar, obj *object, opts []remote.Option, bp ByteProgress) error {
	path := blobName(obj.digest)
	if obj.manifest != nil {
		return lt.file(path, obj.manifest)
	}
	l, err := remote.Layer(obj.from.Digest(obj.digest), opts...)
	if err != nil {
		return fmt.Errorf("fetching blob %s@%s: %w", obj.from, obj.digest, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return fmt.Errorf("fetching blob %s@%s: %w", obj.from, obj.digest, err)
	}
	defer rc.Close()
	ahead := newPrefetch(rc)
	defer ahead.Close()
	var src io.Reader = ahead
	if bp != nil {
		fn := bp.Fetching(obj.digest, obj.size)
		defer fn(-1)
		src = countingReader{r: ahead, fn: fn}
	}
	switch err := lt.stream(path, obj.size, src, stored(obj.mediaType)); {
	case errors.Is(err, errSize):
		return fmt.Errorf("fetching blob %s@%s: got more or fewer bytes than the manifest's size %d", obj.from, obj.digest, obj.size)
	case err != nil:
		return fmt.Errorf("fetching blob %s@%s: %w", obj.from, obj.digest, err)
	}
	// Reading to the end lets go-containerregistry check the digest.
	if _, err := io.Copy(io.Discard, ahead); err != nil {
		return fmt.Errorf("fetching blob %s@%s: %w", obj.from, obj.digest, err)
	}
	return rc.Close()
}

// layoutIndex is the layout's index.json: every carried image and referrer manifest,
// annotated with its on-prem name and tag, then the extra entries.
func layoutIndex(p *Plan, carried []*object, extra ...any) ([]byte, error) {
	in := map[string]bool{}
	for _, o := range carried {
		in[o.digest] = true
	}
	type desc struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int64             `json:"size"`
		Annotations map[string]string `json:"annotations,omitempty"`
	}
	manifests := []any{}
	listed := map[string]bool{}
	add := func(digest, repo, tag string) {
		o := p.objects[digest]
		key := digest + " " + repo + " " + tag
		if o == nil || !in[digest] || listed[key] {
			return
		}
		listed[key] = true
		a := map[string]string{AnnotationName: repo}
		if tag != "" {
			a["org.opencontainers.image.ref.name"] = tag
		}
		manifests = append(manifests, desc{MediaType: o.mediaType, Digest: digest, Size: o.size, Annotations: a})
	}
	for _, img := range p.Images {
		add(img.Digest, img.Name, img.Tag)
		for _, r := range img.Referrers {
			add(r.Digest, img.Name, r.Tag)
		}
	}
	manifests = append(manifests, extra...)
	return json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests})
}

// AnnotationName is the index.json annotation carrying an entry's on-prem repository.
const AnnotationName = "dev.portcullis.mirror.name"
