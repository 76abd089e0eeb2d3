package gate

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/scan/ciresult"
	"github.com/portcullis-dev/portcullis/verify"
)

// AttestationVerifier finds the in-toto attestations of an image digest that the
// authorities signed, with one of predicateTypes (verify.Verifier, CachedVerifier).
type AttestationVerifier interface {
	VerifyAttestations(ctx context.Context, repo, digest string, authorities []verify.Authority, predicateTypes []string) (verify.AttestationResult, error)
}

// discoveringAttestations can list a digest's attestation artifacts cheaply first.
type discoveringAttestations interface {
	AttestationVerifier
	DiscoverAttestations(ctx context.Context, repo, digest string) ([]string, error)
}

// Attestation results are cached like signature results: a day when one verified, briefly
// otherwise. How old the scan inside is, is judged at each decision.
const (
	attestationTTL       = 24 * time.Hour
	attestationFailedTTL = 5 * time.Minute
	// attestationValueVersion is the format version of cached verify.AttestationResult values.
	attestationValueVersion = 1
)

// VerifyAttestations returns the cached attestation result for repo@digest with these
// authorities and predicate types, verifying only when the attestation artifacts, keys or
// types changed since it was cached. The verifier it wraps must read attestations.
func (c *CachedVerifier) VerifyAttestations(ctx context.Context, repo, digest string, authorities []verify.Authority, predicateTypes []string) (verify.AttestationResult, error) {
	next, ok := c.next.(discoveringAttestations)
	if !ok {
		return verify.AttestationResult{}, errString("this gateway's verifier reads no attestations")
	}
	artifacts, err := next.DiscoverAttestations(ctx, repo, digest)
	if err != nil {
		return verify.AttestationResult{}, err
	}
	if len(artifacts) == 0 {
		return verify.AttestationResult{}, nil
	}
	parts := append([]string{"repo:" + repo}, artifacts...)
	for _, t := range predicateTypes {
		parts = append(parts, "type:"+t)
	}
	for _, a := range authorities {
		fp, err := keyFingerprint(a)
		if err != nil {
			return verify.AttestationResult{}, err
		}
		parts = append(parts, fp)
	}
	key := cache.AttestationKey(digest, cache.ArtifactsHash(parts))
	raw, err := c.flight.Do(ctx, key, func(ctx context.Context) ([]byte, error) {
		res, err := next.VerifyAttestations(ctx, repo, digest, authorities, predicateTypes)
		if err != nil {
			return nil, err
		}
		return cache.Encode(cache.KindAttestation, attestationValueVersion, res)
	}, cache.FlightOptions{TTL: attestationTTL, LockTTL: 15 * time.Second, ComputeTimeout: time.Minute,
		TTLOf: func(v []byte) time.Duration {
			var res verify.AttestationResult
			if cache.Decode(v, cache.KindAttestation, attestationValueVersion, &res) && len(res.Verified) > 0 {
				return attestationTTL
			}
			return attestationFailedTTL
		}})
	if err != nil {
		return verify.AttestationResult{}, err
	}
	var res verify.AttestationResult
	if !cache.Decode(raw, cache.KindAttestation, attestationValueVersion, &res) {
		return next.VerifyAttestations(ctx, repo, digest, authorities, predicateTypes)
	}
	return res, nil
}

// maxCIScanFuture is how far in the future a scan may say it finished (clock skew).
const maxCIScanFuture = 5 * time.Minute

