package mirror

import (
	"context"
	"fmt"
	"regexp"
	"sort"

	"github.com/Masterminds/semver/v3"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Image is one image a bundle carries: a tag (or a digest) pinned to a digest.
type Image struct {
	// Source is the image's repository in its source registry, e.g. docker.io/library/nginx.
	Source string `json:"source"`
	// Name is the on-prem repository it maps onto.
	Name string `json:"name"`
	// Tag is the tag to publish, "" for an image named by digest.
	Tag string `json:"tag,omitempty"`
	// Digest is the pinned manifest digest.
	Digest string `json:"digest"`
	// MediaType is the manifest's media type.
	MediaType string `json:"mediaType"`
	// Platforms are the platforms carried (of the index's children); empty for a
	// single-platform manifest or when all were asked for and none are declared.
	Platforms []string `json:"platforms,omitempty"`
	// AllPlatforms is true when every child of an index is carried.
	AllPlatforms bool `json:"allPlatforms"`
	// Children are the children of an index that are carried; the index bytes are
	// untouched, so a filtered index names children the bundle does not hold.
	Children []Child `json:"children,omitempty"`
	// Referrers are the signatures, attestations and SBOMs carried with it.
	Referrers []Referrer `json:"referrers,omitempty"`
	// Size is the bytes of the manifests and blobs first carried for it: one shared with
	// an earlier image counts there, so the sizes add up to the bundle's content.
	Size int64 `json:"size"`
	// Publisher is the publisher signature collect verified, when its repository has
	// publisher authorities; nil when it has none.
	Publisher *Publisher `json:"publisher,omitempty"`
}

// Plan is what a collect will carry: images pinned to digests and every object under them.
type Plan struct {
	// Images are the pinned images, in mirror file order.
	Images []Image
	// Unverified are the pinned images that failed publisher verification, in mirror
	// file order. Nothing under them is in the plan; Write refuses a plan with any unless
	// told to leave them out.
	Unverified []Unverified
	objects    map[string]*object
	order      []string
}

// Objects counts the plan's blobs and manifests and their total size.
func (p *Plan) Objects() (n int, size int64) {
	for _, o := range p.objects {
		n++
		size += o.size
	}
	return n, size
}

// Resolve lists the tags each repository needs, pins every selected tag to a digest once,
// verifies its publisher signature where the repository has publisher authorities, and
// fetches every manifest under each image that passed (no blobs). An image that failed is
// listed in Plan.Unverified; an error means a registry could not be read. opts reach the
// source registries (authentication, transport).
func Resolve(ctx context.Context, f *File, opts ...remote.Option) (*Plan, error) {
	w := newWalker(ctx, opts)
	p := &Plan{}
	for _, s := range f.Sources {
		for _, r := range s.Repositories {
			if err := resolveRepository(w, f, s, r, p); err != nil {
				return nil, err
			}
		}
	}
	p.objects, p.order = w.objects, w.order
	return p, nil
}

func resolveRepository(w *walker, f *File, s Source, r Repository, p *Plan) error {
	repo, err := SourceRepository(s, r)
	if err != nil {
		return err
	}
	mapped := f.MappedName(s, r)
	var platforms []v1.Platform
	for _, ps := range platformsOf(s, r) {
		pl, err := parsePlatform(ps)
		if err != nil {
			return err
		}
		platforms = append(platforms, pl)
	}
	tags, err := selectTags(w, repo.String(), r, func() (map[string]bool, error) { return w.listTags(repo) })
	if err != nil {
		return err
	}
	refs := make([]string, 0, len(tags)+len(r.Digests))
	for _, t := range tags {
		refs = append(refs, ":"+t)
	}
	for _, d := range r.Digests {
		refs = append(refs, "@"+d)
	}
	for _, ref := range refs {
		var desc *remote.Descriptor
		img := Image{Source: repo.String(), Name: mapped, AllPlatforms: len(platforms) == 0}
		if ref[0] == ':' {
			img.Tag = ref[1:]
			desc, err = w.get(repo.Tag(img.Tag))
		} else {
			desc, err = w.get(repo.Digest(ref[1:]))
		}
		if err != nil {
			return err
		}
		img.Digest, img.MediaType = desc.Digest.String(), string(desc.MediaType)
		if auths := PublisherAuthorities(s, r); len(auths) > 0 {
			pub, unverified, err := w.checkPublisher(repo, img, auths)
			if err != nil {
				return err
			}
			if unverified != nil {
				p.Unverified = append(p.Unverified, *unverified)
				continue
			}
			img.Publisher = pub
		}
		before := len(w.order)
		t := &tree{}
		if err := w.walk(repo, mapped, desc, platforms, referrersOn(s, r), t, 0); err != nil {
			return err
		}
		img.Children, img.Referrers = t.children, t.referrers
		for _, c := range t.children {
			if c.Platform != "" {
				img.Platforms = append(img.Platforms, c.Platform)
			}
		}
		if desc.MediaType.IsIndex() && len(platforms) > 0 && len(t.children) == 0 {
			return fmt.Errorf("%s%s: no child of the index matches platforms %v", repo, ref, platformsOf(s, r))
		}
		for _, d := range w.order[before:] {
			img.Size += w.objects[d].size
		}
		p.Images = append(p.Images, img)
	}
	return nil
}

// selectTags returns r's explicit tags and those of list that tagRegex or semver select,
// sorted, each once. Explicit tags must exist.
func selectTags(w *walker, repo string, r Repository, list func() (map[string]bool, error)) ([]string, error) {
	set := map[string]bool{}
	for _, t := range r.Tags {
		set[t] = true
	}
	if len(r.TagRegex) > 0 || r.Semver != "" {
		all, err := list()
		if err != nil {
			return nil, err
		}
		var res []*regexp.Regexp
		for _, x := range r.TagRegex {
			res = append(res, regexp.MustCompile(x))
		}
		var c *semver.Constraints
		if r.Semver != "" {
			if c, err = semver.NewConstraint(r.Semver); err != nil {
				return nil, fmt.Errorf("%s: semver: %w", repo, err)
			}
		}
		for t := range all {
			if isCosignTag(t) || !tagPattern.MatchString(t) {
				continue // attached artifacts travel as referrers; a registry's invalid names never travel
			}
			for _, re := range res {
				if re.MatchString(t) {
					set[t] = true
				}
			}
			if c != nil {
				if v, err := semver.NewVersion(t); err == nil && c.Check(v) {
					set[t] = true
				}
			}
		}
	}
	out := make([]string, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	sort.Strings(out)
	return out, nil
}

// isCosignTag says whether t is a tag cosign or the referrers fallback attaches to a
// digest (sha256-<hex>[.sig|.att|.sbom]); selectors never pick those as images.
func isCosignTag(t string) bool {
	return regexp.MustCompile(`^sha256-[a-f0-9]{64}(\.[a-z]+)?$`).MatchString(t)
}

// Carried counts the objects and bytes a bundle written with have (nil: everything) would
// carry.
func (p *Plan) Carried(have *Inventory) (n int, size int64) {
	for _, o := range p.objects {
		if needed(o, have) {
			n++
			size += o.size
		}
	}
	return n, size
}
