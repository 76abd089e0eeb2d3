package policy

// SignatureEvidence is what the gateway found about the signatures of the
// manifest a request is for. The gate gathers it when Needs.Signatures is
// true; it is keyed by the manifest digest and the signature artifacts seen.
type SignatureEvidence struct {
	// Verified are the names of the authorities whose signature verified
	// for this exact digest (or, when CoveredBy is set, for that index).
	Verified []string `json:"verified,omitempty"`
	// CoveredBy is the digest of a signed index this manifest is a platform
	// manifest of, "" if none; the index's signatures are in Verified.
	CoveredBy string `json:"coveredBy,omitempty"`
	// Findings are the signature artifacts found that did not verify.
	Findings []SignatureFinding `json:"findings,omitempty"`
}

// SignatureFinding is one signature artifact that did not count, and why.
type SignatureFinding struct {
	// Kind classifies it as the verify package does: "unknown-key",
	// "other-digest", "tampered", "attestation", "wrong-payload-type",
	// "malformed", "too-large", "over-budget" or "wrong-identity".
	Kind string `json:"kind"`
	// Detail says what was wrong, for a person.
	Detail string `json:"detail,omitempty"`
}

// findingKinds are the known finding kinds, in the order messages list
// them, with how a message names one.
var findingKinds = []struct{ kind, phrase string }{
	{"unknown-key", "a signature by an unknown key"},
	{"other-digest", "a signature for another digest (replayed from another image)"},
	{"tampered", "a tampered signature"},
	{"attestation", "an attestation, which is not a signature"},
	{"wrong-payload-type", "a signed payload of the wrong type (not a signature)"},
	{"malformed", "a malformed signature artifact"},
	{"too-large", "a signature artifact too large to read"},
	{"over-budget", "signature artifacts left unread (over the gateway's verification budget)"},
	// wrong-identity findings are named by their details: the identity found
	// and the one each keyless authority requires.
	{kindWrongIdentity, "a keyless signature by an identity no authority of the rule accepts"},
}

// kindWrongIdentity is the finding kind of a keyless signature that verified,
// made by a certificate identity other than the authority's.
const kindWrongIdentity = "wrong-identity"
