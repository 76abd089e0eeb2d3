package gate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/records"
	"github.com/portcullis-dev/portcullis/scan/imageconfig"
)

// maxPrefixLookups bounds the layer prefixes looked up for one image (one read each).
const maxPrefixLookups = 128

// maxIndexChildren bounds the platform manifests of a base image index read to find the one
// an image was built on.
const maxIndexChildren = 16

// maxRecordedManifest bounds the baseline manifest kept with a push's baseline record.
const maxRecordedManifest = 64 << 10

// imageManifest is what the baseline search reads from a manifest.
type imageManifest struct {
	Config *struct {
		Digest string `json:"digest"`
	} `json:"config"`
	Layers []struct {
		Digest string `json:"digest"`
	} `json:"layers"`
	Manifests []struct {
		Digest string `json:"digest"`
	} `json:"manifests"`
	Annotations map[string]string `json:"annotations"`
}

// layerDigests returns the manifest's layer digests, in order.
func (m imageManifest) layerDigests() []string {
	out := make([]string, len(m.Layers))
	for i, l := range m.Layers {
		out[i] = l.Digest
	}
	return out
}

// candidate is a possible baseline: an image the gateway can read.
type candidate struct {
	how, repo, digest string
	manifest          []byte
}

// baselineSearch finds the baseline of one image.
type baselineSearch struct {
	g      *Gate
	action policy.Action
	repo   string
	digest string
	m      imageManifest
	img    *policy.ImageEvidence
	// notes say what was tried and why it did not give a baseline.
	notes []string
	// fromMemo: the answer came from what a pull found a moment ago.
	fromMemo bool
}

// compareWithBaseline finds the baseline of repo@digest (whose manifest is manifest, and
// whose configuration img shows when the gate read it) and marks the findings of ev that
// the baseline has too as inherited. A baseline is, in this order: the base image named by
// the image's org.opencontainers.image.base.digest/.name annotations or labels, when the
// gateway can read it; the image seen by the gateway whose layers are the longest prefix of
// this image's; for a push, the repository's previous accepted push. A pull is judged
// against the baseline its push was judged against, when the gateway recorded one. The
// baseline is scanned with the same scanner (its report is usually cached); one that
// cannot be read or scanned is skipped, and the decision says so. Without a baseline, every
// finding is new and ev.BaselineNote says why.
func (g *Gate) compareWithBaseline(ctx context.Context, action policy.Action, repo, digest string, manifest []byte, img *policy.ImageEvidence, ev *policy.VulnerabilityEvidence) (baseManifest []byte) {
	if g.blobs == nil {
		ev.BaselineNote = "this gateway reads no manifests (no image reader configured)"
		return nil
	}
	var m imageManifest
	if err := json.Unmarshal(manifest, &m); err != nil || m.Config == nil {
		ev.BaselineNote = "the manifest could not be read for its layers"
		return nil
	}
	s := &baselineSearch{g: g, action: action, repo: repo, digest: digest, m: m, img: img}
	ways := []func(context.Context) *candidate{s.memoised, s.recorded, s.annotated, s.layerPrefix, s.previous}
	if action == policy.ActionPush {
		ways = []func(context.Context) *candidate{s.annotated, s.layerPrefix, s.previous}
	}
	for _, way := range ways {
		c := way(ctx)
		if c == nil {
			continue
		}
		if c.how == "" {
			break // recorded: its push found none
		}
		rep, err := g.scanner.Scan(ctx, c.repo, c.digest, c.manifest)
		if err != nil {
			s.notef("%s@%s could not be scanned: %v", c.repo, c.digest, err)
			continue
		}
		ev.Baseline = &policy.Baseline{How: c.how, Repository: c.repo, Digest: c.digest}
		markInherited(ev.Findings, rep)
		ev.BaselineNote = strings.Join(s.notes, "; ")
		s.memoise(ctx, c)
		return c.manifest
	}
	if len(s.notes) == 0 {
		s.notef("the image names no base image, and no image the gateway has seen has layers it starts with")
		if action == policy.ActionPush {
			s.notef("%s has no previous accepted push", repo)
		}
	}
	ev.BaselineNote = strings.Join(s.notes, "; ")
	s.memoise(ctx, nil)
	return nil
}

