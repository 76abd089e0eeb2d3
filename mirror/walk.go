package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/portcullis-dev/portcullis/verify"
)

// maxManifestBytes bounds a manifest read from a registry.
const maxManifestBytes = 4 << 20

// maxDepth bounds the nesting of indexes and referrers-of-referrers.
const maxDepth = 8

// cosignSuffixes are the tag suffixes cosign uses for what it attaches to sha256-<hex>.
var cosignSuffixes = []string{".sig", ".att", ".sbom"}

// object is one blob or manifest of the layout.
type object struct {
	digest    string
	size      int64
	mediaType string
	// manifest holds a manifest's bytes; nil for a blob.
	manifest []byte
	// from is the repository to fetch a blob from.
	from name.Repository
	// repos are the mapped names that need the object (for --have).
	repos map[string]bool
}

// walker fetches manifests and records every object under them.
type walker struct {
	ctx     context.Context
	opts    []remote.Option
	objects map[string]*object
	order   []string
	tags    map[string]map[string]bool // repository → its tags
	// verifiers check publisher signatures, one per source registry.
	verifiers map[string]*verify.Verifier
}

func newWalker(ctx context.Context, opts []remote.Option) *walker {
	return &walker{ctx: ctx, opts: append(opts, remote.WithContext(ctx)), objects: map[string]*object{}, tags: map[string]map[string]bool{}, verifiers: map[string]*verify.Verifier{}}
}

// listTags lists repo's tags once.
func (w *walker) listTags(repo name.Repository) (map[string]bool, error) {
	if t, ok := w.tags[repo.String()]; ok {
		return t, nil
	}
	list, err := remote.List(repo, w.opts...)
	if err != nil && !isNotFound(err) {
		return nil, fmt.Errorf("listing tags of %s: %w", repo, err)
	}
	set := make(map[string]bool, len(list))
	for _, t := range list {
		set[t] = true
	}
	w.tags[repo.String()] = set
	return set, nil
}

// get fetches a manifest by tag or digest and records it; a digest reference is checked
// against the bytes.
func (w *walker) get(ref name.Reference) (*remote.Descriptor, error) {
	d, err := remote.Get(ref, w.opts...)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", ref, err)
	}
	if len(d.Manifest) > maxManifestBytes {
		return nil, fmt.Errorf("fetching %s: manifest of %d bytes is larger than %d", ref, len(d.Manifest), maxManifestBytes)
	}
	sum, _, err := v1.SHA256(strings.NewReader(string(d.Manifest)))
	if err != nil {
		return nil, err
	}
	if sum != d.Digest {
		return nil, fmt.Errorf("fetching %s: registry says digest %s, bytes hash to %s", ref, d.Digest, sum)
	}
	if dg, ok := ref.(name.Digest); ok && dg.DigestStr() != sum.String() {
		return nil, fmt.Errorf("fetching %s: bytes hash to %s", ref, sum)
	}
	return d, nil
}

func (w *walker) record(o *object, mapped string) {
	if prev, ok := w.objects[o.digest]; ok {
		prev.repos[mapped] = true
		return
	}
	o.repos = map[string]bool{mapped: true}
	w.objects[o.digest] = o
	w.order = append(w.order, o.digest)
}

// Child is a manifest of an index carried in the bundle.
type Child struct {
	// Digest is the child manifest's digest.
	Digest string `json:"digest"`
	// Platform is os/arch[/variant], "" when the index gives none.
	Platform string `json:"platform,omitempty"`
}

// Referrer is a signature, attestation, SBOM or other artifact attached to a manifest.
type Referrer struct {
	// Digest is the referrer manifest's digest.
	Digest string `json:"digest"`
	// Subject is the digest of the manifest it refers to.
	Subject string `json:"subject"`
	// MediaType is the referrer manifest's media type.
	MediaType string `json:"mediaType"`
	// ArtifactType is its artifactType (OCI referrers), if any.
	ArtifactType string `json:"artifactType,omitempty"`
	// Tag is the cosign tag it is stored under (sha256-<hex>.sig, .att, .sbom), "" for
	// an OCI referrer found through the referrers API or its fallback tag.
	Tag string `json:"tag,omitempty"`
}

// tree is what walking one root manifest found.
type tree struct {
	mediaType string
	size      int64
	children  []Child
	referrers []Referrer
}