// ciScanReport looks for a signed CI scan of repo@digest that ci accepts: signed by one of
// its authorities, about this digest, of a pinned predicate type, a report this gateway
// reads, finished (and its database dated, when the report dates it) within ci.MaxAge.
// With one, it returns the Report made of its findings (the freshest when several count)
// and its source; without, the source is nil and note says why ("" when ci is nil or the
// manifest is an index, whose platform manifests are judged on their own).
func (g *Gate) ciScanReport(ctx context.Context, ci *policy.CIScans, repo, digest string, manifest []byte) (rep Report, sources []string, src *policy.CIScanSource, note string) {
	if ci == nil {
		return Report{}, nil, nil, ""
	}
	if shape, err := ClassifyManifest(manifest, ""); err == nil && shape == ShapeIndex {
		return Report{}, nil, nil, ""
	}
	av, ok := g.sigs.(AttestationVerifier)
	if !ok {
		return Report{}, nil, nil, "this gateway verifies no attestations"
	}
	auths := make([]verify.Authority, len(ci.Trusted))
	for i, a := range ci.Trusted {
		auths[i] = verify.Authority{Name: a.Name, Key: a.PublicKey}
		if k := a.Keyless; k != nil {
			auths[i].Keyless = &verify.Keyless{Issuer: k.Issuer, Subject: k.Subject, SubjectRegExp: k.SubjectRegExp, TrustedRoot: k.TrustedRootJSON}
		}
	}
	res, err := av.VerifyAttestations(ctx, repo, digest, auths, ci.PredicateTypes)
	if err != nil {
		return Report{}, nil, nil, "could not read the image's attestations: " + err.Error()
	}
	now := g.now()
	var why []string
	var best *ciresult.Result
	var bestAtt verify.Attestation
	for _, a := range res.Verified {
		r, err := ciresult.Parse(a.PredicateType, a.Predicate)
		switch {
		case err != nil:
			why = append(why, fmt.Sprintf("attestation %s signed by %s: %v", a.Artifact, strings.Join(a.Authorities, ", "), err))
			continue
		case r.ScanFinished.After(now.Add(maxCIScanFuture)):
			why = append(why, fmt.Sprintf("attestation %s: the scan says it finished %s, in the future", a.Artifact, r.ScanFinished.UTC().Format(time.RFC3339)))
			continue
		case now.Sub(r.ScanFinished) > ci.MaxAge:
			why = append(why, fmt.Sprintf("attestation %s: the scan finished %s, more than %s ago (ciScans.maxAge)", a.Artifact, r.ScanFinished.UTC().Format(time.RFC3339), age(ci.MaxAge)))
			continue
		case !r.DBUpdated.IsZero() && now.Sub(r.DBUpdated) > ci.MaxAge:
			why = append(why, fmt.Sprintf("attestation %s: the scanner's vulnerability database dates from %s, more than %s ago (ciScans.maxAge)", a.Artifact, r.DBUpdated.UTC().Format(time.RFC3339), age(ci.MaxAge)))
			continue
		}
		if best == nil || r.ScanFinished.After(best.ScanFinished) {
			best, bestAtt = &r, a
		}
	}
	if best == nil {
		for _, r := range res.Rejected {
			if r.Kind == verify.KindUnpinned && len(res.Rejected) > 1 {
				continue // other attestations (SBOM, provenance) only muddy the reason
			}
			why = append(why, fmt.Sprintf("%s %s: %s", r.Format, r.Artifact, r.Detail))
		}
		if len(why) == 0 {
			why = append(why, fmt.Sprintf("no attestation of type %s signed by %s", strings.Join(ci.PredicateTypes, ", "), strings.Join(ci.Authorities, ", ")))
		}
		const maxReasons = 4
		if len(why) > maxReasons {
			why = append(why[:maxReasons], fmt.Sprintf("and %d more", len(why)-maxReasons))
		}
		return Report{}, nil, nil, strings.Join(why, "; ")
	}
	src = &policy.CIScanSource{Tool: best.Tool, Version: best.ScannerVersion, PredicateType: bestAtt.PredicateType,
		Attestation: bestAtt.Artifact, Authorities: slices.Clone(bestAtt.Authorities), ScanFinished: best.ScanFinished, DBUpdated: best.DBUpdated}
	rep = Report{Findings: best.Findings, DBRevision: "CI scan " + best.Provenance() + ", attestation " + bestAtt.Artifact}
	source := "CI scan " + best.Provenance() + " signed by " + strings.Join(bestAtt.Authorities, ", ")
	sources = make([]string, len(rep.Findings))
	for i := range sources {
		sources[i] = source
	}
	return rep, sources, src, ""
}

// age writes a duration in days when it is whole days.
func age(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}
