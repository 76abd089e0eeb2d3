package mirror

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore/pkg/signature"
	"golang.org/x/sync/errgroup"
)

// Import verdicts of one image.
const (
	// VerdictAllow: the tag is published.
	VerdictAllow = "allow"
	// VerdictWarn: the tag is published; the gateway warned.
	VerdictWarn = "warn"
	// VerdictDeny: the gateway refused the image; it stays by digest only (quarantine).
	VerdictDeny = "deny"
	// VerdictDrift: the tag already points at another digest on-prem; nothing is moved.
	VerdictDrift = "drift"
	// VerdictError: the image could not be judged or published; run the import again.
	VerdictError = "error"
)

// ImportOptions are the settings of an import.
type ImportOptions struct {
	// Gateway is the gateway's host[:port]; every write goes through it.
	Gateway string
	// Insecure reaches the gateway over plain HTTP.
	Insecure bool
	// Journal is the JSON-lines journal file; default JournalPath(bundle dir).
	Journal string
	// WorkDir holds the verified layout while the import runs (default: os.TempDir()).
	WorkDir string
	// Keychain gives credentials for the gateway (default authn.DefaultKeychain).
	Keychain authn.Keychain
	// Transport reaches the gateway (default remote.DefaultTransport).
	Transport http.RoundTripper
	// Progress receives events; nil drops them.
	Progress Progress
	// VulnDB imports a carried vulnerability database before any image is pushed, so the
	// gateway judges the images against it; nil leaves it out (reported "not imported").
	VulnDB VulnDBImporter
}

// ImportReport is what an import did with each image of the bundle.
type ImportReport struct {
	// Bundle is the bundle directory.
	Bundle string `json:"bundle"`
	// Gateway is the gateway imported through.
	Gateway string `json:"gateway"`
	// Images has one entry per image of the bundle manifest, in its order.
	Images []ImportResult `json:"images"`
	// VulnDB is what became of the vulnerability database the bundle carries, if any.
	VulnDB *VulnDBResult `json:"vulnDB,omitempty"`
}

// ImportResult is the verdict on one image.
type ImportResult struct {
	// Name is the on-prem repository; Tag the tag ("" for an image carried by digest).
	Name string `json:"name"`
	Tag  string `json:"tag,omitempty"`
	// Digest is the pinned manifest digest.
	Digest string `json:"digest"`
	// Verdict is allow, warn, deny, drift or error.
	Verdict string `json:"verdict"`
	// Message is the gateway's refusal or warnings, or what went wrong.
	Message string `json:"message,omitempty"`
}

// Refused counts the images whose tag was not published.
func (r *ImportReport) Refused() int {
	n := 0
	for _, i := range r.Images {
		if i.Verdict != VerdictAllow && i.Verdict != VerdictWarn {
			n++
		}
	}
	return n
}

// JournalPath is the default journal of the bundle in dir: a file next to it.
func JournalPath(dir string) string {
	return strings.TrimRight(dir, string(os.PathSeparator)) + ".import-journal.jsonl"
}

