package gate

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/policy"
)

// platformAnalyzerVersion keys the platform read from an image configuration in the
// cache; it changes whenever what is read from it does.
const platformAnalyzerVersion = "platform/1"

// platformEvidenceVersion is the format version of cached platform evidence.
const platformEvidenceVersion = 1

// platformEvidence reads what platforms a manifest is for: an index's from its entries
// (policy.IndexPlatforms), an image's from its configuration blob, read as the service
// account and cached by the configuration's digest (content-addressed, so never stale).
func (g *Gate) platformEvidence(ctx context.Context, repo string, manifest []byte) (*policy.PlatformEvidence, error) {
	shape, err := ClassifyManifest(manifest, "")
	if err != nil {
		return nil, fmt.Errorf("reading the manifest: %w", err)
	}
	if shape == ShapeIndex {
		ev := policy.IndexPlatforms(manifest)
		return &ev, nil
	}
	var m struct {
		Config struct {
			Digest string `json:"digest"`
		} `json:"config"`
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		return nil, fmt.Errorf("reading the manifest: %w", err)
	}
	if m.Config.Digest == "" {
		return nil, fmt.Errorf("the manifest names no config blob")
	}
	if g.blobs == nil {
		return nil, errString("this gateway reads no image configurations (no image reader configured)")
	}
	key := cache.ImageKey(m.Config.Digest, cache.LayersHash(nil), platformAnalyzerVersion)
	var ev policy.PlatformEvidence
	if raw, ok, _ := g.coverage.store.Get(ctx, key); ok && cache.Decode(raw, cache.KindImage, platformEvidenceVersion, &ev) {
		return &ev, nil
	}
	blob, err := g.blobs.Blob(ctx, repo, m.Config.Digest, maxConfigBytes)
	if err != nil {
		return nil, fmt.Errorf("reading the image configuration %s: %w", m.Config.Digest, err)
	}
	if p, ok := policy.ConfigPlatform(blob); ok {
		ev.Platforms = []policy.Platform{p}
	}
	if v, err := cache.Encode(cache.KindImage, platformEvidenceVersion, ev); err == nil {
		_ = g.coverage.store.Set(context.WithoutCancel(ctx), key, v, 7*24*time.Hour)
	}
	return &ev, nil
}