// Pulls of one image find the same baseline until something is pushed: the process
// remembers what a pull found, so that decisions (computed on every pull) do not read the
// records each time.
const (
	// baselineMemoFound is how long a found baseline is remembered.
	baselineMemoFound = time.Hour
	// baselineMemoNone is how long "no baseline" is remembered (an image pushed meanwhile
	// through another replica may become one).
	baselineMemoNone = 5 * time.Minute
	// baselineMemoVersion is the format version of remembered baselines.
	baselineMemoVersion = 1
)

// memoBaseline is a baseline a pull found (How "" when none, Note saying why).
type memoBaseline struct {
	How        string `json:"how,omitempty"`
	Repository string `json:"repository,omitempty"`
	Digest     string `json:"digest,omitempty"`
	Manifest   []byte `json:"manifest,omitempty"`
	Note       string `json:"note,omitempty"`
}

func (s *baselineSearch) memoKey() string {
	return "baseline\x00" + s.repo + "\x00" + s.digest
}

// memoised is the baseline a pull of this image found a moment ago.
func (s *baselineSearch) memoised(ctx context.Context) *candidate {
	raw, ok, _ := s.g.recordsMemo.Get(ctx, s.memoKey())
	var m memoBaseline
	if !ok || !cache.Decode(raw, "baseline-memo", baselineMemoVersion, &m) {
		return nil
	}
	if m.Note != "" {
		s.notes = append(s.notes, m.Note)
	}
	s.fromMemo = true
	return &candidate{how: m.How, repo: m.Repository, digest: m.Digest, manifest: m.Manifest}
}

// memoise remembers what a pull found: c, or nil for no baseline.
func (s *baselineSearch) memoise(ctx context.Context, c *candidate) {
	if s.action != policy.ActionPull || s.fromMemo {
		return
	}
	m, ttl := memoBaseline{Note: strings.Join(s.notes, "; ")}, baselineMemoNone
	if c != nil {
		m, ttl = memoBaseline{How: c.how, Repository: c.repo, Digest: c.digest, Manifest: c.manifest, Note: m.Note}, baselineMemoFound
	}
	if b, err := cache.Encode("baseline-memo", baselineMemoVersion, m); err == nil {
		_ = s.g.recordsMemo.Set(ctx, s.memoKey(), b, ttl)
	}
}

// notef notes why a way to a baseline did not give one.
func (s *baselineSearch) notef(format string, args ...any) {
	s.notes = append(s.notes, fmt.Sprintf(format, args...))
}

// read reads repo@ref as the gateway, noting a failure.
func (s *baselineSearch) read(ctx context.Context, what, repo, ref string) ([]byte, *imageManifest) {
	body, _, err := s.g.blobs.Manifest(ctx, repo, ref)
	if err != nil {
		s.notef("%s %s could not be read: %v", what, refString(repo, ref), err)
		return nil, nil
	}
	var m imageManifest
	if err := json.Unmarshal(body, &m); err != nil {
		s.notef("%s %s is not a manifest: %v", what, refString(repo, ref), err)
		return nil, nil
	}
	return body, &m
}

// refString is repo@digest or repo:tag.
func refString(repo, ref string) string {
	if strings.Contains(ref, ":") {
		return repo + "@" + ref
	}
	return repo + ":" + ref
}

// recorded is the baseline the push of this digest was judged against, for a pull.
func (s *baselineSearch) recorded(ctx context.Context) *candidate {
	u, ok, err := s.g.records.Baseline(ctx, s.repo, s.digest)
	if err != nil {
		s.notef("the baseline its push was judged against could not be read: %v", err)
		return nil
	}
	if !ok {
		return nil
	}
	if u.How == "" {
		s.notef("its push through the gateway found no baseline")
		return &candidate{}
	}
	if len(u.Manifest) > 0 && digestOf(u.Manifest) == u.BaseDigest {
		return &candidate{how: u.How, repo: u.BaseRepository, digest: u.BaseDigest, manifest: u.Manifest}
	}
	body, m := s.read(ctx, "the baseline of its push", u.BaseRepository, u.BaseDigest)
	if m == nil {
		return nil
	}
	return &candidate{how: u.How, repo: u.BaseRepository, digest: u.BaseDigest, manifest: body}
}

