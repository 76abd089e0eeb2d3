package verify

import (
	"context"
	"fmt"
)

// check examines the artifacts of one image, filling res.
type check struct {
	v      *Verifier
	ctx    context.Context
	repo   string
	img    digest
	keys   []trustedKey
	budget int  // signatures that may still be examined
	over   bool // the over-budget rejection is recorded
	res    Result
}

// record adds a verdict on an artifact to the result.
func (c *check) record(artifact string, format Format, vd verdict, prefix string) {
	if len(vd.authorities) > 0 {
		for _, name := range vd.authorities {
			c.res.Verified = append(c.res.Verified, Signature{Authority: name, Format: format, Artifact: artifact})
		}
		return
	}
	c.res.Rejected = append(c.res.Rejected, Rejection{Artifact: artifact, Format: format, Kind: vd.kind, Detail: prefix + vd.detail})
}

// spend takes one signature from the budget, or records that artifact was left unread.
func (c *check) spend(artifact string, format Format) bool {
	if c.budget > 0 {
		c.budget--
		return true
	}
	if !c.over {
		c.over = true
		c.res.Rejected = append(c.res.Rejected, Rejection{Artifact: artifact, Format: format, Kind: KindTooLarge,
			Detail: fmt.Sprintf("not examined, nor anything listed after it: over the limit of %d signatures per image", c.v.maxSignatures)})
	}
	return false
}

// blob reads a signature blob described by d, or says why it does not count. The error
// is for a registry that could not be read.
func (c *check) blob(d descriptor) ([]byte, *verdict, error) {
	dg, err := parseDigest(d.Digest)
	if err != nil {
		vd := reject(KindMalformed, "layer digest: "+err.Error())
		return nil, &vd, nil
	}
	if d.Size > c.v.maxBlob {
		vd := reject(KindTooLarge, fmt.Sprintf("layer is %d bytes, over the %d-byte limit; not read", d.Size, c.v.maxBlob))
		return nil, &vd, nil
	}
	data, err := c.v.reg.Blob(c.ctx, c.repo, d.Digest, c.v.maxBlob)
	switch {
	case err == nil:
	case isNotFound(err):
		vd := reject(KindMalformed, "layer blob "+d.Digest+" is missing")
		return nil, &vd, nil
	case isTooLarge(err):
		vd := reject(KindTooLarge, fmt.Sprintf("layer blob is over the %d-byte limit; not read", c.v.maxBlob))
		return nil, &vd, nil
	default:
		return nil, nil, fmt.Errorf("reading blob %s: %w", d.Digest, err)
	}
	if !dg.matches(data) {
		vd := reject(KindTampered, "layer blob does not match its digest "+d.Digest)
		return nil, &vd, nil
	}
	return data, nil, nil
}

// legacy examines the `.sig` manifest: every layer is one signature.
func (c *check) legacy(sig *fetched) error {
	m, err := parseManifest(sig.body, sig.mediaType)
	if err != nil {
		c.record(sig.digest, FormatLegacy, reject(KindMalformed, "the .sig tag is not an image manifest: "+err.Error()), "")
		return nil
	}
	if !isImageManifest(m.MediaType) {
		c.record(sig.digest, FormatLegacy, reject(KindMalformed, "the .sig tag is "+quote(m.MediaType)+", not an image manifest"), "")
		return nil
	}
	if len(m.Layers) == 0 {
		c.record(sig.digest, FormatLegacy, reject(KindMalformed, "the .sig manifest has no layers"), "")
		return nil
	}
	for i, l := range m.Layers {
		if !c.spend(sig.digest, FormatLegacy) {
			break
		}
		prefix := fmt.Sprintf("layer %d: ", i)
		vd, err := c.legacyLayer(l)
		if err != nil {
			return err
		}
		c.record(sig.digest, FormatLegacy, vd, prefix)
	}
	return nil
}

// legacyLayer judges one layer of a `.sig` manifest.
func (c *check) legacyLayer(l descriptor) (verdict, error) {
	if l.MediaType != mediaTypeSimpleSigning {
		return reject(KindMalformed, "media type "+quote(l.MediaType)+", not "+quote(mediaTypeSimpleSigning)), nil
	}
	b64 := l.Annotations[annotationSignature]
	if b64 == "" {
		return reject(KindMalformed, "no "+annotationSignature+" annotation"), nil
	}
	sig, err := decodeBase64(b64)
	if err != nil {
		return reject(KindMalformed, annotationSignature+" annotation: "+err.Error()), nil
	}
	payload, vd, err := c.blob(l)
	if err != nil || vd != nil {
		return deref(vd), err
	}
	return checkLegacy(payload, sig, l.Annotations, c.img, c.keys), nil
}

