package mirror

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/verify"
)

// Publisher is what collect verified of an image's publisher signature: an image whose
// repository has publisher authorities is carried only with one.
type Publisher struct {
	// Authorities are the publisher authorities the image was checked against; a
	// signature by any one of them suffices.
	Authorities []string `json:"authorities"`
	// Verified are the names of the authorities whose signature verified, sorted.
	Verified []string `json:"verified"`
	// Signatures are the signatures that verified.
	Signatures []PublisherSignature `json:"signatures"`
}

// PublisherSignature is one publisher signature that verified.
type PublisherSignature struct {
	// Authority is the name of the authority whose key verified it.
	Authority string `json:"authority"`
	// Format is "legacy" (cosign's sha256-<hex>.sig tag) or "bundle" (a sigstore bundle
	// or cosign signature stored as an OCI referrer).
	Format string `json:"format"`
	// Artifact is the digest of the manifest that carried it.
	Artifact string `json:"artifact"`
}

// Unverified is a pinned image no publisher authority's signature verified: collect
// refuses to write the bundle, or, when told to, leaves the image out.
type Unverified struct {
	// Source is the image's repository in its source registry.
	Source string `json:"source"`
	// Name is the on-prem repository it maps onto.
	Name string `json:"name"`
	// Tag is the tag selected, "" for an image named by digest.
	Tag string `json:"tag,omitempty"`
	// Digest is the pinned digest that was checked (an index's own digest).
	Digest string `json:"digest"`
	// Authorities are the publisher authorities any one of which had to have signed it.
	Authorities []string `json:"authorities"`
	// Found says what signatures were found and why none counted.
	Found []string `json:"found"`
	// SignCommands are how the authorities sign, where the mirror file says.
	SignCommands []string `json:"signCommands,omitempty"`
}

// String names the image, its digest and the authorities it lacks a signature of, then
// what was found instead.
func (u Unverified) String() string {
	ref := u.Source + "@" + u.Digest
	if u.Tag != "" {
		ref = u.Source + ":" + u.Tag + " (" + u.Digest + ")"
	}
	who := "publisher authority " + u.Authorities[0]
	if len(u.Authorities) > 1 {
		who = "any of the publisher authorities " + strings.Join(u.Authorities, ", ")
	}
	s := fmt.Sprintf("%s has no valid signature by %s: %s", ref, who, strings.Join(u.Found, "; "))
	if len(u.SignCommands) > 0 {
		s += " (the publisher signs with: " + strings.Join(u.SignCommands, " or ") + ")"
	}
	return s
}

// UnverifiedError is Write's refusal of a plan holding images that failed publisher
// verification.
type UnverifiedError struct {
	// Images are the images that failed, in mirror file order.
	Images []Unverified
}

// Error lists the images, one per line.
func (e *UnverifiedError) Error() string {
	lines := make([]string, 0, len(e.Images)+1)
	noun := "image fails"
	if len(e.Images) > 1 {
		noun = "images fail"
	}
	lines = append(lines, fmt.Sprintf("refusing to write the bundle: %d %s publisher signature verification", len(e.Images), noun))
	for _, u := range e.Images {
		lines = append(lines, "  "+u.String())
	}
	return strings.Join(lines, "\n")
}

// checkPublisher verifies repo@digest against auths. A nil *Unverified with a nil error
// means it passed; an error means the source could not be read.
func (w *walker) checkPublisher(repo name.Repository, img Image, auths []policy.Authority) (*Publisher, *Unverified, error) {
	v := w.verifiers[repo.RegistryStr()]
	if v == nil {
		v = verify.New(sourceRegistry{reg: repo.Registry, opts: w.opts})
		w.verifiers[repo.RegistryStr()] = v
	}
	names := make([]string, len(auths))
	va := make([]verify.Authority, len(auths))
	var signCommands []string
	for i, a := range auths {
		names[i] = a.Name
		va[i] = verify.Authority{Name: a.Name, Key: a.PublicKey}
		if k := a.Keyless; k != nil {
			va[i].Keyless = &verify.Keyless{Issuer: k.Issuer, Subject: k.Subject, SubjectRegExp: k.SubjectRegExp, TrustedRoot: k.TrustedRootJSON}
		}
		if a.SignCommand != "" {
			signCommands = append(signCommands, a.SignCommand)
		}
	}
	goal := verify.Goal{Requirements: []verify.Requirement{{Authorities: names, Threshold: 1}}}
	res, err := v.Verify(w.ctx, repo.RepositoryStr(), img.Digest, va, goal)
	if err != nil {
		return nil, nil, fmt.Errorf("verifying the publisher signature of %s: %w", sourceRef(img), err)
	}
	if verified := res.Authorities(); len(verified) > 0 {
		p := &Publisher{Authorities: names, Verified: verified}
		for _, s := range res.Verified {
			p.Signatures = append(p.Signatures, PublisherSignature{Authority: s.Authority, Format: string(s.Format), Artifact: s.Artifact})
		}
		return p, nil, nil
	}
	u := &Unverified{Source: img.Source, Name: img.Name, Tag: img.Tag, Digest: img.Digest, Authorities: names, SignCommands: signCommands}
	for _, r := range res.Rejected {
		u.Found = append(u.Found, fmt.Sprintf("%s signature %s: %s (%s)", formatName(r.Format), r.Artifact, r.Detail, r.Kind))
	}
	if len(u.Found) == 0 {
		u.Found = []string{"it carries no cosign signature (no .sig tag, no signature referrer)"}
		if types.MediaType(img.MediaType).IsIndex() {
			u.Found[0] += "; a multi-platform image is signed by its index digest (cosign sign " + img.Source + "@" + img.Digest + "), not by its platform manifests"
		}
	}
	return nil, u, nil
}

