package policy

// ImageEvidence is what the gateway found in an image's configuration (and, once layers
// are scanned, its files). The gate gathers it when Needs.Image is true.
type ImageEvidence struct {
	// Index is true for an image index: config and secret rules judge its platform
	// manifests, each when it is pushed or pulled on its own.
	Index bool `json:"index,omitempty"`
	// User is the configured user, "" when none is set.
	User string `json:"user,omitempty"`
	// RunsAsRoot says the image's processes run as root; RootReason says why.
	RunsAsRoot bool   `json:"runsAsRoot,omitempty"`
	RootReason string `json:"rootReason,omitempty"`
	// BaseImage is the base image named by org.opencontainers.image.base.name, "" if none.
	BaseImage string `json:"baseImage,omitempty"`
	// Labels are the image's labels.
	Labels map[string]string `json:"labels,omitempty"`
	// Secrets are the secrets found, each redacted.
	Secrets []SecretFinding `json:"secrets,omitempty"`
	// LayersScanned is true when layer files were searched too, not just the config.
	LayersScanned bool `json:"layersScanned,omitempty"`
}

// SecretFinding is one secret found in an image.
type SecretFinding struct {
	// Type names the kind of secret, e.g. "aws-access-key-id", "private-key".
	Type string `json:"type"`
	// Location says where: "config Env AWS_SECRET", "/app/.env:3", "history[4]".
	Location string `json:"location"`
	// Excerpt is a redacted excerpt, never the secret.
	Excerpt string `json:"excerpt,omitempty"`
}
