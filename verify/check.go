package verify

import (
	"context"
	"fmt"
)

// check examines the artifacts of one image, filling res, within one budget.
type check struct {
	v    *Verifier
	ctx  context.Context
	repo string
	img  digest
	keys []trustedKey
	goal Goal
	led  ledger
	met  bool // the goal is met: examine nothing more
	res  Result
	// maxBlob, when set, caps blobs instead of the Verifier's WithMaxBlobSize
	// (attestations: WithMaxAttestationSize).
	maxBlob int64
}

// maxListedOverBudget is how many referrers left over budget are listed one by one in
// Rejected; the rest are summed up in one more rejection.
const maxListedOverBudget = 16

// run examines what discovery found, the `.sig` manifest first, then the referrers in
// their order, until the goal is met or the budget is spent.
func (c *check) run(f found) error {
	c.res.Artifacts = f.artifacts
	c.res.Rejected = f.rejected
	if f.legacy != nil {
		if err := c.legacy(f.legacy); err != nil {
			return err
		}
	}
	for i, d := range f.referrers {
		if c.met {
			c.led.spent.Unexamined += len(f.referrers) - i
			break
		}
		if limit := c.referrerLimit(); limit != "" {
			c.leave(f.referrers[i:], limit)
			break
		}
		if err := c.referrer(d); err != nil {
			return err
		}
	}
	c.res.Spent = c.led.spent
	c.res.Spent.GoalMet = c.met
	return nil
}

// referrerLimit names the limit that forbids reading another referrer, "" when none does.
func (c *check) referrerLimit() string {
	switch {
	case c.led.exhausted():
		return c.led.lastExhausted()
	case c.led.spent.Referrers >= c.led.b.Referrers:
		c.led.exceed(LimitReferrers)
		return LimitReferrers
	}
	return ""
}

// leave records referrers left unexamined because limit was hit.
func (c *check) leave(ds []descriptor, limit string) {
	c.led.spent.Unexamined += len(ds)
	why := c.led.describe(limit)
	for i, d := range ds {
		if i == maxListedOverBudget {
			c.res.Rejected = append(c.res.Rejected, Rejection{Artifact: d.Digest, Format: FormatBundle, Kind: KindOverBudget,
				Detail: fmt.Sprintf("not examined, nor the %d referrers listed after it: %s", len(ds)-i-1, why)})
			return
		}
		c.res.Rejected = append(c.res.Rejected, Rejection{Artifact: d.Digest, Format: FormatBundle, Kind: KindOverBudget, Detail: "not examined: " + why})
	}
}

// record adds a verdict on an artifact to the result, and notes when the goal is met.
func (c *check) record(artifact string, format Format, vd verdict, prefix string) {
	if len(vd.authorities) > 0 {
		for _, name := range vd.authorities {
			c.res.Verified = append(c.res.Verified, Signature{Authority: name, Format: format, Artifact: artifact})
		}
		c.met = c.goal.Met(c.res)
		return
	}
	c.res.Rejected = append(c.res.Rejected, Rejection{Artifact: artifact, Format: format, Kind: vd.kind, Detail: prefix + vd.detail})
}

// layerLimit names the limit that forbids examining layer i of a manifest, "" when none
// does.
func (c *check) layerLimit(i int) string {
	switch {
	case c.led.exhausted():
		return c.led.lastExhausted()
	case i >= c.led.b.Layers:
		c.led.exceed(LimitLayers)
		return LimitLayers
	}
	return ""
}

// leaveLayers records layers i.. of the manifest artifact (n layers) left unexamined
// because limit was hit.
func (c *check) leaveLayers(artifact string, format Format, i, n int, limit string) {
	c.led.spent.Unexamined += n - i
	which := fmt.Sprintf("layer %d", i)
	if n-i > 1 {
		which = fmt.Sprintf("layers %d to %d", i, n-1)
	}
	c.res.Rejected = append(c.res.Rejected, Rejection{Artifact: artifact, Format: format, Kind: KindOverBudget,
		Detail: which + " not examined: " + c.led.describe(limit)})
}

