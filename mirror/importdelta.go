package mirror

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// onPremRole names what a manifest listed in the bundle manifest is to its image.
type onPremRole struct {
	digest, role string
}

// confirmOnPrem checks, before anything is written, that every manifest the bundle
// manifest lists for its images (the image itself, its carried children, its referrers)
// and that the layout does not hold (a delta left it out: the inventory said the on-prem
// repository had it) is present on-prem: a HEAD by digest through the gateway. An answer
// of 200, or the gateway's policy refusal (403 DENIED: it found the manifest and judged
// it), confirms it. A manifest absent on-prem makes the bundle unusable here: the error
// names the image and says to collect again without --have.
func (im *importer) confirmOnPrem(m *BundleManifest) error {
	for i, img := range m.Images {
		want := []onPremRole{{img.Digest, "the image's manifest"}}
		for _, c := range img.Children {
			role := "its child manifest"
			if c.Platform != "" {
				role += " for " + c.Platform
			}
			want = append(want, onPremRole{c.Digest, role})
		}
		for _, r := range img.Referrers {
			role := "its referrer"
			if r.Tag != "" {
				role += " " + r.Tag
			} else if r.ArtifactType != "" {
				role += " (" + r.ArtifactType + ")"
			}
			want = append(want, onPremRole{r.Digest, role})
		}
		for _, w := range want {
			if _, inBundle := im.plan.sizes[w.digest]; inBundle {
				continue
			}
			if err := im.ctx.Err(); err != nil {
				return err
			}
			present, err := im.presentOnPrem(img.Name, w.digest)
			if err != nil {
				return fmt.Errorf("images[%d] %s: confirming that %s %s is on-prem: %w", i, targetRef(img), w.role, w.digest, err)
			}
			if !present {
				return fmt.Errorf("images[%d] %s: %s %s is neither in the bundle%s nor on-prem in %s: collect the bundle again without --have (or with an inventory of this registry taken now)",
					i, targetRef(img), w.role, w.digest, deltaNote(m.Delta), img.Name)
			}
		}
	}
	return nil
}

// presentOnPrem says whether repository repoName holds manifest digest, asked through
// the gateway.
func (im *importer) presentOnPrem(repoName, digest string) (bool, error) {
	repo, err := im.repo(repoName)
	if err != nil {
		return false, err
	}
	d, err := remote.Head(repo.Digest(digest), im.remote()...)
	switch {
	case err == nil && d.Digest.String() == digest:
		return true, nil
	case err == nil:
		return false, fmt.Errorf("the gateway answered for digest %s", d.Digest)
	case isNotFound(err):
		return false, nil
	case isForbidden(err):
		// A HEAD's 403 has no body, and a registry refusing the credential answers 403
		// DENIED too: only the gateway's policy refusal says the manifest was found and
		// judged. Ask again with a GET, whose body tells the two apart.
		_, gerr := remote.Get(repo.Digest(digest), im.remote()...)
		if gerr == nil || policyRefused(gerr) {
			return true, nil
		}
		err = gerr
	}
	return false, err
}

// isForbidden says whether err is a 403.
func isForbidden(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == http.StatusForbidden
}

// policyRefused says whether err is the gateway's policy refusal of a manifest: 403
// DENIED whose message is the policy's "denied by policy (environment …)".
func policyRefused(err error) bool {
	var te *transport.Error
	if !errors.As(err, &te) || te.StatusCode != http.StatusForbidden {
		return false
	}
	for _, d := range te.Errors {
		if d.Code == transport.DeniedErrorCode && strings.HasPrefix(d.Message, "denied by policy") {
			return true
		}
	}
	return false
}

// manifestBytes returns manifest digest for repository repo: from the layout, else (a
// delta left it out) from on-prem through the gateway, checked against its digest.
func (im *importer) manifestBytes(repo string, digest string) ([]byte, error) {
	if _, ok := im.plan.sizes[digest]; ok {
		return im.plan.read(digest)
	}
	r, err := im.repo(repo)
	if err != nil {
		return nil, err
	}
	d, err := remote.Get(r.Digest(digest), im.remote()...)
	if err != nil {
		return nil, fmt.Errorf("%s@%s is not in the bundle (a delta), reading it on-prem: %w", repo, digest, err)
	}
	if len(d.Manifest) > maxManifestBytes {
		return nil, fmt.Errorf("%s@%s on-prem is larger than %d bytes", repo, digest, maxManifestBytes)
	}
	sum, _, err := v1.SHA256(strings.NewReader(string(d.Manifest)))
	if err != nil {
		return nil, err
	}
	if sum.String() != digest {
		return nil, fmt.Errorf("%s@%s on-prem: its bytes hash to %s", repo, digest, sum)
	}
	return d.Manifest, nil
}

// targetRef names an image by its on-prem name: name:tag, or name@digest.
func targetRef(img Image) string {
	if img.Tag != "" {
		return img.Name + ":" + img.Tag
	}
	return img.Name + "@" + img.Digest
}

func deltaNote(d *Delta) string {
	if d == nil {
		return ""
	}
	return fmt.Sprintf(" (a delta against the inventory of %s taken %s left it out)", d.Registry, d.InventoryCreated.Format("2006-01-02T15:04:05Z"))
}

// partialIndexHint explains the registry's refusal (msg) of an index some of whose
// children the bundle does not carry (a platform filter): registries that require every
// child of an index to be present refuse it, whatever the policy says. A refusal by the
// gateway's policy (DENIED) gets no hint.
func (im *importer) partialIndexHint(msg string, data []byte) string {
	if strings.Contains(msg, string(transport.DeniedErrorCode)+": ") {
		return ""
	}
	var m manifestShape
	if err := jsonUnmarshal(data, &m); err != nil || len(m.Manifests) == 0 {
		return ""
	}
	missing := 0
	for _, c := range m.Manifests {
		if _, ok := im.plan.sizes[c.Digest]; !ok {
			missing++
		}
	}
	if missing == 0 {
		return ""
	}
	return fmt.Sprintf(" (the bundle carries %d of the index's %d children, as the mirror file's platforms asked; the index is kept byte for byte, so it still names the others: the on-prem registry must accept an index whose children are not all present, e.g. distribution's validation.manifests.indexes.platforms: none, or carry every platform)", len(m.Manifests)-missing, len(m.Manifests))
}