// walk records the manifest d of repo and everything under it: blobs, the children of an
// index that match platforms (all when empty), and, when withReferrers, the referrers of
// every manifest carried.
func (w *walker) walk(repo name.Repository, mapped string, d *remote.Descriptor, platforms []v1.Platform, withReferrers bool, t *tree, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%s@%s: nested deeper than %d levels", repo, d.Digest, maxDepth)
	}
	w.record(&object{digest: d.Digest.String(), size: int64(len(d.Manifest)), mediaType: string(d.MediaType), manifest: d.Manifest}, mapped)
	switch {
	case d.MediaType.IsIndex():
		var idx v1.IndexManifest
		if err := json.Unmarshal(d.Manifest, &idx); err != nil {
			return fmt.Errorf("%s@%s: parsing index: %w", repo, d.Digest, err)
		}
		carried := map[string]bool{}
		for _, c := range idx.Manifests {
			if !keepChild(c, platforms, carried) {
				continue
			}
			cd, err := w.get(repo.Digest(c.Digest.String()))
			if err != nil {
				return err
			}
			carried[c.Digest.String()] = true
			if depth == 0 && t != nil {
				t.children = append(t.children, Child{Digest: c.Digest.String(), Platform: platformString(c.Platform)})
			}
			if err := w.walk(repo, mapped, cd, platforms, withReferrers, t, depth+1); err != nil {
				return err
			}
		}
	case d.MediaType.IsImage() || d.MediaType == types.OCIManifestSchema1 || isArtifactManifest(d.MediaType):
		var m v1.Manifest
		if err := json.Unmarshal(d.Manifest, &m); err != nil {
			return fmt.Errorf("%s@%s: parsing manifest: %w", repo, d.Digest, err)
		}
		for _, b := range append([]v1.Descriptor{m.Config}, m.Layers...) {
			if b.Digest.Algorithm != "sha256" || b.Size < 0 {
				return fmt.Errorf("%s@%s: blob %s: want a sha256 digest and a size", repo, d.Digest, b.Digest)
			}
			w.record(&object{digest: b.Digest.String(), size: b.Size, mediaType: string(b.MediaType), from: repo}, mapped)
		}
	default:
		return fmt.Errorf("%s@%s: unsupported manifest media type %q", repo, d.Digest, d.MediaType)
	}
	if withReferrers {
		return w.referrers(repo, mapped, d.Digest, t, depth)
	}
	return nil
}

func isArtifactManifest(mt types.MediaType) bool {
	return mt == types.OCIManifestSchema1 || mt == types.DockerManifestSchema2
}

// keepChild says whether an index child is carried: platforms match, or it is a buildx
// attestation manifest of a carried child.
func keepChild(c v1.Descriptor, platforms []v1.Platform, carried map[string]bool) bool {
	if len(platforms) == 0 {
		return true
	}
	if ref := c.Annotations["vnd.docker.reference.digest"]; ref != "" {
		return carried[ref]
	}
	if c.Platform == nil {
		return false
	}
	for _, p := range platforms {
		if c.Platform.OS == p.OS && c.Platform.Architecture == p.Architecture && (p.Variant == "" || c.Platform.Variant == p.Variant) {
			return true
		}
	}
	return false
}

func platformString(p *v1.Platform) string {
	if p == nil {
		return ""
	}
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// referrers records cosign's tags for subject and its OCI referrers.
func (w *walker) referrers(repo name.Repository, mapped string, subject v1.Hash, t *tree, depth int) error {
	tags, err := w.listTags(repo)
	if err != nil {
		return err
	}
	for _, suffix := range cosignSuffixes {
		tag := subject.Algorithm + "-" + subject.Hex + suffix
		if !tags[tag] {
			continue
		}
		d, err := w.get(repo.Tag(tag))
		if err != nil {
			return err
		}
		if t != nil {
			t.referrers = append(t.referrers, Referrer{Digest: d.Digest.String(), Subject: subject.String(), MediaType: string(d.MediaType), Tag: tag})
		}
		if err := w.walk(repo, mapped, d, nil, true, t, depth+1); err != nil {
			return err
		}
	}
	idx, err := remote.Referrers(repo.Digest(subject.String()), w.opts...)
	if err != nil {
		if isNotFound(err) {
			return nil
		}
		return fmt.Errorf("listing referrers of %s@%s: %w", repo, subject, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return fmt.Errorf("listing referrers of %s@%s: %w", repo, subject, err)
	}
	for _, r := range im.Manifests {
		ref := Referrer{Digest: r.Digest.String(), Subject: subject.String(), ArtifactType: r.ArtifactType}
		if o, seen := w.objects[ref.Digest]; seen && o.repos[mapped] {
			if t != nil {
				ref.MediaType = o.mediaType
				t.referrers = append(t.referrers, ref)
			}
			continue // already carried for this repository (also ends a referrers loop)
		}
		d, err := w.get(repo.Digest(ref.Digest))
		if err != nil {
			return err
		}
		if t != nil {
			ref.MediaType = string(d.MediaType)
			t.referrers = append(t.referrers, ref)
		}
		if err := w.walk(repo, mapped, d, nil, true, t, depth+1); err != nil {
			return err
		}
	}
	return nil
}

func isNotFound(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && (te.StatusCode == http.StatusNotFound)
}