// blob reads a signature blob described by d, or says why it does not count. The error
// is for a registry that could not be read.
func (c *check) blob(d descriptor) ([]byte, *verdict, error) {
	dg, err := parseDigest(d.Digest)
	if err != nil {
		vd := reject(KindMalformed, "layer digest: "+err.Error())
		return nil, &vd, nil
	}
	maxBlob := c.v.maxBlob
	if c.maxBlob > 0 {
		maxBlob = c.maxBlob
	}
	if d.Size > maxBlob {
		vd := reject(KindTooLarge, fmt.Sprintf("layer is %d bytes, over the %d-byte limit; not read", d.Size, maxBlob))
		return nil, &vd, nil
	}
	if !c.led.afford(d.Size) {
		vd := reject(KindOverBudget, "layer blob not read: "+c.led.describe(c.led.lastExhausted()))
		return nil, &vd, nil
	}
	data, err := c.v.reg.Blob(c.ctx, c.repo, d.Digest, maxBlob)
	c.led.charge(len(data))
	switch {
	case err == nil:
	case isNotFound(err):
		vd := reject(KindMalformed, "layer blob "+d.Digest+" is missing")
		return nil, &vd, nil
	case isTooLarge(err):
		vd := reject(KindTooLarge, fmt.Sprintf("layer blob is over the %d-byte limit; not read", maxBlob))
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
		if c.met {
			c.led.spent.Unexamined += len(m.Layers) - i
			break
		}
		if limit := c.layerLimit(i); limit != "" {
			c.leaveLayers(sig.digest, FormatLegacy, i, len(m.Layers), limit)
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
	m, vd, err := c.readReferrer(d)
	if err != nil || vd != nil {
		return vd, err
	}
	if m.ArtifactType == mediaTypeCosignSignature || m.Config != nil && m.Config.MediaType == mediaTypeCosignSignature {
		return c.signatureReferrer(d.Digest, m)
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

// readReferrer reads the referrer manifest d lists, within the budget and limits, or
// says why it does not count. The error is for a registry that could not be read.
func (c *check) readReferrer(d descriptor) (manifest, *verdict, error) {
	rej := func(k Kind, detail string) (manifest, *verdict, error) {
		vd := reject(k, detail)
		return manifest{}, &vd, nil
	}
	if d.Size > c.v.maxManifest {
		return rej(KindTooLarge, fmt.Sprintf("referrer manifest is %d bytes, over the %d-byte limit; not read", d.Size, c.v.maxManifest))
	}
	if !c.led.afford(d.Size) {
		return rej(KindOverBudget, "referrer manifest not read: "+c.led.describe(c.led.lastExhausted()))
	}
	body, mt, err := c.v.reg.Manifest(c.ctx, c.repo, d.Digest)
	c.led.charge(len(body))
	c.led.spent.Referrers++
	switch {
	case err == nil:
	case isNotFound(err):
		return rej(KindMalformed, "listed referrer manifest is missing")
	case isTooLarge(err):
		return rej(KindTooLarge, "referrer manifest is over the registry's read limit; not read")
	default:
		return manifest{}, nil, fmt.Errorf("reading referrer %s: %w", d.Digest, err)
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
	return m, nil, nil
}

// signatureReferrer judges a legacy cosign signature stored as an OCI 1.1 referrer (cosign
// sign --registry-referrers-mode=oci-1-1): simple-signing layers, as in a `.sig` manifest,
// in a manifest whose subject is the image. The first layer that verifies counts; at
// most Budget.Layers layers are examined.
func (c *check) signatureReferrer(artifact string, m manifest) (*verdict, error) {
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
		if limit := c.layerLimit(i); limit != "" {
			c.leaveLayers(artifact, FormatBundle, i, len(m.Layers), limit)
			break
		}
		vd, err := c.legacyLayer(l)
		if err != nil {
			return nil, err
		}
		if len(vd.authorities) > 0 {
			c.led.spent.Unexamined += len(m.Layers) - i - 1
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
