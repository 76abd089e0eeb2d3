package gate

import (
	"context"
	"fmt"
	"time"

	"github.com/portcullis-dev/portcullis/policy"
)

// currentTag returns the digest tag of req's repository points at upstream (read with the
// client's credentials) or, when the upstream has no such tag, the digest the gateway first
// saw pushed under it: a tag deleted upstream cannot be pushed again with other content.
// Signature, attestation and SBOM tags have no ledger entry: they grow by design.
func (g *Gate) currentTag(ctx context.Context, req Request, tag string) (string, error) {
	cur, err := g.tags.TagDigest(ctx, req.Repository, tag, req.Authorization)
	if err != nil || cur != "" || policy.ArtifactTagKind(tag) != "" {
		return cur, err
	}
	first, ok, err := g.records.FirstDigest(ctx, req.Repository, tag)
	if err != nil {
		return "", fmt.Errorf("reading the tag ledger: %w", recordsUnavailable{err})
	}
	if !ok {
		return "", nil
	}
	return first, nil
}

// currentLayers reads the layers of the manifest digest of repo points at, as the
// gateway's service account.
func (g *Gate) currentLayers(ctx context.Context, repo, digest string) ([]string, error) {
	if g.blobs == nil {
		return nil, errString("this gateway reads no manifests (no image reader configured)")
	}
	body, _, err := g.blobs.Manifest(ctx, repo, digest)
	if err != nil {
		return nil, fmt.Errorf("reading the manifest %s@%s: %w", repo, digest, err)
	}
	return policy.Classify(body).Layers, nil
}

// TagStored records that the upstream stored digest under tag of repo through the gateway:
// the first digest a tag is pushed with is remembered (the immutability ledger), so that
// deleting the tag upstream does not free it for other content. The proxy calls it while
// it holds the tag's lock. Signature, attestation and SBOM tags are not recorded. The
// push's decision was written to the same store a moment before, so a failure here is
// rare; it is retried in the background for a while.
func (g *Gate) TagStored(ctx context.Context, repo, tag, digest string) {
	if tag == "" || digest == "" || policy.ArtifactTagKind(tag) != "" {
		return
	}
	ctx = context.WithoutCancel(ctx)
	_, err := g.records.RecordTag(ctx, repo, tag, digest, g.now())
	if err == nil {
		return
	}
	g.log.Warn("tag ledger not written yet; retrying", "repository", repo, "tag", tag, "error", err.Error())
	go func() {
		wait := time.Second
		for range ledgerRetries {
			time.Sleep(wait)
			wait *= 2
			if _, err = g.records.RecordTag(ctx, repo, tag, digest, g.now()); err == nil {
				return
			}
		}
		g.log.Error("tag ledger not written", "repository", repo, "tag", tag, "digest", digest, "error", err.Error())
	}()
}

// ledgerRetries is how often a failed ledger write is retried (1s, 2s, 4s ... apart).
const ledgerRetries = 7
