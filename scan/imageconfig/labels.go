package imageconfig

import "strings"

// Annotation and label keys for the base image, from the OCI image spec's
// pre-defined annotations.
const (
	// AnnotationBaseName is the base image's reference, e.g. "docker.io/library/debian:12".
	AnnotationBaseName = "org.opencontainers.image.base.name"
	// AnnotationBaseDigest is the base image's manifest digest.
	AnnotationBaseDigest = "org.opencontainers.image.base.digest"
)

// BaseImage returns the image this one was built on, as recorded by the
// org.opencontainers.image.base.name and .base.digest keys: each is taken
// from the manifest annotations if set there, else from the config's labels.
// Either is empty when neither records it.
func BaseImage(cfg *Config, annotations map[string]string) (name, digest string) {
	var labels map[string]string
	if cfg != nil {
		labels = cfg.Config.Labels
	}
	pick := func(key string) string {
		if v := strings.TrimSpace(annotations[key]); v != "" {
			return v
		}
		return strings.TrimSpace(labels[key])
	}
	return pick(AnnotationBaseName), pick(AnnotationBaseDigest)
}

// MissingLabels returns the required labels the config does not set, or sets
// to an empty or blank value, in the order given and each once.
func MissingLabels(cfg *Config, required []string) []string {
	var labels map[string]string
	if cfg != nil {
		labels = cfg.Config.Labels
	}
	var missing []string
	seen := map[string]bool{}
	for _, key := range required {
		if seen[key] {
			continue
		}
		seen[key] = true
		if strings.TrimSpace(labels[key]) == "" {
			missing = append(missing, key)
		}
	}
	return missing
}
