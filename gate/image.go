package gate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/scan/imageconfig"
	"github.com/portcullis-dev/portcullis/scan/layer"
	"github.com/portcullis-dev/portcullis/scan/secrets"
)

// ImageReader reads manifests and blobs from the upstream, size-capped and digest-checked,
// as the gateway's service account.
type ImageReader interface {
	Manifest(ctx context.Context, repo, ref string) (body []byte, mediaType string, err error)
	Blob(ctx context.Context, repo, digest string, max int64) ([]byte, error)
}

// WithImages lets the gate read image configurations, for config and secret rules.
// Without it those rules find no evidence and the environment's fail mode applies. With a
// scanner that analyses layers too (WithScanner with a *Scanner), secret rules also search
// the files of every layer, whether or not a vulnerability database is imported.
func WithImages(r ImageReader) Option { return func(g *Gate) { g.blobs = r } }

// imageAnalyzerVersion changes whenever what imageEvidence derives from a config changes,
// so cached evidence of an older analysis is never read.
var imageAnalyzerVersion = "config/2+" + secrets.Version

// layersAnalyzerVersion names evidence that also holds the secrets of the layer files: it
// is cached apart from config-only evidence, and changes with the layer analysis.
var layersAnalyzerVersion = imageAnalyzerVersion + "+layers/1+" + layer.AnalyzerVersion

// imageEvidenceVersion is the format version of cached image evidence: 2 keys it by the
// layer blobs too and adds Mismatched and Unsearched.
const imageEvidenceVersion = 2

// maxConfigBytes caps the image configuration blob the gate reads.
const maxConfigBytes = imageconfig.MaxConfigBytes

// layerAnalyzer returns what each layer of an image holds (*Scanner does, with the secrets
// of its files, and needs no vulnerability database for it). A VulnerabilityScanner that is
// also a layerAnalyzer lets secret rules search layer files, not only the configuration.
type layerAnalyzer interface {
	Layers(ctx context.Context, repo string, manifest []byte) (ImageLayers, error)
}

// imageEvidence reads what an image's configuration shows: user, labels, base image and
// secrets in its Env, labels and build history; and, when the gate's scanner analyses
// layers, the secrets in the files of every layer (a file a later layer deletes is still in
// the image's blobs). Indexes carry no config: their platform manifests are judged on their
// own. Results are cached by config digest and the manifest's layer blob digests: the
// configuration's diff_ids are claims, and a layer whose content is another is reported in
// Mismatched. Evidence of layers not searched in full is kept only a few minutes.
//
// A pull waits for the layer analysis at most the pull scan wait; past it the analysis goes
// on and the error is errScanPending. When the layers cannot be analysed the configuration's
// evidence is returned with the error, so that config rules still judge the image.
func (g *Gate) imageEvidence(ctx context.Context, action policy.Action, repo string, manifest []byte) (*policy.ImageEvidence, error) {
	if g.blobs == nil {
		return nil, errString("this gateway reads no image configurations (no image reader configured)")
	}
	var m struct {
		MediaType string `json:"mediaType"`
		Config    *struct {
			Digest string `json:"digest"`
		} `json:"config"`
		Layers []struct {
			Digest string `json:"digest"`
		} `json:"layers"`
		Manifests   []json.RawMessage `json:"manifests"`
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		return nil, fmt.Errorf("reading the manifest: %w", err)
	}
	if m.Config == nil {
		if m.Manifests != nil || strings.Contains(m.MediaType, "index") || strings.Contains(m.MediaType, "list") {
			return &policy.ImageEvidence{Index: true}, nil
		}
		return nil, fmt.Errorf("the manifest names no config blob")
	}
	layers, _ := g.scanner.(layerAnalyzer)
	version := imageAnalyzerVersion
	if layers != nil {
		version = layersAnalyzerVersion
	}
	blobs := make([]string, len(m.Layers))
	for i, l := range m.Layers {
		blobs[i] = l.Digest
	}
	key := cache.ImageKey(m.Config.Digest, cache.LayersHash(blobs), version)
	var ev policy.ImageEvidence
	if raw, ok, _ := g.coverage.store.Get(ctx, key); ok && cache.Decode(raw, cache.KindImage, imageEvidenceVersion, &ev) {
		return withBase(&ev, m.Annotations), nil
	}
	blob, err := g.blobs.Blob(ctx, repo, m.Config.Digest, maxConfigBytes)
	if err != nil {
		return nil, fmt.Errorf("reading the image configuration %s: %w", m.Config.Digest, err)
	}
	ev, err = inspectConfig(ctx, blob)
	if err != nil {
		return nil, err
	}
	if layers != nil {
		if err := g.layerSecrets(ctx, action, layers, repo, manifest, &ev); err != nil {
			return withBase(&ev, m.Annotations), err
		}
	}
	ttl := 7 * 24 * time.Hour
	if ev.LayersIncomplete != "" {
		ttl = unfinishedTTL // it may have stopped on a busy moment's time budget
	}
	if v, err := cache.Encode(cache.KindImage, imageEvidenceVersion, ev); err == nil {
		_ = g.coverage.store.Set(context.WithoutCancel(ctx), key, v, ttl)
	}
	return withBase(&ev, m.Annotations), nil
}

