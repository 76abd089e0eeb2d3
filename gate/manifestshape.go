package gate

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Manifest media types the scanner knows.
const (
	MediaTypeOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeOCIIndex       = "application/vnd.oci.image.index.v1+json"
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// ManifestShape is what a manifest is, by its media type and its fields together.
type ManifestShape int

const (
	// ShapeImage is an image manifest: a config and layers, no manifests.
	ShapeImage ManifestShape = iota + 1
	// ShapeIndex is an image index (manifest list): manifests, no config or layers.
	ShapeIndex
)

// ClassifyManifest says whether body, served with media type served (a Content-Type, ""
// when unknown), is an image manifest or an index, and refuses one whose media type and
// shape disagree: an image manifest carrying "manifests", an index carrying "config" or
// "layers", a body whose mediaType differs from the one it was served as, or a manifest of
// unknown type that has both shapes or neither. A consumer that picks the shape by one of
// the two would otherwise run what a scanner that picked the other never looked at. Field
// names are matched as Go's encoding/json (containerd, distribution) matches them:
// case-insensitively, the last of duplicate keys winning.
func ClassifyManifest(body []byte, served string) (ManifestShape, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return 0, fmt.Errorf("the manifest is not a JSON object: %w", err)
	}
	var mediaType string
	has := map[string]bool{}
	for k, v := range fields {
		key := strings.ToLower(k)
		switch key {
		case "mediatype":
			var mt string
			if err := json.Unmarshal(v, &mt); err != nil {
				return 0, fmt.Errorf("the manifest's mediaType is not a string")
			}
			if mediaType != "" && mt != mediaType {
				return 0, fmt.Errorf("the manifest has two mediaType fields, %q and %q", mediaType, mt)
			}
			mediaType = mt
		case "config", "layers", "manifests":
			has[key] = has[key] || string(v) != "null"
		}
	}
	served, _, _ = strings.Cut(served, ";")
	served = strings.TrimSpace(served)
	declared := mediaType
	switch {
	case declared == "":
		declared = served
	case served != "" && served != mediaType && knownManifestType(served):
		return 0, fmt.Errorf("the manifest says its mediaType is %q but was served as %q", mediaType, served)
	}
	image := has["config"] || has["layers"]
	switch declared {
	case MediaTypeOCIManifest, MediaTypeDockerManifest:
		if has["manifests"] {
			return 0, fmt.Errorf("an image manifest (%s) carrying \"manifests\", as an index would: refused, since a reader taking it for an index would skip its layers", declared)
		}
		if !has["config"] {
			return 0, fmt.Errorf("an image manifest (%s) without a config", declared)
		}
		return ShapeImage, nil
	case MediaTypeOCIIndex, MediaTypeDockerList:
		if image {
			return 0, fmt.Errorf("an image index (%s) carrying \"config\" or \"layers\", as an image manifest would: refused, since a reader taking it for an image would skip its manifests", declared)
		}
		if !has["manifests"] {
			return 0, fmt.Errorf("an image index (%s) without manifests", declared)
		}
		return ShapeIndex, nil
	}
	switch {
	case image && has["manifests"]:
		return 0, fmt.Errorf("a manifest of media type %q carrying both \"manifests\" and \"config\" or \"layers\": neither an image nor an index", declared)
	case has["manifests"]:
		return ShapeIndex, nil
	case has["config"]:
		return ShapeImage, nil
	}
	return 0, fmt.Errorf("a manifest of media type %q with neither a config nor manifests: not an image", declared)
}

// knownManifestType reports whether mt is an image manifest or index media type.
func knownManifestType(mt string) bool {
	switch mt {
	case MediaTypeOCIManifest, MediaTypeDockerManifest, MediaTypeOCIIndex, MediaTypeDockerList:
		return true
	}
	return false
}
