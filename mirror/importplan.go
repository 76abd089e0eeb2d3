package mirror

import (
	"encoding/json"
	"fmt"
	"regexp"
)

// nameAnnotation names the on-prem repository of an index.json entry.
const nameAnnotation = "dev.portcullis.mirror.name"

// refNameAnnotation is the OCI tag annotation of an index.json entry.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// cosignTag is a tag cosign or the referrers fallback attaches to a digest.
var cosignTag = regexp.MustCompile(`^sha256-[a-f0-9]{64}(\.(sig|att|sbom))?$`)

// repoPlan is what one on-prem repository receives, in push order.
type repoPlan struct {
	name string
	// blobs are the config and layer blobs the layout holds for this repository.
	blobs []string
	// manifests are pushed by digest in this order: index children, referrers, then
	// the images and indexes the bundle names.
	manifests []layoutManifest
	// refTags are the cosign tags of the referrers (a .sig must be found by its tag).
	refTags []refTag
	seen    map[string]bool
}

type layoutManifest struct {
	digest    string
	mediaType string
}

type refTag struct {
	tag, digest string
}

// importPlan is a verified layout sorted by repository.
type importPlan struct {
	src   layoutSource
	repos []*repoPlan
	sizes map[string]int64
}

// descriptor is the part of an OCI descriptor the import reads.
type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// manifestShape is the part of an image manifest or index the import walks.
type manifestShape struct {
	MediaType string       `json:"mediaType"`
	Manifests []descriptor `json:"manifests"`
	Config    *descriptor  `json:"config"`
	Layers    []descriptor `json:"layers"`
}

// planImport reads the verified layout in dir: every index.json entry is a root in the
// repository its name annotation names; referrers (listed as such by the bundle manifest,
// or carrying a cosign tag) are pushed before the images.
func planImport(src layoutSource, v *Verified) (*importPlan, error) {
	var idx struct {
		Manifests []descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(v.Index, &idx); err != nil {
		return nil, fmt.Errorf("layout: index.json: %w", err)
	}
	referrer := map[string]bool{}
	for _, img := range v.Manifest.Images {
		for _, r := range img.Referrers {
			referrer[r.Digest] = true
		}
	}
	p := &importPlan{src: src, sizes: v.Blobs}
	byName := map[string]*repoPlan{}
	roots := map[string][]descriptor{}
	refs := map[string][]descriptor{}
	for i, d := range idx.Manifests {
		if db := v.Manifest.VulnDB; db != nil && d.Digest == db.Manifest {
			continue // the vulnerability database: imported into the database directory, not pushed
		}
		name := d.Annotations[nameAnnotation]
		if !pathPattern.MatchString(name) {
			return nil, fmt.Errorf("layout: index.json manifests[%d]: invalid or missing %s %q", i, nameAnnotation, name)
		}
		if !digestPattern.MatchString(d.Digest) {
			return nil, fmt.Errorf("layout: index.json manifests[%d]: invalid digest %q", i, d.Digest)
		}
		tag := d.Annotations[refNameAnnotation]
		if tag != "" && !tagPattern.MatchString(tag) {
			return nil, fmt.Errorf("layout: index.json manifests[%d]: invalid tag %q", i, tag)
		}
		if byName[name] == nil {
			rp := &repoPlan{name: name, seen: map[string]bool{}}
			byName[name] = rp
			p.repos = append(p.repos, rp)
		}
		if referrer[d.Digest] || cosignTag.MatchString(tag) {
			refs[name] = append(refs[name], d)
		} else {
			roots[name] = append(roots[name], d)
		}
	}
	for _, rp := range p.repos {
		// Children of the images first, then the referrers (whole), then the images.
		for _, d := range roots[rp.name] {
			if err := p.walk(rp, d, false); err != nil {
				return nil, err
			}
		}
		for _, d := range refs[rp.name] {
			if err := p.walk(rp, d, true); err != nil {
				return nil, err
			}
			if tag := d.Annotations[refNameAnnotation]; tag != "" {
				rp.refTags = append(rp.refTags, refTag{tag: tag, digest: d.Digest})
			}
		}
		for _, d := range roots[rp.name] {
			rp.addManifest(d.Digest, d.MediaType)
		}
	}
	return p, nil
}

func (rp *repoPlan) addManifest(digest, mediaType string) {
	if rp.seen["m"+digest] {
		return
	}
	rp.seen["m"+digest] = true
	rp.manifests = append(rp.manifests, layoutManifest{digest: digest, mediaType: mediaType})
}

func (rp *repoPlan) addBlob(digest string) {
	if rp.seen["b"+digest] {
		return
	}
	rp.seen["b"+digest] = true
	rp.blobs = append(rp.blobs, digest)
}

// walk adds what manifest d needs (its blobs, its children), then d itself when self.
// Children and blobs the layout does not hold (platforms left behind, a delta's
// omissions) are skipped: the push of the manifest needing them says so if the registry
// lacks them too.
func (p *importPlan) walk(rp *repoPlan, d descriptor, self bool) error {
	if rp.seen["w"+d.Digest] {
		if self {
			rp.addManifest(d.Digest, d.MediaType)
		}
		return nil
	}
	rp.seen["w"+d.Digest] = true
	data, err := p.read(d.Digest)
	if err != nil {
		return err
	}
	var m manifestShape
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("layout: manifest %s: %w", d.Digest, err)
	}
	for _, c := range m.Manifests {
		if !digestPattern.MatchString(c.Digest) {
			return fmt.Errorf("layout: manifest %s names an invalid digest %q", d.Digest, c.Digest)
		}
		if _, ok := p.sizes[c.Digest]; ok {
			if err := p.walk(rp, c, true); err != nil {
				return err
			}
		}
	}
	blobs := m.Layers
	if m.Config != nil {
		blobs = append([]descriptor{*m.Config}, blobs...)
	}
	for _, b := range blobs {
		if !digestPattern.MatchString(b.Digest) {
			return fmt.Errorf("layout: manifest %s names an invalid digest %q", d.Digest, b.Digest)
		}
		if _, ok := p.sizes[b.Digest]; ok {
			rp.addBlob(b.Digest)
		}
	}
	if self {
		mt := m.MediaType
		if mt == "" {
			mt = d.MediaType
		}
		rp.addManifest(d.Digest, mt)
	}
	return nil
}

// read returns a manifest's bytes from the layout.
func (p *importPlan) read(digest string) ([]byte, error) {
	data, err := p.src.read(blobName(digest), maxManifestBytes)
	if err != nil {
		return nil, fmt.Errorf("layout: manifest %s: %w", digest, err)
	}
	return data, nil
}
