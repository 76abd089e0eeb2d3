package verify

import (
	"cmp"
	"context"
	"fmt"
	"slices"
)

// fetched is a manifest read by tag, with the digest of its bytes.
type fetched struct {
	body      []byte
	mediaType string
	digest    string
}

// found is what discovery turned up for one image.
type found struct {
	legacy    *fetched     // the `.sig` manifest, if any and within limits
	referrers []descriptor // referrers to open, deduplicated, bundles first
	artifacts []string     // sorted artifact digests (the cache key input)
	rejected  []Rejection  // artifacts rejected without being opened
}

// discover reads the legacy signature tag, the referrers API and the referrers fallback
// tag for img (three reads, charged to led whatever its budget), and orders the
// referrers to examine cheap, likely signatures first.
func (v *Verifier) discover(ctx context.Context, repo string, img digest, led *ledger) (found, error) {
	return v.discoverWith(ctx, repo, img, led, ".sig", FormatLegacy)
}

// discoverWith is discover with the legacy tag's suffix (".sig", or ".att" for cosign v2
// attestations) and format.
func (v *Verifier) discoverWith(ctx context.Context, repo string, img digest, led *ledger, suffix string, format Format) (found, error) {
	var f found
	sig, err := v.byTag(ctx, repo, img.tag(suffix), format, &f, led)
	if err != nil {
		return found{}, err
	}
	if sig != nil {
		f.legacy = sig
	}

	index, err := v.reg.Referrers(ctx, repo, img.String())
	led.charge(len(index))
	switch {
	case err == nil:
		m, perr := parseManifest(index, mediaTypeOCIIndex)
		if perr == nil && m.MediaType != mediaTypeOCIIndex {
			perr = fmt.Errorf("media type %s", quote(m.MediaType))
		}
		if perr != nil {
			return found{}, fmt.Errorf("the registry's referrers answer is not an OCI index: %w", perr)
		}
		f.addReferrers(m.Manifests, "the referrers API", "")
	case isNotFound(err) || isUnsupported(err):
	case isTooLarge(err):
		return found{}, fmt.Errorf("the registry's referrers index is over the size limit: %w", err)
	default:
		return found{}, fmt.Errorf("listing referrers: %w", err)
	}

	tagged, err := v.byTag(ctx, repo, img.tag(""), FormatBundle, &f, led)
	if err != nil {
		return found{}, err
	}
	if tagged != nil {
		m, perr := parseManifest(tagged.body, tagged.mediaType)
		switch {
		case perr != nil:
			f.reject(tagged.digest, FormatBundle, KindMalformed, "referrers tag "+img.tag("")+" is not an OCI index: "+perr.Error())
		case m.MediaType != mediaTypeOCIIndex:
			f.reject(tagged.digest, FormatBundle, KindMalformed, "referrers tag "+img.tag("")+" is "+quote(m.MediaType)+", not an OCI index")
		default:
			f.addReferrers(m.Manifests, "referrers tag "+img.tag(""), tagged.digest)
		}
	}

	// Cheap, likely signatures first. An index's artifactType and sizes are unsigned (the
	// fallback tag is anyone's to push) and decide nothing, but ordering by them spends
	// the budget where signatures are likely: a signature referrer is one small manifest.
	slices.SortStableFunc(f.referrers, func(a, b descriptor) int {
		return cmp.Or(
			cmp.Compare(workRank(a), workRank(b)),
			cmp.Compare(max(a.Size, 0), max(b.Size, 0)),
		)
	})
	slices.Sort(f.artifacts)
	f.artifacts = slices.Compact(f.artifacts)
	return f, nil
}

// smallManifest is the size under which a referrer manifest counts as cheap to read; a
// signature referrer is well under it (one layer descriptor, a subject, annotations).
const smallManifest = 64 << 10

// workRank orders referrers for examination: small bundle referrers, small cosign
// signature referrers, other small referrers, then large ones in the same order.
func workRank(d descriptor) int {
	rank := 2
	switch {
	case isBundleMediaType(d.ArtifactType):
		rank = 0
	case d.ArtifactType == mediaTypeCosignSignature:
		rank = 1
	}
	if d.Size > smallManifest {
		rank += 3
	}
	return rank
}

// byTag reads the manifest tagged tag. Missing is (nil, nil). One over the size cap is
// rejected and listed under the tag name, as its digest cannot be known unread.
func (v *Verifier) byTag(ctx context.Context, repo, tag string, format Format, f *found, led *ledger) (*fetched, error) {
	body, mt, err := v.reg.Manifest(ctx, repo, tag)
	led.charge(len(body))
	switch {
	case err == nil:
	case isNotFound(err):
		return nil, nil
	case isTooLarge(err):
		f.artifacts = append(f.artifacts, tag)
		f.reject(tag, format, KindTooLarge, "manifest tagged "+tag+" is over the registry's read limit; not read")
		return nil, nil
	default:
		return nil, fmt.Errorf("reading %s:%s: %w", repo, tag, err)
	}
	d := digestOf("sha256", body)
	f.artifacts = append(f.artifacts, d)
	if int64(len(body)) > v.maxManifest {
		f.reject(d, format, KindTooLarge, fmt.Sprintf("manifest tagged %s is %d bytes, over the %d-byte limit", tag, len(body), v.maxManifest))
		return nil, nil
	}
	return &fetched{body: body, mediaType: mt, digest: d}, nil
}

// addReferrers adds the descriptors of an index, skipping those already listed. An
// invalid digest in the fallback index (pushed by anyone who may push) rejects that index;
// in the registry's own answer it is skipped.
func (f *found) addReferrers(ds []descriptor, source, indexDigest string) {
	seen := make(map[string]bool, len(f.referrers)+len(ds))
	for _, d := range f.referrers {
		seen[d.Digest] = true
	}
	for _, d := range ds {
		if _, err := parseDigest(d.Digest); err != nil {
			if indexDigest != "" {
				f.reject(indexDigest, FormatBundle, KindMalformed, source+" lists an invalid digest "+quote(d.Digest))
			}
			continue
		}
		if seen[d.Digest] {
			continue
		}
		seen[d.Digest] = true
		f.referrers = append(f.referrers, d)
		f.artifacts = append(f.artifacts, d.Digest)
	}
}

// reject records an artifact rejected during discovery.
func (f *found) reject(artifact string, format Format, kind Kind, detail string) {
	f.rejected = append(f.rejected, Rejection{Artifact: artifact, Format: format, Kind: kind, Detail: detail})
}
