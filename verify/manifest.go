package verify

import (
	"encoding/json"
	"errors"
	"mime"
	"strings"
)

// Media types and annotations of the formats verify reads.
const (
	mediaTypeOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeOCIIndex       = "application/vnd.oci.image.index.v1+json"
	mediaTypeSimpleSigning  = "application/vnd.dev.cosign.simplesigning.v1+json"
	// mediaTypeCosignSignature is the artifact type (and config media type) of a cosign
	// signature pushed as an OCI 1.1 referrer instead of a `.sig` tag.
	mediaTypeCosignSignature = "application/vnd.dev.cosign.artifact.sig.v1+json"
	// mediaTypeBundlePrefix starts every sigstore bundle media type:
	// "application/vnd.dev.sigstore.bundle.v0.3+json" and the older
	// "application/vnd.dev.sigstore.bundle+json;version=0.x".
	mediaTypeBundlePrefix = "application/vnd.dev.sigstore.bundle"

	annotationSignature   = "dev.cosignproject.cosign/signature"
	annotationCertificate = "dev.sigstore.cosign/certificate"
	annotationRekorBundle = "dev.sigstore.cosign/bundle"
)

// descriptor is an OCI content descriptor.
type descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

// manifest is the part of an OCI image manifest or index verify reads.
type manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	ArtifactType  string       `json:"artifactType"`
	Config        *descriptor  `json:"config"`
	Layers        []descriptor `json:"layers"`
	Manifests     []descriptor `json:"manifests"`
	Subject       *descriptor  `json:"subject"`
	// Annotations are the manifest's; unsigned, they only ever spare a read.
	Annotations map[string]string `json:"annotations"`
}

// parseManifest parses a manifest or index. Its media type is the body's mediaType, or
// the registry's Content-Type when the body has none; a body contradicting the
// Content-Type is an error.
func parseManifest(body []byte, contentType string) (manifest, error) {
	if err := checkJSONObject(body); err != nil {
		return manifest{}, err
	}
	var m manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return manifest{}, err
	}
	if m.SchemaVersion != 2 {
		return manifest{}, errors.New("schemaVersion is not 2")
	}
	ct, _, _ := mime.ParseMediaType(contentType)
	switch {
	case m.MediaType == "":
		m.MediaType = ct
	case ct != "" && ct != m.MediaType && ct != "application/json" && ct != "application/octet-stream":
		return manifest{}, errors.New("mediaType " + quote(m.MediaType) + " contradicts the registry's Content-Type " + quote(ct))
	}
	return m, nil
}

// isImageManifest reports whether mt is an image manifest media type a `.sig` tag may have.
func isImageManifest(mt string) bool {
	return mt == mediaTypeOCIManifest || mt == mediaTypeDockerManifest
}

// isBundleMediaType reports whether mt is a sigstore bundle media type.
func isBundleMediaType(mt string) bool {
	return strings.HasPrefix(mt, mediaTypeBundlePrefix)
}