// Import checks the bundle in dir (the signature, every chunk's SHA-256, and the layout:
// for a format 2 bundle its tar structure and every file's frame header, for format 1
// the whole layout, extracted into the work directory) and confirms through the gateway
// that every manifest the bundle manifest lists but a delta left out is on-prem, before
// it writes anything. Then it pushes through the gateway every blob of every repository
// (format 2: decompressed and hashed straight from the chunks, several at once; a blob
// whose bytes are not its digest stops the import before any manifest is pushed), then
// every manifest by digest (index children, referrers, images), which publishes no tag;
// then, per image of the bundle manifest, asks the gateway whether the image may be
// pulled and pushes its tag; the gateway's refusal of either keeps the image in
// quarantine (by digest only). Each finished step goes to the journal, so a second run
// skips it. An error means the import stopped; run it again to resume.
func Import(ctx context.Context, dir string, verifier signature.Verifier, o ImportOptions) (*ImportReport, error) {
	progress := o.Progress
	if progress == nil {
		progress = noProgress{}
	}
	if o.Keychain == nil {
		o.Keychain = authn.DefaultKeychain
	}
	if o.Transport == nil {
		o.Transport = remote.DefaultTransport
	}
	if o.Journal == "" {
		o.Journal = JournalPath(dir)
	}
	var nopts []name.Option
	if o.Insecure {
		nopts = append(nopts, name.Insecure)
	}
	reg, err := name.NewRegistry(o.Gateway, append(nopts, name.StrictValidation)...)
	if err != nil {
		return nil, fmt.Errorf("gateway %q: %w", o.Gateway, err)
	}
	work, err := os.MkdirTemp(o.WorkDir, "portcullis-import-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	v, src, closeSrc, err := openBundle(dir, work, verifier, verifyOnly{progress})
	if err != nil {
		return nil, fmt.Errorf("bundle %s refused, nothing imported: %w", dir, err)
	}
	defer closeSrc()
	plan, err := planImport(src, v)
	if err != nil {
		return nil, fmt.Errorf("bundle %s refused, nothing imported: %w", dir, err)
	}
	im := &importer{ctx: ctx, o: o, reg: reg, nopts: nopts, plan: plan, progress: progress, refused: map[string]string{}}
	if err := im.confirmOnPrem(v.Manifest); err != nil {
		return nil, fmt.Errorf("bundle %s refused, nothing imported: %w", dir, err)
	}
	dbResult, err := importVulnDB(work, src, v, o.VulnDB)
	if err != nil {
		return nil, fmt.Errorf("bundle %s refused, nothing imported: %w", dir, err)
	}
	if im.j, err = openJournal(o.Journal); err != nil {
		return nil, err
	}
	defer im.j.close()
	for _, rp := range plan.repos {
		for _, b := range rp.blobs {
			im.total += plan.sizes[b]
		}
	}
	progress.Event(Event{Time: time.Now(), Phase: "start", Item: dir, Total: im.total})
	// Every blob of every repository first: a blob whose bytes are not its digest (a chunk
	// changed after it was checked) stops the import before any manifest is pushed.
	if err := im.pushBlobs(plan.repos); err != nil {
		return nil, err
	}
	for _, rp := range plan.repos {
		if err := im.pushManifests(rp); err != nil {
			return nil, err
		}
	}
	rep := &ImportReport{Bundle: dir, Gateway: o.Gateway, VulnDB: dbResult}
	for _, img := range v.Manifest.Images {
		res, err := im.publish(img)
		if err != nil {
			return nil, err
		}
		rep.Images = append(rep.Images, res)
	}
	progress.Event(Event{Time: time.Now(), Phase: "done", Item: dir, Done: im.done, Total: im.total})
	return rep, nil
}

// importer is one run of Import.
type importer struct {
	ctx      context.Context
	o        ImportOptions
	reg      name.Registry
	nopts    []name.Option
	plan     *importPlan
	j        *journal
	progress Progress
	// refused maps repository@digest to the gateway's refusal of a manifest push.
	refused map[string]string
	// mu guards done and the progress events of concurrent blob pushes.
	mu          sync.Mutex
	done, total int64
}

func (im *importer) remote() []remote.Option {
	return []remote.Option{remote.WithContext(im.ctx), remote.WithAuthFromKeychain(im.o.Keychain), remote.WithTransport(im.o.Transport), remote.WithUserAgent("portcullis-mirror-import")}
}

func (im *importer) repo(n string) (name.Repository, error) {
	return name.NewRepository(im.reg.Name()+"/"+n, append(im.nopts, name.StrictValidation)...)
}

func (im *importer) entry(step, repo, digest, tag string) JournalEntry {
	return JournalEntry{Gateway: im.reg.Name(), Step: step, Repository: repo, Digest: digest, Tag: tag}
}

// pushManifests pushes one repository's manifests by digest, then its referrer tags.
func (im *importer) pushManifests(rp *repoPlan) error {
	repo, err := im.repo(rp.name)
	if err != nil {
		return err
	}
	for _, m := range rp.manifests {
		if err := im.pushManifest(repo, rp.name, m.digest, m.mediaType, ""); err != nil {
			return err
		}
	}
	for _, t := range rp.refTags {
		if err := im.pushManifest(repo, rp.name, t.digest, "", t.tag); err != nil {
			return err
		}
	}
	return nil
}

// blobPushes is how many blobs are pushed at once (crane pushes 4, skopeo 6): while one
// upload waits for the registry to store and hash what it got, others stream.
const blobPushes = 4

// pushBlobs pushes every repository's blobs, blobPushes at a time; each is journalled
// once the registry has it. The first failure stops the others.
func (im *importer) pushBlobs(repos []*repoPlan) error {
	g, ctx := errgroup.WithContext(im.ctx)
	g.SetLimit(blobPushes)
	for _, rp := range repos {
		repo, err := im.repo(rp.name)
		if err != nil {
			return err
		}
		for _, b := range rp.blobs {
			if ctx.Err() != nil {
				break
			}
			g.Go(func() error { return im.pushBlob(ctx, repo, rp.name, b) })
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return im.ctx.Err()
}

// pushBlob pushes one blob of the layout unless the journal has it.
func (im *importer) pushBlob(ctx context.Context, repo name.Repository, repoName, b string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	size := im.plan.sizes[b]
	e := im.entry("blob", repoName, b, "")
	if !im.j.has(e) {
		h, _ := v1.NewHash(b)
		layer := &sourceLayer{src: im.plan.src, name: blobName(b), hash: h, size: size}
		if bp, ok := im.progress.(ByteProgress); ok {
			layer.count = bp.Fetching(b, size)
		}
		err := remote.WriteLayer(repo, layer, append(im.remote(), remote.WithContext(ctx))...)
		if layer.count != nil {
			layer.count(-1)
		}
		if err != nil {
			return fmt.Errorf("pushing blob %s to %s: %w", b, repoName, err)
		}
		if err := im.j.record(e); err != nil {
			return err
		}
	}
	im.mu.Lock()
	defer im.mu.Unlock()
	im.done += size
	im.progress.Event(Event{Time: time.Now(), Phase: "blob", Item: repoName + "@" + b, Bytes: size, Done: im.done, Total: im.total})
	return nil
}

// pushManifest pushes the manifest digest to repo by digest (tag "") or as tag. A
// refusal by the gateway is kept in im.refused; other failures stop the import.
func (im *importer) pushManifest(repo name.Repository, repoName, digest, mediaType, tag string) error {
	if err := im.ctx.Err(); err != nil {
		return err
	}
	step := "manifest"
	if tag != "" {
		step = "tag"
	}
	e := im.entry(step, repoName, digest, tag)
	if im.j.has(e) {
		return nil
	}
	var ref name.Reference = repo.Digest(digest)
	if tag != "" {
		ref = repo.Tag(tag)
	}
	if d, err := remote.Head(ref, im.remote()...); err == nil && d.Digest.String() == digest {
		return im.j.record(e) // already there
	} else if err == nil && tag != "" {
		im.refused[repoName+"@"+digest] = fmt.Sprintf("tag %s already points at %s on-prem", tag, d.Digest)
		return nil
	}
	data, err := im.manifestBytes(repoName, digest)
	if err != nil {
		return err
	}
	if mediaType == "" {
		var m manifestShape
		_ = jsonUnmarshal(data, &m)
		mediaType = m.MediaType
	}
	h, _ := v1.NewHash(digest)
	desc := &remote.Descriptor{Manifest: data, Descriptor: v1.Descriptor{MediaType: types.MediaType(mediaType), Digest: h, Size: int64(len(data))}}
	if err := remote.Put(ref, desc, im.remote()...); err != nil {
		if msg, ok := refusal(err); ok {
			im.refused[repoName+"@"+digest] = msg + im.partialIndexHint(msg, data)
			return nil
		}
		return fmt.Errorf("pushing manifest %s to %s: %w", ref, repoName, err)
	}
	if err := im.j.record(e); err != nil {
		return err
	}
	im.progress.Event(Event{Time: time.Now(), Phase: step, Item: ref.String(), Bytes: int64(len(data)), Done: im.done, Total: im.total})
	return nil
}

// publish judges one image of the bundle manifest and publishes its tag if allowed.
func (im *importer) publish(img Image) (ImportResult, error) {
	res := ImportResult{Name: img.Name, Tag: img.Tag, Digest: img.Digest}
	if err := im.ctx.Err(); err != nil {
		return res, err
	}
	repo, err := im.repo(img.Name)
	if err != nil {
		return res, err
	}
	for _, d := range append([]string{img.Digest}, childDigests(img)...) {
		if msg, ok := im.refused[img.Name+"@"+d]; ok {
			res.Verdict, res.Message = VerdictDeny, "the gateway refused the push of "+d+" (nothing of the image is published): "+msg
			return res, nil
		}
	}
	// A tag's current target may itself be refused on pull (403): then whether it
	// exists is unknown here, and the gateway's immutable rule decides the push.
	tagMayExist := false
	if img.Tag != "" {
		d, err := remote.Head(repo.Tag(img.Tag), im.remote()...)
		switch {
		case err == nil && d.Digest.String() != img.Digest:
			res.Verdict = VerdictDrift
			res.Message = fmt.Sprintf("tag %s:%s already points at %s on-prem, the bundle carries %s: the tag is not moved; the bundle's image stays by digest only", img.Name, img.Tag, d.Digest, img.Digest)
			return res, nil
		case err == nil:
			res.Verdict, res.Message = VerdictAllow, "already published"
			return res, im.j.record(im.entry("tag", img.Name, img.Digest, img.Tag))
		case !isNotFound(err):
			tagMayExist = true
		}
	}
	dec, err := im.decide(repo, img.Digest)
	if err != nil {
		res.Verdict, res.Message = VerdictError, err.Error()
		return res, nil
	}
	if dec.Verdict == VerdictDeny {
		res.Verdict, res.Message = VerdictDeny, dec.Message
		return res, nil
	}
	res.Verdict, res.Message = dec.Verdict, strings.Join(dec.Warnings, "; ")
	if img.Tag == "" {
		return res, nil
	}
	if err := im.pushManifest(repo, img.Name, img.Digest, img.MediaType, img.Tag); err != nil {
		return res, err
	}
	if msg, ok := im.refused[img.Name+"@"+img.Digest]; ok {
		res.Verdict, res.Message = VerdictDeny, msg
		if tagMayExist {
			res.Verdict = VerdictDrift
		}
	}
	return res, nil
}

func childDigests(img Image) []string {
	var out []string
	for _, c := range img.Children {
		out = append(out, c.Digest)
	}
	return out
}

// refusal extracts the gateway's message from a refused push (403 DENIED, or another
// 4xx that names why the manifest is not accepted).
func refusal(err error) (string, bool) {
	var te *transport.Error
	if !errors.As(err, &te) || te.StatusCode < 400 || te.StatusCode >= 500 || te.StatusCode == http.StatusUnauthorized {
		return "", false
	}
	var msgs []string
	for _, d := range te.Errors {
		msgs = append(msgs, string(d.Code)+": "+d.Message)
	}
	if len(msgs) == 0 {
		return te.Error(), true
	}
	return strings.Join(msgs, "; "), true
}

// verifyOnly passes verification events on, renaming Extract's "done" (the import is not).
type verifyOnly struct{ p Progress }

func (v verifyOnly) Event(e Event) {
	if e.Phase == "done" {
		e.Phase = "verify"
	}
	v.p.Event(e)
}
