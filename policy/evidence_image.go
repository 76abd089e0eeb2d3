package policy

import "strconv"

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
	// LayersIncomplete, when layers were scanned, says which layer analyses stopped at a
	// limit, so that some of their files may not have been searched; "" when none did.
	LayersIncomplete string `json:"layersIncomplete,omitempty"`
	// Mismatched are the layers whose content is not what the configuration's diff_ids
	// say; secret and vulnerability rules deny such an image.
	Mismatched []LayerMismatch `json:"mismatched,omitempty"`
	// Unsearched are files of the layers the secret search did not read in full, at most
	// a few hundred of them; UnsearchedOmitted counts those past that. A secret rule with
	// unsearched: fail or warn judges them.
	Unsearched        []UnsearchedFile `json:"unsearched,omitempty"`
	UnsearchedOmitted int              `json:"unsearchedOmitted,omitempty"`
}

// SecretFinding is one secret found in an image.
type SecretFinding struct {
	// Type names the kind of secret, e.g. "aws-access-key-id", "private-key".
	Type string `json:"type"`
	// Location says where: "config Env AWS_SECRET", "history[4]", or for a layer file
	// its path and line, "/app/.env:3".
	Location string `json:"location"`
	// Excerpt is a redacted excerpt, never the secret.
	Excerpt string `json:"excerpt,omitempty"`
	// Layer is the diffID of the layer whose file holds the secret; "" for a secret in
	// the image configuration.
	Layer string `json:"layer,omitempty"`
	// LayerNumber is that layer's position in the image, 1 for the lowest (the base
	// image's first layer); 0 for the configuration.
	LayerNumber int `json:"layerNumber,omitempty"`
	// Deleted is set when a later layer deletes or replaces the file: a container does
	// not see it, but the layer's blob, pulled with the image, still carries it.
	Deleted bool `json:"deleted,omitempty"`
}

// Where names where the secret is, for people: the location, and for a layer file its
// layer, "/app/id_rsa:1 in layer 3 (sha256:0123456789ab…)", noting when a later layer
// deletes it.
func (s SecretFinding) Where() string {
	if s.Layer == "" {
		return s.Location
	}
	w := s.Location + " in layer "
	if s.LayerNumber > 0 {
		w += strconv.Itoa(s.LayerNumber) + " "
	}
	w += "(" + shortDigest(s.Layer) + ")"
	if s.Deleted {
		w += ", deleted in a later layer but still in the image's blobs"
	}
	return w
}
