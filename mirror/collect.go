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

// DefaultChunkSize is the chunk size when none is given: 128 MiB, so that the check of
// a bundle of a few hundred MiB already hashes chunks on several cores at once.
const DefaultChunkSize = 128 << 20

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
	// Sync fsyncs every chunk, the bundle manifest, its signature and the directory
	// before Write returns, so that the bundle survives a crash of this machine. Without
	// it a crash may lose what the disk has not been told to keep yet: a bundle torn by
	// a crash is still never imported (its chunk hashes and signature are checked
	// first), but it must be collected again.
	Sync bool
	// Buffered writes the chunks through the page cache. By default they are written with
	// O_DIRECT where the file system takes it, straight from the writer's buffers to the
	// disk; on a network file system, where each direct write waits for the server, this
	// may be faster.
	Buffered bool
}

// Write fetches every blob of the plan and writes the bundle into dir (created; it must
// not exist or be empty): the OCI layout as a zstd-compressed tar split into chunks, the
// bundle manifest, and its signature by signer.
//
// A plan holding images that failed publisher verification is refused unless
// o.LeaveOutUnverified (they are not in the plan either way).
func Write(ctx context.Context, p *Plan, dir string, signer signature.Signer, o WriteOptions) (_ *BundleManifest, err error) {
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
	created, err := emptyDir(dir)
	if err != nil {
		return nil, err
	}
	// A failed collect removes what it wrote (no collect resumes a partial bundle), and
	// the directory if it made it, so that the same command can simply run again.
	cw := &chunkWriter{dir: dir, size: o.ChunkSize, sync: o.Sync, buffered: o.Buffered}
	defer func() {
		if err != nil {
			cw.abort()
			removeWritten(dir, created)
		}
	}()
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
	fe := startFetcher(carry, opts)
	defer fe.close()
	for _, obj := range carry {
		if err := writeObject(lt, obj, fe, bp); err != nil {
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
	if err := writeFile(filepath.Join(dir, ManifestFile), data, o.Sync); err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(dir, SignatureFile), sig, o.Sync); err != nil {
		return nil, err
	}
	if o.Sync {
		if err := syncDir(dir); err != nil {
			return nil, err
		}
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

// writeFile writes a new file, fsyncing it when sync.
func writeFile(path string, data []byte, sync bool) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir fsyncs a directory, making the names of the files created in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// emptyDir creates dir, or accepts it if it exists and is empty; created says it made it.
func emptyDir(dir string) (created bool, err error) {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		created = true
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, err
	}
	if len(entries) > 0 {
		return false, fmt.Errorf("bundle directory %s is not empty", dir)
	}
	return created, nil
}

// removeWritten removes the files a failed Write left in dir (it was empty when Write
// began), and dir itself if Write created it.
func removeWritten(dir string, created bool) {
	if created {
		_ = os.RemoveAll(dir)
		return
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		_ = os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}

// writeObject writes a manifest from memory, or a blob as the fetcher reads it from its
// source registry (go-containerregistry checks its digest while it is read), into the
// layout. A blob whose media type says it is compressed is stored as it is.
func writeObject(lt *layoutTar, obj *object, fe *fetcher, bp ByteProgress) error {
	path := blobName(obj.digest)
	if obj.manifest != nil {
		return lt.file(path, obj.manifest)
	}
	fail := func(err error) error {
		if errors.Is(err, errSize) {
			return fmt.Errorf("fetching blob %s@%s: got more or fewer bytes than the manifest's size %d", obj.from, obj.digest, obj.size)
		}
		return fmt.Errorf("fetching blob %s@%s: %w", obj.from, obj.digest, err)
	}
	if err := lt.begin(path, obj.size, stored(obj.mediaType)); err != nil {
		return fail(err)
	}
	count := func(int64) {}
	if bp != nil {
		count = bp.Fetching(obj.digest, obj.size)
		defer count(-1)
	}
	for {
		item, ok := <-fe.items
		switch {
		case !ok:
			return fail(errors.New("the fetcher stopped"))
		case item.b == nil && item.err != nil:
			return fail(item.err)
		case item.b == nil:
			if err := lt.end(); err != nil {
				return fail(err)
			}
			return nil
		}
		err := lt.write(item.b)
		count(int64(len(item.b)))
		fe.free <- item.b[:cap(item.b)]
		if err != nil {
			return fail(err)
		}
	}
}

// fetcher reads the blobs of a collect in order, up to fetchBuffers buffers ahead of the
// writer and across blob boundaries: while the writer frames, hashes and writes one
// buffer, the next is read and its blob's digest computed, on another core. Memory stays
// at fetchBuffers × fetchSize whatever the blobs' sizes.
type fetcher struct {
	// items are each blob's buffers in order, then an item without bytes closing the
	// blob, with the error that ended it if any.
	items chan fetched
	free  chan []byte
	stop  chan struct{}
	done  chan struct{}
}

type fetched struct {
	b   []byte
	err error
}

const (
	fetchBuffers = 4
	fetchSize    = 1 << 20
)

// errStopped ends a fetch the writer no longer waits for.
var errStopped = errors.New("collect stopped")

func startFetcher(carry []*object, opts []remote.Option) *fetcher {
	fe := &fetcher{items: make(chan fetched, fetchBuffers), free: make(chan []byte, fetchBuffers), stop: make(chan struct{}), done: make(chan struct{})}
	for range fetchBuffers {
		fe.free <- make([]byte, fetchSize)
	}
	go func() {
		defer close(fe.done)
		defer close(fe.items)
		for _, obj := range carry {
			if obj.manifest != nil {
				continue
			}
			err := fe.fetch(obj, opts)
			if errors.Is(err, errStopped) || !fe.send(fetched{err: err}) || err != nil {
				return
			}
		}
	}()
	return fe
}

// fetch reads one blob into buffers for the writer.
func (fe *fetcher) fetch(obj *object, opts []remote.Option) error {
	l, err := remote.Layer(obj.from.Digest(obj.digest), opts...)
	if err != nil {
		return err
	}
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	r := io.LimitReader(rc, obj.size+1)
	var n int64
	for {
		var b []byte
		select {
		case b = <-fe.free:
		case <-fe.stop:
			return errStopped
		}
		k, err := io.ReadFull(r, b)
		n += int64(k)
		if n > obj.size {
			return errSize
		}
		if k == 0 {
			fe.free <- b
		} else if !fe.send(fetched{b: b[:k]}) {
			return errStopped
		}
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			if n != obj.size {
				return errSize
			}
			return nil
		case err != nil:
			return err
		}
	}
}

// send hands an item to the writer, false when the writer stopped.
func (fe *fetcher) send(it fetched) bool {
	select {
	case fe.items <- it:
		return true
	case <-fe.stop:
		return false
	}
}

// close stops the fetcher and waits for it.
func (fe *fetcher) close() {
	close(fe.stop)
	<-fe.done
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
