package policy

import (
	"encoding/json"
	"fmt"
	"strings"
)

// PlatformEvidence is what the gateway found about the platforms a manifest is for. The
// gate gathers it when Needs.Platform is true: from the body of an index, from the
// configuration blob of an image.
type PlatformEvidence struct {
	// Index is true for an image index (an OCI index or a Docker manifest list).
	Index bool `json:"index,omitempty"`
	// Platforms are the platforms that count: an index's entries that are images with a
	// valid platform (attestation manifests, unknown/unknown, missing, empty or oversized
	// fields do not count), or an image configuration's os, architecture and variant.
	// Duplicates are listed once.
	Platforms []Platform `json:"platforms,omitempty"`
	// Entries is how many entries an index has.
	Entries int `json:"entries,omitempty"`
	// Uncounted says, for people, which entries of an index did not count and why, e.g.
	// "2 attestation manifests"; "" when all counted.
	Uncounted string `json:"uncounted,omitempty"`
}

// maxPlatformsListed bounds how many platforms a finding names.
const maxPlatformsListed = 8

// attestationRefType is the annotation value Docker's buildx puts on the index entries
// of its attestation manifests (whose platform is unknown/unknown).
const attestationRefType = "attestation-manifest"

// IndexPlatforms reads the platforms of an image index body. An entry counts when it is
// an image manifest or a nested index (by media type, or with no media type and no
// non-image artifactType), is not an attestation manifest
// (vnd.docker.reference.type: attestation-manifest), and has a platform whose os and
// architecture are present, valid and not "unknown". It never fails: a body that is not
// an index has no platforms.
func IndexPlatforms(body []byte) PlatformEvidence {
	var idx struct {
		Manifests []struct {
			MediaType    string            `json:"mediaType"`
			ArtifactType string            `json:"artifactType"`
			Platform     json.RawMessage   `json:"platform"`
			Annotations  map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	ev := PlatformEvidence{Index: true}
	if err := json.Unmarshal(body, &idx); err != nil {
		ev.Uncounted = "the index is not valid JSON"
		return ev
	}
	ev.Entries = len(idx.Manifests)
	why := map[string]int{}
	var order []string
	skip := func(reason string) {
		if why[reason] == 0 {
			order = append(order, reason)
		}
		why[reason]++
	}
	for _, m := range idx.Manifests {
		switch {
		case m.Annotations["vnd.docker.reference.type"] == attestationRefType:
			skip("attestation manifest")
			continue
		case m.MediaType != "" && !knownImageManifest(m.MediaType):
			skip("entry that is not an image manifest")
			continue
		case m.ArtifactType != "" && !isImageConfigType(m.ArtifactType):
			skip("artifact entry")
			continue
		}
		p, reason := descriptorPlatform(m.Platform)
		if reason != "" {
			skip(reason)
			continue
		}
		if !containsPlatform(ev.Platforms, p) {
			ev.Platforms = append(ev.Platforms, p)
		}
	}
	var parts []string
	for _, r := range order {
		parts = append(parts, fmt.Sprintf("%d %s", why[r], r))
	}
	ev.Uncounted = strings.Join(parts, ", ")
	return ev
}

// ConfigPlatform reads the platform of an image configuration blob (its os,
// architecture and variant fields); ok is false when it names no valid platform.
func ConfigPlatform(config []byte) (p Platform, ok bool) {
	var c struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
		Variant      string `json:"variant"`
	}
	if err := json.Unmarshal(config, &c); err != nil {
		return Platform{}, false
	}
	return validPlatform(c.OS, c.Architecture, c.Variant)
}

// descriptorPlatform reads an index entry's platform; reason says why it does not count.
func descriptorPlatform(raw json.RawMessage) (Platform, string) {
	if len(raw) == 0 || string(raw) == "null" {
		return Platform{}, "entry without a platform"
	}
	var d struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
		Variant      string `json:"variant"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return Platform{}, "entry with a malformed platform"
	}
	if strings.EqualFold(d.OS, "unknown") || strings.EqualFold(d.Architecture, "unknown") {
		return Platform{}, "entry for platform unknown/unknown"
	}
	p, ok := validPlatform(d.OS, d.Architecture, d.Variant)
	if !ok {
		return Platform{}, "entry with a missing or invalid platform"
	}
	return p, ""
}

// validPlatform checks the fields of a platform found in an image: each present (a
// variant may be absent), a short plain token, not "unknown". It does not require a known
// architecture: the image's platform is what it is, and simply runs on no declared node.
func validPlatform(os, arch, variant string) (Platform, bool) {
	p := Platform{OS: strings.ToLower(os), Architecture: strings.ToLower(arch), Variant: strings.ToLower(variant)}
	if !platformToken.MatchString(p.OS) || !platformToken.MatchString(p.Architecture) ||
		p.Variant != "" && !platformToken.MatchString(p.Variant) || p.OS == "unknown" || p.Architecture == "unknown" {
		return Platform{}, false
	}
	return p, true
}

// knownImageManifest reports whether mt is an image manifest or index media type.
func knownImageManifest(mt string) bool {
	switch mt {
	case "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
		"application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.distribution.manifest.list.v2+json":
		return true
	}
	return false
}

// containsPlatform reports whether ps has p.
func containsPlatform(ps []Platform, p Platform) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

// platformList names up to maxPlatformsListed platforms.
func platformList(ps []Platform) string {
	var names []string
	for i, p := range ps {
		if i == maxPlatformsListed {
			names = append(names, fmt.Sprintf("and %d more", len(ps)-i))
			break
		}
		names = append(names, p.String())
	}
	return strings.Join(names, ", ")
}
