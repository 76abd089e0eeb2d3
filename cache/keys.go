package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"time"
)

// Prefix starts every key this package builds; bump its version when the meaning of a
// key changes, so old entries are simply never read again.
const Prefix = "portcullis:v1:"

// Kinds of keys, the second segment of every key and the "kind" attribute of metrics.
const (
	KindLayer       = "layer"       // layer inventory
	KindFindings    = "findings"    // scan findings of an image
	KindSignature   = "signature"   // signature verification status of an image
	KindAttestation = "attestation" // verified attestations (CI scan results) of an image
	KindManifest    = "manifest"    // manifest bytes
	KindTag         = "tag"         // tag → digest resolution
	KindDecision    = "decision"    // memoised admission decision
	KindAccess      = "access"      // the upstream recently let a credential pull from a repository
	KindCoverage    = "coverage"    // a platform manifest belongs to a signed index
	KindImage       = "image"       // what an image's configuration shows (user, labels, secrets)
	KindLayers      = "layers"      // an image seen with exactly these layers, for baselines
	KindPrevious    = "previous"    // a repository's last accepted push
	KindBaseline    = "baseline"    // the baseline an image was judged against
	KindFirstSeen   = "firstseen"   // when a vulnerability was first seen in a repository
	KindLock        = "lock"        // Flight lock guarding another key
	KindLedger      = "ledger"      // the first digest a tag was pushed with
	KindScanCred    = "scancred"    // a scanner adapter's short-lived pull credential (its hash)
	KindOther       = "other"       // any key not built here (metrics only)
)

// LayerKey names the analysis, by analyzerVersion, of the layer blob whose compressed digest
// is blobDigest and whose uncompressed digest is diffID. Both digests are the ones the
// analysis computed from the bytes, never ones a manifest or image configuration claims: a
// lookup under a claimed pair finds only an analysis of exactly that content.
func LayerKey(blobDigest, diffID, analyzerVersion string) string {
	return build(KindLayer, digestPart(blobDigest), digestPart(diffID), part(analyzerVersion))
}

// FindingsKey names the scan findings of manifestDigest against vulnerability database
// revision dbRevision.
func FindingsKey(manifestDigest, dbRevision string) string {
	return build(KindFindings, digestPart(manifestDigest), part(dbRevision))
}

// SignatureKey names the signature status of manifestDigest given the signature and
// attestation artifacts summarised by artifactsHash (see ArtifactsHash).
func SignatureKey(manifestDigest, artifactsHash string) string {
	return build(KindSignature, digestPart(manifestDigest), digestPart(artifactsHash))
}

// AttestationKey names the attestations of manifestDigest that verified (CI scan results),
// given the attestation artifacts and trust summarised by artifactsHash (see ArtifactsHash).
func AttestationKey(manifestDigest, artifactsHash string) string {
	return build(KindAttestation, digestPart(manifestDigest), digestPart(artifactsHash))
}

