package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"strings"
)

var artifactTagRE = regexp.MustCompile(`^(sha256-[0-9a-f]{64}|sha512-[0-9a-f]{128})(\.(sig|att|sbom))?$`)

// ArtifactTagKind returns the kind of manifest an artifact-shaped tag is for
// ("sha256-<64 hex>" or "sha512-<128 hex>", lower case, optionally followed by
// cosign's ".sig", ".att" or ".sbom"). The shape alone exempts nothing: what a
// manifest is comes from its content (Classify). It returns
// KindSignature for ".sig", KindAttestation for ".att", KindSBOM for ".sbom",
// KindReferrers for the bare referrers fallback tag, and "" for any other tag.
func ArtifactTagKind(tag string) Kind {
	m := artifactTagRE.FindStringSubmatch(tag)
	if m == nil {
		return ""
	}
	switch m[3] {
	case "sig":
		return KindSignature
	case "att":
		return KindAttestation
	case "sbom":
		return KindSBOM
	}
	return KindReferrers
}

// Kind is what a manifest is, decided by its content alone (see Classify).
type Kind string

// The kinds of manifest.
const (
	// KindUnknown is a manifest whose body was not seen: judged as an image.
	KindUnknown Kind = ""
	// KindImage is a runnable image: an image configuration with image layers.
	KindImage Kind = "image"
	// KindIndex is an image index or Docker manifest list.
	KindIndex Kind = "index"
	// KindSignature is a signature (cosign simple signing, a sigstore bundle
	// with a message signature, a Notary signature).
	KindSignature Kind = "signature"
	// KindAttestation is an attestation (a DSSE envelope, in-toto, a sigstore
	// bundle holding a DSSE envelope).
	KindAttestation Kind = "attestation"
	// KindSBOM is a software bill of materials (SPDX, CycloneDX, Syft).
	KindSBOM Kind = "sbom"
	// KindReferrers is an index of artifacts only, as kept under the referrers
	// fallback tag.
	KindReferrers Kind = "referrers"
	// KindArtifact is any other OCI artifact that no runtime would run
	// (ORAS files, Helm charts, WASM modules with an artifact config).
	KindArtifact Kind = "artifact"
)

// IsArtifact reports whether k is a kind no container runtime runs: the rules
// that judge images (signature, config, secret, vulnerability) do not apply to
// it, and the decision says so in an exempt result.
func (k Kind) IsArtifact() bool {
	switch k {
	case KindSignature, KindAttestation, KindSBOM, KindReferrers, KindArtifact:
		return true
	}
	return false
}

// Classification is what Classify found in a manifest.
type Classification struct {
	// Kind is what the manifest is.
	Kind Kind `json:"kind"`
	// MediaType is the manifest's own mediaType field, "" when absent.
	MediaType string `json:"mediaType,omitempty"`
	// ArtifactType is the manifest's artifactType, "" when absent. It is
	// reported, never trusted: the config and layers decide.
	ArtifactType string `json:"artifactType,omitempty"`
	// Subject is the digest of the manifest's subject, "" when it has none. A
	// subject exempts nothing.
	Subject string `json:"subject,omitempty"`
	// Layers identify the layers (of a manifest) or entries (of an index), in
	// order: each descriptor's digest, followed by "#" and a hash of its
	// annotations when it has any (cosign keeps each signature in its layer's
	// annotations, so two signatures of one payload share a digest).
	Layers []string `json:"layers,omitempty"`
	// Problem says why the body is not a well-formed manifest (not JSON, both
	// an index and a manifest, no layers or entries at all); such a manifest
	// is judged as an image and a push of it is refused.
	Problem string `json:"problem,omitempty"`
}

// manifestShape is the part of a manifest or index Classify reads.
type manifestShape struct {
	SchemaVersion int              `json:"schemaVersion"`
	MediaType     string           `json:"mediaType"`
	ArtifactType  string           `json:"artifactType"`
	Config        *descriptorJSON  `json:"config"`
	Layers        []descriptorJSON `json:"layers"`
	Manifests     []descriptorJSON `json:"manifests"`
	Subject       *descriptorJSON  `json:"subject"`
	// FSLayers is Docker schema 1's list of layers.
	FSLayers    json.RawMessage   `json:"fsLayers"`
	Annotations map[string]string `json:"annotations"`
}

// descriptorJSON is an OCI content descriptor as Classify reads it.
type descriptorJSON struct {
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType"`
	Digest       string            `json:"digest"`
	Platform     json.RawMessage   `json:"platform"`
	Annotations  map[string]string `json:"annotations"`
}

// identity is the descriptor's digest, and a hash of its annotations when it has any.
func (d descriptorJSON) identity() string {
	if len(d.Annotations) == 0 {
		return d.Digest
	}
	b, _ := json.Marshal(d.Annotations) // map keys are sorted: canonical
	sum := sha256.Sum256(b)
	return d.Digest + "#" + hex.EncodeToString(sum[:8])
}