// annotated is the base image the image's annotations (or labels) name.
func (s *baselineSearch) annotated(ctx context.Context) *candidate {
	name, dgst := s.baseAnnotations(ctx)
	if name == "" && dgst == "" {
		return nil
	}
	repo, tag := baseRepository(name)
	if repo == "" {
		s.notef("its base digest annotation names no repository (org.opencontainers.image.base.name is not set)")
		return nil
	}
	ref := dgst
	if ref == "" {
		if tag == "" {
			s.notef("its base image %s names neither a tag nor a digest", name)
			return nil
		}
		ref = tag
	}
	body, m := s.read(ctx, "its base image", repo, ref)
	if m == nil {
		return nil
	}
	d := dgst
	if d == "" {
		d = digestOf(body)
	}
	if m.Config == nil && len(m.Manifests) > 0 {
		// A multi-platform base: the platform manifest this image was built on.
		for i, child := range m.Manifests {
			if i == maxIndexChildren {
				break
			}
			cb, cm := s.read(ctx, "a platform manifest of its base image", repo, child.Digest)
			if cm != nil && cm.Config != nil && isPrefix(cm.layerDigests(), s.m.layerDigests()) {
				body, d, m = cb, child.Digest, cm
				break
			}
		}
		if m.Config == nil {
			s.notef("no platform manifest of its base image %s@%s shares this image's first layers", repo, d)
			return nil
		}
	}
	if d == s.digest {
		return nil
	}
	if dgst == "" && !isPrefix(m.layerDigests(), s.m.layerDigests()) {
		// Named by tag only: the tag may have moved since the build.
		s.notef("its base image %s:%s now points at an image whose layers this image does not start with", repo, tag)
		return nil
	}
	return &candidate{how: policy.BaselineBaseAnnotation, repo: repo, digest: d, manifest: body}
}

// baseAnnotations returns the base image name and digest from the manifest's annotations,
// else from the configuration's labels (read when the gate did not read them already).
func (s *baselineSearch) baseAnnotations(ctx context.Context) (name, dgst string) {
	name, dgst = imageconfig.BaseImage(nil, s.m.Annotations)
	if name != "" && dgst != "" {
		return name, dgst
	}
	var labels map[string]string
	if s.img != nil {
		labels = s.img.Labels
	} else if s.m.Config != nil {
		blob, err := s.g.blobs.Blob(ctx, s.repo, s.m.Config.Digest, imageconfig.MaxConfigBytes)
		if err != nil {
			s.notef("its configuration could not be read for base image labels: %v", err)
		} else if cfg, err := imageconfig.ParseConfig(blob); err == nil {
			labels = cfg.Config.Labels
		}
	}
	return imageconfig.BaseImage(&imageconfig.Config{Config: imageconfig.ContainerConfig{Labels: labels}}, s.m.Annotations)
}

// baseRepository turns a base image name ("registry.example/base/debian:12",
// "base/debian@sha256:...") into the repository path it would have behind this gateway and
// its tag, if any: the registry host, when the name has one, is dropped.
func baseRepository(name string) (repo, tag string) {
	name, _, _ = strings.Cut(name, "@")
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name, tag = name[:i], name[i+1:]
	}
	if first, rest, ok := strings.Cut(name, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		name = rest
	}
	return name, tag
}

// layerPrefix is the image seen by the gateway whose layers are the longest prefix of this
// image's (this image excluded).
func (s *baselineSearch) layerPrefix(ctx context.Context) *candidate {
	layers := s.m.layerDigests()
	for k := len(layers); k >= 1 && len(layers)-k < maxPrefixLookups; k-- {
		seen, ok, err := s.g.records.Layers(ctx, cache.LayersHash(layers[:k]))
		if err != nil {
			s.notef("the images seen by the gateway could not be looked up: %v", err)
			return nil
		}
		if !ok || seen.Digest == s.digest {
			continue
		}
		body, m := s.read(ctx, "the image sharing its first layers", seen.Repository, seen.Digest)
		if m == nil || !slices.Equal(m.layerDigests(), layers[:k]) {
			continue
		}
		return &candidate{how: policy.BaselineLayerPrefix, repo: seen.Repository, digest: seen.Digest, manifest: body}
	}
	return nil
}