// ArtifactsHash summarises a set of artifact digests (order and duplicates do not matter)
// as "sha256:<hex>". Callers may add entries such as the trust configuration's revision,
// so that a change to it also yields new signature keys.
func ArtifactsHash(digests []string) string {
	d := slices.Clone(digests)
	slices.Sort(d)
	d = slices.Compact(d)
	h := sha256.New()
	for _, s := range d {
		h.Write([]byte(s))
		h.Write([]byte{'\n'})
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// ManifestKey names the manifest bytes whose digest is digest.
func ManifestKey(digest string) string {
	return build(KindManifest, digestPart(digest))
}

// TagKey names the digest that tag of repository repo resolves to.
func TagKey(repo, tag string) string {
	return build(KindTag, part(repo), part(tag))
}

// DecisionKey names a memoised decision about digest under policyRevision and dbRevision,
// in environment, on day (formatted as YYYY-MM-DD in day's location). action is the action
// ("pull", "push") followed by every further input the decision depends on, in a fixed
// order — at least the repository, since rules differ per repository.
func DecisionKey(policyRevision, dbRevision, environment string, day time.Time, digest string, action ...string) string {
	parts := []string{part(policyRevision), part(dbRevision), part(environment), day.Format(time.DateOnly), digestPart(digest)}
	for _, a := range action {
		parts = append(parts, part(a))
	}
	return build(KindDecision, parts...)
}

// AccessKey names the memo that the upstream let the client with this Authorization header
// value (possibly empty) pull from repo. The header is hashed, never stored.
func AccessKey(repo, authorization string) string {
	sum := sha256.Sum256([]byte(authorization))
	return build(KindAccess, part(repo), "sha256:"+hex.EncodeToString(sum[:]))
}

// CoverageKey names the record that platform manifest digest of repo was served as part of
// a signed index.
func CoverageKey(repo, digest string) string {
	return build(KindCoverage, part(repo), digestPart(digest))
}

// ImageKey names what the image with configuration configDigest and layer blobs summarised
// by layersHash (see LayersHash of the manifest's layer digests) shows, as read by analyzer
// version analyzerVersion. Content-addressed, so never stale: the configuration alone does
// not fix the layers (its diff_ids are claims), so evidence about layers is keyed by both.
func ImageKey(configDigest, layersHash, analyzerVersion string) string {
	return build(KindImage, digestPart(configDigest), digestPart(layersHash), part(analyzerVersion))
}

// LayersKey names the image (repository and digest) last seen whose layers, in order, are
// summarised by layersHash (see LayersHash).
func LayersKey(layersHash string) string {
	return build(KindLayers, digestPart(layersHash))
}

// LayersHash summarises an ordered list of layer digests as "sha256:<hex>"; unlike
// ArtifactsHash, order matters and nothing is removed.
func LayersHash(digests []string) string {
	h := sha256.New()
	for _, s := range digests {
		h.Write([]byte(s))
		h.Write([]byte{'\n'})
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// PreviousKey names the last push to repository repo that the gateway accepted.
func PreviousKey(repo string) string {
	return build(KindPrevious, part(repo))
}

// BaselineKey names the baseline that the push of digest to repo was judged against.
func BaselineKey(repo, digest string) string {
	return build(KindBaseline, part(repo), digestPart(digest))
}

// FirstSeenKey names when vulnerability advisoryID was first seen in an image of repo.
func FirstSeenKey(repo, advisoryID string) string {
	return build(KindFirstSeen, part(repo), part(advisoryID))
}

// LedgerKey names the first digest tag of repo was pushed with through the gateway (the
// immutability ledger): a tag deleted upstream cannot be pushed again with another digest.
func LedgerKey(repo, tag string) string {
	return build(KindLedger, part(repo), part(tag))
}

// ScanCredKey names the short-lived pull credential id minted for one adapter scan.
func ScanCredKey(id string) string {
	return build(KindScanCred, part(id))
}

// LockKey names the Flight lock that guards the computation of key.
func LockKey(key string) string {
	return Prefix + KindLock + ":" + key
}

// KindOf returns the kind of a key built by this package, or KindOther.
func KindOf(key string) string {
	rest, ok := strings.CutPrefix(key, Prefix)
	if !ok {
		return KindOther
	}
	kind, _, _ := strings.Cut(rest, ":")
	switch kind {
	case KindLayer, KindFindings, KindSignature, KindAttestation, KindManifest, KindTag, KindDecision, KindAccess, KindCoverage, KindImage,
		KindLayers, KindPrevious, KindBaseline, KindFirstSeen, KindLedger, KindScanCred, KindLock:
		return kind
	}
	return KindOther
}

func build(kind string, parts ...string) string {
	return Prefix + kind + ":" + strings.Join(parts, ":")
}

// keyEscaper keeps free-form components from containing the separator.
var keyEscaper = strings.NewReplacer("%", "%25", ":", "%3A")

// part escapes a free-form key component.
func part(s string) string { return keyEscaper.Replace(s) }

// digestPart keeps a well-formed "algorithm:encoded" digest readable and escapes anything
// else; either way the key stays unambiguous, since a kept digest has exactly one colon.
func digestPart(d string) string {
	if strings.Count(d, ":") == 1 && !strings.Contains(d, "%") {
		return d
	}
	return part(d)
}