// Classify decides what a manifest is from its content: its config and layer
// media types for a manifest, its entries for an index. Neither the tag it is
// pushed under, nor its subject, nor its artifactType makes an image an
// artifact. A manifest is an image when its config is an image configuration
// (or has no media type a runtime would refuse) and at least one layer is an
// image layer (or it has none): that is what containerd and Docker run.
// Anything ambiguous or malformed is an image, with Problem set.
func Classify(body []byte) Classification {
	if len(body) == 0 {
		return Classification{Kind: KindUnknown}
	}
	var m manifestShape
	if err := json.Unmarshal(body, &m); err != nil {
		return Classification{Kind: KindImage, Problem: "not a JSON manifest: " + err.Error()}
	}
	c := Classification{MediaType: m.MediaType, ArtifactType: m.ArtifactType}
	if m.Subject != nil {
		c.Subject = m.Subject.Digest
	}
	isIndex := m.Manifests != nil || isIndexType(m.MediaType)
	isManifest := m.Config != nil || m.Layers != nil || len(m.FSLayers) > 0 || isManifestType(m.MediaType)
	switch {
	case isIndex && isManifest:
		c.Kind, c.Problem = KindImage, "the body is both an index (manifests) and an image manifest (config, layers or an image manifest media type)"
		return c
	case isIndex:
		for _, d := range m.Manifests {
			c.Layers = append(c.Layers, d.identity())
		}
		c.Kind = classifyIndex(m.Manifests)
		return c
	case len(m.FSLayers) > 0 || m.SchemaVersion == 1:
		c.Kind = KindImage // Docker schema 1: always an image
		return c
	case m.Config == nil && m.Layers == nil:
		c.Kind, c.Problem = KindImage, "neither an index (manifests) nor a manifest (config and layers)"
		return c
	}
	for _, l := range m.Layers {
		c.Layers = append(c.Layers, l.identity())
	}
	c.Kind = classifyManifest(m)
	return c
}

// classifyIndex tells an image index from an index of artifacts only: every
// entry names a non-image artifactType and no platform. Its entries are
// judged by their own content when a client fetches them.
func classifyIndex(entries []descriptorJSON) Kind {
	if len(entries) == 0 {
		return KindIndex
	}
	for _, d := range entries {
		if d.ArtifactType == "" || isImageConfigType(d.ArtifactType) || len(d.Platform) > 0 && string(d.Platform) != "null" {
			return KindIndex
		}
	}
	return KindReferrers
}

// classifyManifest decides on a manifest (not an index).
func classifyManifest(m manifestShape) Kind {
	configType := ""
	if m.Config != nil {
		configType = m.Config.MediaType
	}
	imageLayers := len(m.Layers) == 0
	for _, l := range m.Layers {
		if isImageLayerType(l.MediaType) {
			imageLayers = true
		}
	}
	if isImageConfigType(configType) && imageLayers {
		return KindImage
	}
	// Not runnable: its config or every layer is something no runtime unpacks.
	// Which artifact is decided by what it carries.
	for _, l := range m.Layers {
		ann := l.Annotations
		if ann["dev.sigstore.bundle.content"] == "" {
			ann = m.Annotations // cosign v3 annotates the manifest, not the layer
		}
		if k := artifactTypeKind(l.MediaType, ann); k != "" {
			return k
		}
	}
	if k := artifactTypeKind(m.ArtifactType, m.Annotations); k != "" {
		return k
	}
	if k := artifactTypeKind(configType, nil); k != "" {
		return k
	}
	return KindArtifact
}

// isIndexType reports whether mt is an index or manifest list media type.
func isIndexType(mt string) bool {
	return mt == "application/vnd.oci.image.index.v1+json" || mt == "application/vnd.docker.distribution.manifest.list.v2+json"
}

// isManifestType reports whether mt is an image manifest media type.
func isManifestType(mt string) bool {
	switch mt {
	case "application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json",
		"application/vnd.docker.distribution.manifest.v1+json", "application/vnd.docker.distribution.manifest.v1+prettyjws":
		return true
	}
	return false
}

// isImageConfigType reports whether a runtime could take mt as an image
// configuration: the OCI and Docker image config types, no type at all, and
// anything else in the OCI image or Docker namespaces (a runtime that does
// not know it may still try). The OCI empty descriptor and artifact configs
// are not.
func isImageConfigType(mt string) bool {
	mt = baseType(mt)
	return mt == "" || strings.HasPrefix(mt, "application/vnd.oci.image.") || strings.HasPrefix(mt, "application/vnd.docker.")
}

// isImageLayerType reports whether a runtime could unpack a layer of type mt:
// the OCI and Docker layer types (tar, gzip, zstd, foreign, nondistributable),
// no type at all, and anything else in those namespaces.
func isImageLayerType(mt string) bool {
	mt = baseType(mt)
	return mt == "" || strings.HasPrefix(mt, "application/vnd.oci.image.") || strings.HasPrefix(mt, "application/vnd.docker.")
}

// baseType drops media type parameters and lower-cases the type.
func baseType(mt string) string {
	mt, _, _ = strings.Cut(mt, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}

// artifactTypeKind maps an artifact or layer media type to a kind, "" when
// it is none of the known signature, attestation and SBOM types. annotations
// tell a sigstore bundle holding a DSSE envelope (an attestation) from one
// holding a message signature.
func artifactTypeKind(mt string, annotations map[string]string) Kind {
	mt = baseType(mt)
	switch {
	case mt == "application/vnd.dev.cosign.simplesigning.v1+json",
		mt == "application/vnd.dev.cosign.artifact.sig.v1+json",
		mt == "application/vnd.cncf.notary.signature":
		return KindSignature
	case strings.HasPrefix(mt, "application/vnd.dev.sigstore.bundle"):
		if annotations["dev.sigstore.bundle.content"] == "dsse-envelope" {
			return KindAttestation
		}
		return KindSignature
	case mt == "application/vnd.dsse.envelope.v1+json",
		strings.HasPrefix(mt, "application/vnd.in-toto"),
		mt == "application/vnd.dev.cosign.attestation.v1+json":
		return KindAttestation
	case strings.HasPrefix(mt, "text/spdx"),
		mt == "application/spdx+json",
		strings.HasPrefix(mt, "application/vnd.cyclonedx"),
		strings.HasPrefix(mt, "application/vnd.syft"),
		mt == "application/vnd.dev.cosign.artifact.sbom.v1+json":
		return KindSBOM
	}
	return ""
}
