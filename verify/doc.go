// Package verify decides whether an image digest carries valid cosign signatures (legacy
// `.sig` tags and sigstore bundles found through OCI referrers) from trusted keys, within a
// bounded budget of registry reads per image.
package verify
