package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// FormatAttestation is cosign v2's `sha256-<hex>.att` tag: an image manifest whose layers
// are DSSE envelopes over in-toto statements.
const FormatAttestation Format = "attestation-tag"

// KindUnpinned means an attestation that verified, for this image, whose predicate type
// is not one the caller asked for.
const KindUnpinned Kind = "unpinned-predicate"

// mediaTypeDSSE is the media type of a DSSE envelope layer in a cosign `.att` manifest.
const mediaTypeDSSE = "application/vnd.dsse.envelope.v1+json"

// Attestation is an in-toto statement about the image that verified: signed by a trusted
// authority, its subject the image's digest, its predicate type one asked for.
type Attestation struct {
	// Authorities are the names of the authorities whose signatures verified.
	Authorities []string `json:"authorities"`
	// Format is how it was stored: FormatAttestation or FormatBundle.
	Format Format `json:"format"`
	// Artifact is the digest of the manifest that carried it.
	Artifact string `json:"artifact"`
	// PredicateType and Predicate are the statement's, as signed.
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

// AttestationResult is what VerifyAttestations found for one image digest.
type AttestationResult struct {
	// Verified lists the attestations that verified, in the order examined.
	Verified []Attestation `json:"verified,omitempty"`
	// Rejected lists the attestation artifacts (or envelopes) that did not count, and why.
	Rejected []Rejection `json:"rejected,omitempty"`
	// Artifacts lists, sorted, the digests of the `.att` manifest, the referrers fallback
	// index and every referrer: the input of a cache key (see DiscoverAttestations).
	Artifacts []string `json:"artifacts,omitempty"`
	// Spent is the work the verification did against its budget.
	Spent Spent `json:",omitzero"`
}

// WithMaxAttestationSize caps the size of one attestation envelope or bundle
// VerifyAttestations reads (default 16 MiB: a scan report can be large). Each
// verification may read four such blobs on top of its Budget's bytes.
func WithMaxAttestationSize(n int64) Option { return func(v *Verifier) { v.maxAttestation = n } }

// VerifyAttestations finds the in-toto attestations of repo@digest, in cosign v2's `.att`
// tag (DSSE envelope layers) and as sigstore bundle referrers (cosign v3), and returns
// those whose predicate type is one of predicateTypes, whose subject is the image's
// digest and that a trusted authority signed (keyed: `.att` envelopes and bundles;
// keyless: bundles, whose transparency log entry is checked offline against the
// authority's trusted root). Cosign signatures among the referrers are passed over.
//
// Everything examined that does not count is in Rejected: unknown signer, tampered,
// another image's subject, unpinned predicate type. The error is for "could not decide",
// as for Verify.
func (v *Verifier) VerifyAttestations(ctx context.Context, repo, digest string, authorities []Authority, predicateTypes []string) (AttestationResult, error) {
	img, err := parseDigest(digest)
	if err != nil {
		return AttestationResult{}, fmt.Errorf("verifying the attestations of %s@%s: %w", repo, digest, err)
	}
	keys, err := loadKeys(authorities)
	if err != nil {
		return AttestationResult{}, err
	}
	b := v.budget
	b.Bytes += 4 * v.maxAttestation
	c := &attCheck{check: check{v: v, ctx: ctx, repo: repo, img: img, keys: keys, led: ledger{b: b}, maxBlob: v.maxAttestation}, pinned: predicateTypes}
	f, err := v.discoverWith(ctx, repo, img, &c.led, ".att", FormatAttestation)
	if err != nil {
		return AttestationResult{}, fmt.Errorf("verifying the attestations of %s@%s: %w", repo, digest, err)
	}
	if err := c.run(f); err != nil {
		return AttestationResult{}, fmt.Errorf("verifying the attestations of %s@%s: %w", repo, digest, err)
	}
	return c.out, nil
}

// DiscoverAttestations lists, sorted, the attestation artifacts of repo@digest (the
// `.att` manifest, the referrers fallback index, every referrer) without reading them:
// the same list VerifyAttestations returns in Artifacts, for a cache key.
func (v *Verifier) DiscoverAttestations(ctx context.Context, repo, digest string) ([]string, error) {
	img, err := parseDigest(digest)
	if err != nil {
		return nil, fmt.Errorf("discovering the attestations of %s@%s: %w", repo, digest, err)
	}
	f, err := v.discoverWith(ctx, repo, img, &ledger{b: v.budget}, ".att", FormatAttestation)
	if err != nil {
		return nil, fmt.Errorf("discovering the attestations of %s@%s: %w", repo, digest, err)
	}
	return f.artifacts, nil
}

// attCheck examines the attestations of one image.
type attCheck struct {
	check
	pinned []string
	out    AttestationResult
}

// attVerdict is the verdict on one statement, with the statement when it verified.
type attVerdict struct {
	verdict
	st statement
}

// run examines the `.att` manifest, then the referrers, within the budget.
func (c *attCheck) run(f found) error {
	c.out.Artifacts, c.out.Rejected = f.artifacts, f.rejected
	if f.legacy != nil {
		if err := c.attTag(f.legacy); err != nil {
			return err
		}
	}
	for i, d := range f.referrers {
		if limit := c.referrerLimit(); limit != "" {
			c.leave(f.referrers[i:], limit)
			c.out.Rejected = append(c.out.Rejected, c.res.Rejected...)
			c.res.Rejected = nil
			break
		}
		if err := c.attReferrer(d); err != nil {
			return err
		}
	}
	c.out.Spent = c.led.spent
	return nil
}

// record adds the verdict on one statement to the result.
func (c *attCheck) record(artifact string, format Format, vd attVerdict, prefix string) {
	if len(vd.authorities) > 0 {
		c.out.Verified = append(c.out.Verified, Attestation{Authorities: vd.authorities, Format: format, Artifact: artifact,
			PredicateType: vd.st.PredicateType, Predicate: vd.st.Predicate})
		return
	}
	c.out.Rejected = append(c.out.Rejected, Rejection{Artifact: artifact, Format: format, Kind: vd.kind, Detail: prefix + vd.detail})
}

// attTag examines cosign v2's `.att` manifest: every layer is a DSSE envelope.
func (c *attCheck) attTag(att *fetched) error {
	rej := func(detail string) {
		c.record(att.digest, FormatAttestation, attVerdict{verdict: reject(KindMalformed, detail)}, "")
	}
	m, err := parseManifest(att.body, att.mediaType)
	switch {
	case err != nil:
		rej("the .att tag is not an image manifest: " + err.Error())
		return nil
	case !isImageManifest(m.MediaType):
		rej("the .att tag is " + quote(m.MediaType) + ", not an image manifest")
		return nil
	case len(m.Layers) == 0:
		rej("the .att manifest has no layers")
		return nil
	}
	for i, l := range m.Layers {
		if limit := c.layerLimit(i); limit != "" {
			c.leaveLayers(att.digest, FormatAttestation, i, len(m.Layers), limit)
			c.out.Rejected = append(c.out.Rejected, c.res.Rejected...)
			c.res.Rejected = nil
			break
		}
		prefix := fmt.Sprintf("layer %d: ", i)
		if l.MediaType != mediaTypeDSSE {
			c.record(att.digest, FormatAttestation, attVerdict{verdict: reject(KindMalformed, "media type "+quote(l.MediaType)+", not "+quote(mediaTypeDSSE))}, prefix)
			continue
		}
		if pt := l.Annotations["predicateType"]; pt != "" && !slices.Contains(c.pinned, pt) {
			// The annotation is unsigned: it only spares reading an envelope the statement
			// inside would say is of another type; it never makes one count.
			c.record(att.digest, FormatAttestation, attVerdict{verdict: reject(KindUnpinned, "predicate type "+quote(pt)+" (the layer's annotation) is not one asked for: "+strings.Join(c.pinned, ", "))}, prefix)
			continue
		}
		data, vd, err := c.blob(l)
		if err != nil {
			return err
		}
		if vd != nil {
			c.record(att.digest, FormatAttestation, attVerdict{verdict: *vd}, prefix)
			continue
		}
		var env envelope
		if err := checkJSONObject(data); err != nil {
			c.record(att.digest, FormatAttestation, attVerdict{verdict: reject(KindMalformed, "not a DSSE envelope: "+err.Error())}, prefix)
			continue
		}
		if err := json.Unmarshal(data, &env); err != nil {
			c.record(att.digest, FormatAttestation, attVerdict{verdict: reject(KindMalformed, "not a DSSE envelope: "+err.Error())}, prefix)
			continue
		}
		out := checkAttestation(&env, nil, c.img, c.keys, c.pinned)
		if out.kind == "" && len(out.authorities) == 0 {
			continue // a signature statement: not an attestation
		}
		if len(out.authorities) == 0 && l.Annotations[annotationCertificate] != "" && out.kind == KindUnknownKey {
			out.detail = "a keyless cosign v2 attestation (.att, certificate annotation): verified only as a cosign v3 bundle (attest with cosign v3, or --new-bundle-format); " + out.detail
		}
		c.record(att.digest, FormatAttestation, out, prefix)
	}
	return nil
}

// attReferrer examines one referrer: a sigstore bundle whose DSSE statement may be an
// attestation. Referrers of other kinds and cosign signatures are passed over.
func (c *attCheck) attReferrer(d descriptor) error {
	m, vd, err := c.readReferrer(d)
	if err != nil {
		return err
	}
	if vd != nil {
		c.record(d.Digest, FormatBundle, attVerdict{verdict: *vd}, "")
		return nil
	}
	var bundles []descriptor
	for _, l := range m.Layers {
		if isBundleMediaType(l.MediaType) {
			bundles = append(bundles, l)
		}
	}
	rej := func(k Kind, detail string) error {
		c.record(d.Digest, FormatBundle, attVerdict{verdict: reject(k, detail)}, "")
		return nil
	}
	switch {
	case m.MediaType != mediaTypeOCIManifest || len(bundles) == 0:
		return nil
	case len(bundles) > 1:
		return rej(KindMalformed, fmt.Sprintf("%d bundle layers; a bundle referrer has one", len(bundles)))
	case m.Subject == nil:
		return rej(KindMalformed, "bundle manifest has no subject")
	case m.Subject.Digest != c.img.String():
		return rej(KindOtherDigest, "bundle manifest's subject is "+quote(m.Subject.Digest)+", not this image")
	}
	if pt := m.Annotations["dev.sigstore.bundle.predicateType"]; pt == predicateTypeCosign {
		return nil // a cosign v3 signature (the annotation is unsigned: it only spares a read)
	}
	data, bvd, err := c.blob(bundles[0])
	if err != nil {
		return err
	}
	if bvd != nil {
		c.record(d.Digest, FormatBundle, attVerdict{verdict: *bvd}, "")
		return nil
	}
	b, err := parseBundle(data)
	if err != nil {
		return rej(KindMalformed, "not a sigstore bundle: "+err.Error())
	}
	if b.DSSEEnvelope == nil {
		return rej(KindMalformed, "bundle has no dsseEnvelope: an attestation is a DSSE envelope over an in-toto statement")
	}
	out := checkAttestation(b.DSSEEnvelope, data, c.img, c.keys, c.pinned)
	if out.kind == "" && len(out.authorities) == 0 {
		return nil // a signature statement
	}
	c.record(d.Digest, FormatBundle, out, "")
	return nil
}

// checkAttestation judges a DSSE envelope over an in-toto statement for the image img:
// signed by a trusted key (or, with bundleJSON, a keyless authority), about img, of a
// pinned predicate type. A cosign signature statement gives the zero attVerdict.
func checkAttestation(env *envelope, bundleJSON []byte, img digest, keys []trustedKey, pinned []string) attVerdict {
	rej := func(k Kind, detail string) attVerdict { return attVerdict{verdict: reject(k, detail)} }
	if env.PayloadType != payloadTypeInToto {
		return rej(KindWrongPayloadType, "payloadType is "+quote(env.PayloadType)+", not "+quote(payloadTypeInToto))
	}
	payload, err := decodeBase64(env.Payload)
	if err != nil {
		return rej(KindMalformed, "envelope payload: "+err.Error())
	}
	st, err := parseStatement(payload)
	if err != nil {
		return rej(KindMalformed, "envelope payload: "+err.Error())
	}
	if st.PredicateType == predicateTypeCosign {
		return attVerdict{}
	}
	if len(env.Signatures) == 0 {
		return rej(KindMalformed, "envelope has no signatures")
	}
	names := envelopeSigners(env, payload, keys)
	if len(names) == 0 && bundleJSON != nil {
		if sb := keylessBundle(bundleJSON); sb != nil {
			if out, ok := checkKeyless(sb, nil, keys); ok {
				if len(out.names) == 0 {
					return rej(out.kind, out.detail)
				}
				names = out.names
			}
		}
	}
	if len(names) == 0 {
		var claims keyClaims
		if bundleJSON != nil {
			if b, err := parseBundle(bundleJSON); err == nil {
				claims = bundleClaims(b)
			}
		} else {
			for _, s := range env.Signatures {
				if s.KeyID != "" {
					claims.hints = append(claims.hints, s.KeyID)
				}
			}
		}
		kind, detail := claims.classify(keys)
		return rej(kind, detail)
	}
	about := false
	for _, s := range st.Subject {
		if s.Digest[img.alg] == img.hex {
			about = true
		}
	}
	if !about {
		return rej(KindOtherDigest, "attestation signed by "+quote(names[0])+" for "+subjectList(st)+", not this image: an attestation copied from another image")
	}
	if !slices.Contains(pinned, st.PredicateType) {
		return rej(KindUnpinned, "attestation signed by "+quote(names[0])+" for this image, but its predicate type "+quote(st.PredicateType)+" is not one asked for: "+strings.Join(pinned, ", "))
	}
	return attVerdict{verdict: verdict{authorities: names}, st: st}
}
