package cache

import "time"

// KeyDoc documents one kind of key, so that the key table in docs/CACHING.md can be generated from,
// and checked against, KeySchema.
type KeyDoc struct {
	Kind    string        // the kind, as returned by KindOf
	Pattern string        // the key's shape; {placeholders} are filled by the builder
	TTL     time.Duration // suggested expiry; zero when it is up to the caller
	Notes   string        // what the value is and when the key changes
}

// KeySchema lists every kind of key this package builds, in a stable order.
func KeySchema() []KeyDoc {
	return []KeyDoc{
		{KindLayer, Prefix + "layer:{blobDigest}:{diffID}:{analyzerVersion}", 30 * 24 * time.Hour,
			"Analysis of one layer blob (packages, paths, secrets), under the compressed and uncompressed digests it computed; a complete analysis only; changes only with the analyzer."},
		{KindFindings, Prefix + "findings:{manifestDigest}:{dbRevision}", 7 * 24 * time.Hour,
			"Scan findings of an image; a new vulnerability database revision means new keys."},
		{KindSignature, Prefix + "signature:{manifestDigest}:{artifactsHash}", 24 * time.Hour,
			"Signature status; artifactsHash = ArtifactsHash(signature artifact digests), so a new signature means a new key."},
		{KindAttestation, Prefix + "attestation:{manifestDigest}:{artifactsHash}", 24 * time.Hour,
			"Attestations that verified (CI scan results: signer, predicate) and those rejected; artifactsHash covers the attestation artifacts, the trusted keys and the predicate types asked for, so a new attestation means a new key. Freshness is judged at each decision, not cached."},
		{KindManifest, Prefix + "manifest:{digest}", 24 * time.Hour,
			"Manifest bytes, content-addressed."},
		{KindTag, Prefix + "tag:{repo}:{tag}", time.Hour,
			"Digest a tag resolves to; safe because the gateway forbids moving tags."},
		{KindDecision, Prefix + "decision:{policyRevision}:{dbRevision}:{environment}:{day}:{digest}:{action...}", time.Hour,
			"Memoised decision; day is YYYY-MM-DD, action lists the action then the repository and any other input."},
		{KindAccess, Prefix + "access:{repo}:{credentialHash}", time.Minute,
			"The upstream answered a pull by this credential (sha256 of the Authorization header) with 200; lets cached manifests be served without widening access."},
		{KindCoverage, Prefix + "coverage:{repo}:{digest}", 24 * time.Hour,
			"The signed index (and its verified authorities) that a platform manifest was served as part of; shared so any replica honours it."},
		{KindImage, Prefix + "image:{configDigest}:{layersHash}:{analyzerVersion}", 7 * 24 * time.Hour,
			"What an image shows: its configuration's user, labels, base image, secrets in Env, labels and history, and with a scanner its layers' secrets; keyed by the configuration and the layer blobs (the configuration's diff_ids are only claims); content-addressed."},
		{KindLayers, Prefix + "layers:{layersHash}", 90 * 24 * time.Hour,
			"The image (repository, digest) last seen with exactly these layers (LayersHash of its manifest's layer digests, in order); a pushed image's baseline is the one matching its longest layer prefix."},
		{KindPrevious, Prefix + "previous:{repo}", 90 * 24 * time.Hour,
			"The digest of the repository's last push the gateway accepted; the baseline of last resort."},
		{KindBaseline, Prefix + "baseline:{repo}:{digest}", 90 * 24 * time.Hour,
			"The baseline an accepted push was judged against (how, repository, digest; or none), so pulls and re-pushes of it are judged the same way."},
		{KindFirstSeen, Prefix + "firstseen:{repo}:{advisoryID}", 400 * 24 * time.Hour,
			"When the vulnerability was first seen in the repository: written once (SET if absent, under a lock), renewed monthly while seen; remediation windows count from it."},
		{KindLedger, Prefix + "ledger:{repo}:{tag}", 400 * 24 * time.Hour,
			"The first digest a tag was pushed with through the gateway: a tag deleted upstream cannot be re-pointed. Not recomputable: kept here until the durable records store exists; losing it lets a deleted tag be pushed again with other content."},
		{KindScanCred, Prefix + "scancred:{id}", 10 * time.Minute,
			"A scanner adapter's pull credential for one image (user portcullis-scan-{id}): the repository, the digest, the expiry and the SHA-256 of the secret, never the secret; TTL the scan's bound, deleted when the scan ends."},
		{KindLock, Prefix + "lock:{key}", 0,
			"Flight lock guarding the computation of {key}; expires after the flight's LockTTL, renewed while computing."},
	}
}