// formatName names a signature format for people.
func formatName(f verify.Format) string {
	switch f {
	case verify.FormatLegacy:
		return "cosign .sig tag"
	case verify.FormatBundle:
		return "referrer"
	}
	return string(f)
}

// sourceRef is the source repo:tag@digest, or repo@digest.
func sourceRef(img Image) string {
	if img.Tag != "" {
		return img.Source + ":" + img.Tag + "@" + img.Digest
	}
	return img.Source + "@" + img.Digest
}

// sourceRegistry is a source registry as the verify package reads it, through
// go-containerregistry with collect's options (authentication, transport). Repository
// names are paths within reg.
type sourceRegistry struct {
	reg  name.Registry
	opts []remote.Option
}

// notFound answers verify's "not found" for a registry's 404.
func notFound(err error) error {
	if isNotFound(err) {
		return fmt.Errorf("%w: %v", verify.ErrNotFound, err)
	}
	return err
}

func (s sourceRegistry) ref(repo, ref string) name.Reference {
	r := s.reg.Repo(repo)
	if strings.HasPrefix(ref, "sha256:") {
		return r.Digest(ref)
	}
	return r.Tag(ref)
}

// Manifest reads repo:ref or repo@ref, capped at maxManifestBytes.
func (s sourceRegistry) Manifest(ctx context.Context, repo, ref string) ([]byte, string, error) {
	d, err := remote.Get(s.ref(repo, ref), append(s.opts, remote.WithContext(ctx))...)
	if err != nil {
		return nil, "", notFound(err)
	}
	if len(d.Manifest) > maxManifestBytes {
		return nil, "", fmt.Errorf("manifest %s/%s %s: %w", s.reg, repo, ref, verify.ErrTooLarge)
	}
	if strings.HasPrefix(ref, "sha256:") && digestOf(d.Manifest) != ref {
		return nil, "", fmt.Errorf("manifest %s/%s@%s: content does not match the digest", s.reg, repo, ref)
	}
	return d.Manifest, string(d.MediaType), nil
}

// Blob reads repo@digest up to max bytes and checks its digest.
func (s sourceRegistry) Blob(ctx context.Context, repo, digest string, max int64) ([]byte, error) {
	l, err := remote.Layer(s.reg.Repo(repo).Digest(digest), append(s.opts, remote.WithContext(ctx))...)
	if err != nil {
		return nil, notFound(err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, notFound(err)
	}
	defer rc.Close()
	body, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, fmt.Errorf("blob %s/%s@%s: %w", s.reg, repo, digest, err)
	}
	if int64(len(body)) > max {
		return nil, fmt.Errorf("blob %s/%s@%s: %w", s.reg, repo, digest, verify.ErrTooLarge)
	}
	if digestOf(body) != digest {
		return nil, fmt.Errorf("blob %s/%s@%s: content does not match the digest", s.reg, repo, digest)
	}
	return body, nil
}

// Referrers returns the referrers index of repo@digest: the registry's referrers API, or
// its fallback tag where it has none (go-containerregistry's choice, which the verify
// package merges with its own read of the fallback tag). An empty list is "not found".
func (s sourceRegistry) Referrers(ctx context.Context, repo, digest string) ([]byte, error) {
	idx, err := remote.Referrers(s.reg.Repo(repo).Digest(digest), append(s.opts, remote.WithContext(ctx))...)
	if err != nil {
		return nil, notFound(err)
	}
	raw, err := idx.RawManifest()
	if err != nil {
		return nil, err
	}
	if len(raw) > maxManifestBytes {
		return nil, fmt.Errorf("referrers of %s/%s@%s: %w", s.reg, repo, digest, verify.ErrTooLarge)
	}
	var m struct {
		Manifests []json.RawMessage `json:"manifests"`
	}
	if json.Unmarshal(raw, &m) == nil && len(m.Manifests) == 0 {
		return nil, fmt.Errorf("referrers of %s/%s@%s: %w", s.reg, repo, digest, verify.ErrNotFound)
	}
	return bytes.Clone(raw), nil
}
