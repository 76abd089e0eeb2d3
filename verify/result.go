package verify

import "slices"

// Format names the way a signature is stored.
type Format string

const (
	// FormatLegacy is cosign's `sha256-<hex>.sig` tag holding simple-signing payloads.
	FormatLegacy Format = "legacy"
	// FormatBundle is a sigstore bundle stored as an OCI referrer of the image.
	FormatBundle Format = "bundle"
)

// Kind says why a signature artifact did not count.
type Kind string

const (
	// KindUnknownKey means no trusted key verifies the signature.
	KindUnknownKey Kind = "unknown-key"
	// KindOtherDigest means a valid signature whose payload or subject names another
	// digest: a signature replayed from another image.
	KindOtherDigest Kind = "other-digest"
	// KindTampered means the artifact names a trusted key but its signature does not
	// verify, or content does not match its digest: it was altered.
	KindTampered Kind = "tampered"
	// KindAttestation means an in-toto statement whose predicate is not a signature.
	KindAttestation Kind = "attestation"
	// KindWrongPayloadType means the payload is not of the type a signature must have.
	KindWrongPayloadType Kind = "wrong-payload-type"
	// KindMalformed means garbage, wrong media types, unparsable or missing content.
	KindMalformed Kind = "malformed"
	// KindTooLarge means over a size limit, and not read.
	KindTooLarge Kind = "too-large"
	// KindOverBudget means not examined: the verification's budget (see Budget) was spent
	// before this artifact's turn.
	KindOverBudget Kind = "over-budget"
)

// Signature is one signature that verified.
type Signature struct {
	// Authority is the name of the trusted key that verified it.
	Authority string
	// Format is how it was stored.
	Format Format
	// Artifact is the digest of the manifest that carried it.
	Artifact string
}

// Rejection is one signature artifact that did not count, and why.
type Rejection struct {
	// Artifact is the digest of the manifest that carried it, or the tag it was read
	// through when its digest could not be known (a manifest over the size cap).
	Artifact string
	// Format is how it was stored.
	Format Format
	// Kind classifies the reason.
	Kind Kind
	// Detail says what was wrong, for a person.
	Detail string
}

// Result is what Verify found for one image digest.
type Result struct {
	// Verified lists the signatures that verified, one per signature and authority.
	Verified []Signature
	// Rejected lists the signature artifacts that did not count.
	Rejected []Rejection
	// Artifacts lists, sorted, the digests of every signature or attestation artifact
	// that refers to the image: the legacy `.sig` manifest, the referrers fallback index
	// and every referrer listed. It is the input of the signature-status cache key.
	Artifacts []string
	// Spent is the work the verification did against its budget, and what it left
	// undone (over budget, or because the goal was met first).
	Spent Spent `json:",omitzero"`
}

// Authorities returns the distinct names of the authorities that verified a signature,
// sorted, for threshold checks.
func (r Result) Authorities() []string {
	var names []string
	for _, s := range r.Verified {
		if !slices.Contains(names, s.Authority) {
			names = append(names, s.Authority)
		}
	}
	slices.Sort(names)
	return names
}