// previous is the repository's previous accepted push, for a push. A re-push of that very
// digest is judged against the baseline its first push was.
func (s *baselineSearch) previous(ctx context.Context) *candidate {
	if s.action != policy.ActionPush {
		return nil
	}
	prev, ok, err := s.g.records.Previous(ctx, s.repo)
	if err != nil {
		s.notef("its previous accepted push could not be looked up: %v", err)
		return nil
	}
	if !ok {
		return nil
	}
	if prev == s.digest {
		return s.recorded(ctx)
	}
	body, m := s.read(ctx, "its previous accepted push", s.repo, prev)
	if m == nil {
		return nil
	}
	return &candidate{how: policy.BaselinePrevious, repo: s.repo, digest: prev, manifest: body}
}

// markInherited marks the findings that the baseline's report has too: the same package
// name and a shared advisory id (its id or an alias), whatever the versions.
func markInherited(fs []policy.VulnerabilityFinding, base Report) {
	had := map[string]bool{}
	for _, b := range base.Findings {
		had[b.Package.Name+"\x00"+b.ID] = true
		for _, a := range b.Aliases {
			had[b.Package.Name+"\x00"+a] = true
		}
	}
	for i := range fs {
		f := &fs[i]
		f.Inherited = had[f.Package+"\x00"+f.ID]
		for _, a := range f.Aliases {
			f.Inherited = f.Inherited || had[f.Package+"\x00"+a]
		}
	}
}

// isPrefix reports whether prefix is a non-empty prefix of layers.
func isPrefix(prefix, layers []string) bool {
	return len(prefix) > 0 && len(prefix) <= len(layers) && slices.Equal(prefix, layers[:len(prefix)])
}

// digestOf is the sha256 digest of a manifest body.
func digestOf(body []byte) string {
	sum := sha256.Sum256(body)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// sightingWrites is what later baselines need from a decision on repo@digest: the
// image's layers (for layer-prefix matches) and, for an accepted push, that it is the
// repository's previous push and, when it was compared with one, the baseline it was judged
// against, with that baseline's manifest (baseManifest) so pulls need not read it again. A
// denied push leaves nothing: the upstream never stored it. A pull of an image the layer
// index already names leaves nothing either.
func (g *Gate) sightingWrites(ctx context.Context, action policy.Action, repo, digest string, manifest []byte, ev *policy.VulnerabilityEvidence, compared bool, baseManifest []byte, verdict policy.Verdict) records.Writes {
	var w records.Writes
	if ev == nil || ev.Index || digest == "" || (action == policy.ActionPush && verdict == policy.VerdictDeny) {
		return w
	}
	var m imageManifest
	if json.Unmarshal(manifest, &m) != nil || m.Config == nil || len(m.Layers) == 0 {
		return w
	}
	now := g.now()
	img := records.Image{Repository: repo, Digest: digest}
	hash := cache.LayersHash(m.layerDigests())
	if action == policy.ActionPush || !g.layersKnown(ctx, hash, img) {
		w.Layers = &records.LayerRecord{LayersHash: hash, Image: img, At: now}
	}
	if action != policy.ActionPush {
		return w
	}
	if compared {
		u := records.Baseline{Repository: repo, Digest: digest, At: now}
		if b := ev.Baseline; b != nil {
			u.How, u.BaseRepository, u.BaseDigest = b.How, b.Repository, b.Digest
			if len(baseManifest) <= maxRecordedManifest && digestOf(baseManifest) == b.Digest {
				u.Manifest = baseManifest
			}
		}
		w.Baseline = &u
	}
	w.Previous = &records.Push{Repository: repo, Digest: digest, At: now}
	return w
}

// layersKnown reports whether the layer index names img for hash, as this process last
// saw or wrote it (remembered, so that repeated pulls read the records once).
func (g *Gate) layersKnown(ctx context.Context, hash string, img records.Image) bool {
	key := "layers\x00" + hash + "\x00" + img.Repository + "\x00" + img.Digest
	if _, ok, _ := g.recordsMemo.Get(ctx, key); ok {
		return true
	}
	seen, ok, err := g.records.Layers(ctx, hash)
	if err != nil || !ok || seen != img {
		return false
	}
	_ = g.recordsMemo.Set(ctx, key, []byte{1}, baselineMemoFound)
	return true
}
