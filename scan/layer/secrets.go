package layer

import (
	"context"

	"github.com/portcullis-dev/portcullis/scan/bytesize"
	"github.com/portcullis-dev/portcullis/scan/secrets"
)

// MaxSecrets bounds the secrets of each confidence level one layer's Result
// lists; past it Result.SecretsOmitted counts the rest (SecretsOmittedBy
// per level). A layer with that many is a credential dump, and one is
// enough to fail a check. Each level has its own cap: a flood of
// low-confidence findings never pushes out a private key.
const MaxSecrets = 1000

// Secret is a secret found in one of a layer's files. Like secrets.Secret it
// holds only a redacted excerpt, never the credential.
type Secret struct {
	secrets.Secret
	// Replaced is set when a later entry of the same layer replaces the file:
	// a container does not see it, but the layer's blob still carries it.
	Replaced bool `json:"replaced,omitempty"`
}

// secretState is the secret search's part of an analysis.
type secretState struct {
	// at indexes this layer's Result.Secrets by path, so that a later entry
	// at the same path marks them Replaced.
	at map[string][]int
	// kept counts Result.Secrets by level.
	kept secrets.Counts
}

// wantsSecrets reports whether the secret search reads the file at p, of
// size bytes; a file it passes over that could hold a secret (too large)
// is listed as not searched.
func (a *analyzer) wantsSecrets(p string, size int64) bool {
	if !a.limits.Secrets {
		return false
	}
	skip, reason := secrets.Skip(p, size)
	if !skip && size > a.limits.MaxFileBytes {
		skip, reason = true, "over "+bytesize.Format(a.limits.MaxFileBytes)
	}
	if reason != "" {
		a.notSearched(secrets.NotSearched{Path: p, Reason: reason})
	}
	return !skip
}

// notSearched records a file the secret search did not read in full.
func (a *analyzer) notSearched(n secrets.NotSearched) {
	a.res.SecretsNotSearchedCount++
	if len(a.res.SecretsNotSearched) < secrets.MaxNotSearched {
		a.res.SecretsNotSearched = append(a.res.SecretsNotSearched, n)
	}
}

// linkSecrets lists a link as not searched when it leads from a path the
// secret search reads to one it skips by design (secrets.Excluded): what
// the target holds is read at the link's path, and was not searched. A
// link to a file not searched for another reason (too large) needs
// nothing: that file is listed already, in its own layer.
func (a *analyzer) linkSecrets(l Link) {
	if a.limits.Secrets && !secrets.Excluded(l.Path) && secrets.Excluded(l.Target) {
		a.notSearched(secrets.NotSearched{Path: l.Path, Reason: "links to " + l.Target + ", which the secret search skips"})
	}
}

// findSecrets records the secrets in the file at p, whose content is data,
// and in the archives it is, under the analysis's deadline.
func (a *analyzer) findSecrets(p string, data []byte) {
	ctx := a.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	rep, _ := secrets.Search(ctx, p, data, secrets.Options{MaxDepth: a.limits.MaxDepth})
	// A search stopped by the deadline lists the file as not searched; the
	// walk sees the deadline at its next read and marks the layer incomplete.
	for _, n := range rep.NotSearched {
		a.notSearched(n)
	}
	a.res.SecretsNotSearchedCount += rep.NotSearchedCount - len(rep.NotSearched)
	a.omitted(rep.Omitted)
	if len(rep.Secrets) == 0 {
		return
	}
	if a.sec.at == nil {
		a.sec.at = map[string][]int{}
	}
	for _, s := range rep.Secrets {
		if a.sec.kept.Of(s.Confidence) >= MaxSecrets {
			a.omitted(oneOf(s.Confidence))
			continue
		}
		a.sec.kept.Add(s.Confidence, 1)
		a.sec.at[p] = append(a.sec.at[p], len(a.res.Secrets))
		a.res.Secrets = append(a.res.Secrets, Secret{Secret: s})
	}
}

func (a *analyzer) omitted(c secrets.Counts) {
	a.res.SecretsOmittedBy = a.res.SecretsOmittedBy.Plus(c)
	a.res.SecretsOmitted += c.Total()
}

func oneOf(c secrets.Confidence) secrets.Counts {
	var n secrets.Counts
	n.Add(c, 1)
	return n
}

// replaced marks the secrets found so far at p as replaced by a later entry.
func (a *analyzer) replaced(p string) {
	for _, i := range a.sec.at[p] {
		a.res.Secrets[i].Replaced = true
	}
	delete(a.sec.at, p)
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