// layerSecrets adds to ev the secrets in the files of every layer of the image, each named
// by path, line and layer, and marks ev.LayersScanned. A pull waits for the analysis at
// most the pull scan wait (errScanPending past it).
func (g *Gate) layerSecrets(ctx context.Context, action policy.Action, la layerAnalyzer, repo string, manifest []byte, ev *policy.ImageEvidence) error {
	img, err := waitScan(ctx, action, func(ctx context.Context) (ImageLayers, error) { return la.Layers(ctx, repo, manifest) })
	if err != nil {
		if errors.Is(err, errScanPending) {
			return err
		}
		return fmt.Errorf("analysing the layers: %w", err)
	}
	for _, s := range layer.ImageSecrets(img.Layers) {
		if s.Confidence == secrets.ConfidenceLow {
			continue // as for the configuration: placeholders are not worth stopping a release for
		}
		ev.Secrets = append(ev.Secrets, policy.SecretFinding{Type: s.Type, Location: s.Location(), Excerpt: s.Redacted,
			Layer: s.Layer, LayerNumber: s.Index + 1, Deleted: s.Hidden})
	}
	var incomplete []string
	for i, l := range img.Layers {
		if l.Incomplete {
			incomplete = append(incomplete, fmt.Sprintf("layer %d (%s): %s", i+1, l.DiffID, l.IncompleteReason))
		}
		for _, n := range l.SecretsNotSearched {
			p := n.Path
			if n.Member != "" {
				p += "!/" + n.Member
			}
			ev.Unsearched = append(ev.Unsearched, policy.UnsearchedFile{Path: p, Layer: l.DiffID, LayerNumber: i + 1, Reason: n.Reason})
		}
		ev.UnsearchedOmitted += l.SecretsNotSearchedCount - len(l.SecretsNotSearched)
	}
	ev.LayersScanned, ev.LayersIncomplete = true, strings.Join(incomplete, "; ")
	ev.Mismatched = img.Mismatched
	return nil
}

// withBase takes the base image from the manifest's annotation when the config's label
// did not name one.
func withBase(ev *policy.ImageEvidence, annotations map[string]string) *policy.ImageEvidence {
	if b := annotations[imageconfig.AnnotationBaseName]; b != "" && ev.BaseImage == "" {
		out := *ev
		out.BaseImage = b
		return &out
	}
	return ev
}

// configInspectTimeout bounds the work on one image configuration (its secret search is
// linear in its size, which maxConfigBytes caps; this bounds it on a busy machine too).
const configInspectTimeout = 30 * time.Second

// inspectConfig derives the evidence from an image configuration blob. Past
// configInspectTimeout it fails: the configuration was not fully checked, which the
// environment's fail mode decides, never a pass.
func inspectConfig(ctx context.Context, blob []byte) (policy.ImageEvidence, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, configInspectTimeout, fmt.Errorf("inspecting the image configuration took longer than %s", configInspectTimeout))
	defer cancel()
	cfg, err := imageconfig.ParseConfig(blob)
	if err != nil {
		return policy.ImageEvidence{}, fmt.Errorf("the image configuration: %w", err)
	}
	ev := policy.ImageEvidence{User: cfg.Config.User, Labels: cfg.Config.Labels}
	ev.BaseImage, _ = imageconfig.BaseImage(cfg, nil)
	ev.RunsAsRoot, ev.RootReason = imageconfig.RunsAsRoot(cfg)
	found, err := imageconfig.SecretsInConfigContext(ctx, cfg)
	if err != nil {
		return policy.ImageEvidence{}, fmt.Errorf("searching the image configuration for secrets: %w", err)
	}
	for _, s := range found {
		if s.Confidence == secrets.ConfidenceLow {
			continue // placeholders, loopback test URLs: not worth stopping a release for
		}
		ev.Secrets = append(ev.Secrets, policy.SecretFinding{Type: s.Type, Location: s.Source, Excerpt: s.Redacted})
	}
	return ev, nil
}
