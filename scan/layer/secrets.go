package layer

import (
	"github.com/portcullis-dev/portcullis/scan/secrets"
)

// MaxSecrets bounds the secrets one layer's Result lists; past it
// Result.SecretsOmitted counts the rest. A layer with that many is a
// credential dump, and one is enough to fail a check.
const MaxSecrets = 1000

// Secret is a secret found in one of a layer's files. Like secrets.Secret it
// holds only a redacted excerpt, never the credential.
type Secret struct {
	secrets.Secret
	// Replaced is set when a later entry of the same layer replaces the file:
	// a container does not see it, but the layer's blob still carries it.
	Replaced bool `json:"replaced,omitempty"`
}

// findSecrets records the secrets in the file at p, whose content is data.
func (a *analyzer) findSecrets(p string, data []byte) {
	found := secrets.Scan(p, data)
	if len(found) == 0 {
		return
	}
	if a.secretAt == nil {
		a.secretAt = map[string]int{}
	}
	for _, s := range found {
		if len(a.res.Secrets) == MaxSecrets {
			a.res.SecretsOmitted++
			continue
		}
		a.res.Secrets = append(a.res.Secrets, Secret{Secret: s})
		a.secretAt[p]++
	}
}

// replaced marks the secrets found so far at p as replaced by a later entry.
func (a *analyzer) replaced(p string) {
	for i := range a.res.Secrets {
		if a.res.Secrets[i].Path == p {
			a.res.Secrets[i].Replaced = true
		}
	}
	delete(a.secretAt, p)
}

// ImageSecret is a secret found in a file of one of an image's layers.
type ImageSecret struct {
	Secret
	// Layer is the diffID of the layer whose blob holds the file.
	Layer string `json:"layer"`
	// Index is the layer's position in the image, 0 for the lowest.
	Index int `json:"index"`
	// Hidden is set when a container does not see the file: a higher layer
	// deletes it (a whiteout, an opaque directory) or replaces it or one of
	// its directories, or a later entry of its own layer replaces it. The
	// image's blobs still carry the secret: anyone who pulls the image can
	// read it.
	Hidden bool `json:"hidden,omitempty"`
}

// ImageSecrets returns the secrets of every layer of an image, lowest layer
// first (layers as for Squash): all of them, not only those a container
// sees, since every layer's blob is pulled whole.
func ImageSecrets(layers []Result) []ImageSecret {
	var out []ImageSecret
	for i := range layers {
		l := &layers[i]
		if len(l.Secrets) == 0 {
			continue
		}
		// What remains of the layer's secret-bearing files once the layers
		// above are applied.
		v := view{}
		for _, s := range l.Secrets {
			if v[s.Path] == nil {
				v[s.Path] = &viewEntry{layer: i, hashes: ancestorHashes(s.Path)}
			}
		}
		for j := i + 1; j < len(layers) && len(v) > 0; j++ {
			v.hide(&layers[j])
		}
		for _, s := range l.Secrets {
			out = append(out, ImageSecret{Secret: s, Layer: l.DiffID, Index: i, Hidden: s.Replaced || v[s.Path] == nil})
		}
	}
	return out
}