// referrer examines one referrer: an OCI manifest whose one layer is a sigstore bundle.
// Referrers of other kinds (an SBOM, say) are not signatures and are passed over.
func (c *check) referrer(d descriptor) error {
	if !c.spend(d.Digest, FormatBundle) {
		return nil
	}
	vd, err := c.referrerVerdict(d)
	if err != nil || vd == nil {
		return err
	}
	c.record(d.Digest, FormatBundle, *vd, "")
	return nil
}

// referrerVerdict judges one referrer; nil when it is not a signature artifact at all.
func (c *check) referrerVerdict(d descriptor) (*verdict, error) {
	rej := func(k Kind, detail string) (*verdict, error) { vd := reject(k, detail); return &vd, nil }
	if d.Size > c.v.maxManifest {
		return rej(KindTooLarge, fmt.Sprintf("referrer manifest is %d bytes, over the %d-byte limit; not read", d.Size, c.v.maxManifest))
	}
	body, mt, err := c.v.reg.Manifest(c.ctx, c.repo, d.Digest)
	switch {
	case err == nil:
	case isNotFound(err):
		return rej(KindMalformed, "listed referrer manifest is missing")
	case isTooLarge(err):
		return rej(KindTooLarge, "referrer manifest is over the registry's read limit; not read")
	default:
		return nil, fmt.Errorf("reading referrer %s: %w", d.Digest, err)
	}
	if int64(len(body)) > c.v.maxManifest {
		return rej(KindTooLarge, fmt.Sprintf("referrer manifest is %d bytes, over the %d-byte limit", len(body), c.v.maxManifest))
	}
	if dg, _ := parseDigest(d.Digest); !dg.matches(body) {
		return rej(KindTampered, "referrer manifest does not match its digest")
	}
	m, err := parseManifest(body, mt)
	if err != nil {
		return rej(KindMalformed, "referrer is not a manifest: "+err.Error())
	}
	if m.ArtifactType == mediaTypeCosignSignature || m.Config != nil && m.Config.MediaType == mediaTypeCosignSignature {
		return c.signatureReferrer(m)
	}
	var bundles []descriptor
	for _, l := range m.Layers {
		if isBundleMediaType(l.MediaType) {
			bundles = append(bundles, l)
		}
	}
	switch {
	case m.MediaType != mediaTypeOCIManifest || len(bundles) == 0:
		if isBundleMediaType(m.ArtifactType) {
			return rej(KindMalformed, "artifactType says sigstore bundle, but no layer of this "+quote(m.MediaType)+" is one")
		}
		return nil, nil
	case len(bundles) > 1:
		return rej(KindMalformed, fmt.Sprintf("%d bundle layers; a bundle referrer has one", len(bundles)))
	case m.Subject == nil:
		return rej(KindMalformed, "bundle manifest has no subject")
	case m.Subject.Digest != c.img.String():
		return rej(KindOtherDigest, "bundle manifest's subject is "+quote(m.Subject.Digest)+", not this image")
	}
	data, vd, err := c.blob(bundles[0])
	if err != nil || vd != nil {
		return vd, err
	}
	out := checkBundle(data, c.img, c.keys)
	return &out, nil
}

// signatureReferrer judges a legacy cosign signature stored as an OCI 1.1 referrer (cosign
// sign --registry-referrers-mode=oci-1-1): simple-signing layers, as in a `.sig` manifest,
// in a manifest whose subject is the image. The first layer that verifies counts.
func (c *check) signatureReferrer(m manifest) (*verdict, error) {
	rej := func(k Kind, detail string) (*verdict, error) { vd := reject(k, detail); return &vd, nil }
	switch {
	case m.Subject == nil:
		return rej(KindMalformed, "cosign signature referrer has no subject")
	case m.Subject.Digest != c.img.String():
		return rej(KindOtherDigest, "cosign signature referrer's subject is "+quote(m.Subject.Digest)+", not this image")
	case len(m.Layers) == 0:
		return rej(KindMalformed, "cosign signature referrer has no layers")
	}
	var first *verdict
	for i, l := range m.Layers {
		vd, err := c.legacyLayer(l)
		if err != nil {
			return nil, err
		}
		if len(vd.authorities) > 0 {
			return &vd, nil
		}
		if first == nil {
			vd.detail = fmt.Sprintf("layer %d: %s", i, vd.detail)
			first = &vd
		}
	}
	return first, nil
}

// deref returns *vd, or the zero verdict for nil.
func deref(vd *verdict) verdict {
	if vd == nil {
		return verdict{}
	}
	return *vd
}
