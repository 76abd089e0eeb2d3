package policy

import "regexp"

var artifactTagRE = regexp.MustCompile(`^(sha256-[0-9a-f]{64}|sha512-[0-9a-f]{128})(\.(sig|att|sbom))?$`)

// IsArtifactTag reports whether tag names a signature, attestation or SBOM
// artifact rather than an image: "sha256-<64 hex>" (the OCI referrers
// fallback tag) optionally followed by ".sig", ".att" or ".sbom" (cosign's
// tag conventions), or the same with "sha512-<128 hex>". Hex digits must be
// lower case, as digests are written.
func IsArtifactTag(tag string) bool {
	return artifactTagRE.MatchString(tag)
}
