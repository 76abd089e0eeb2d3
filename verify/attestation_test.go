package verify_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/cosigntest"
	"github.com/portcullis-dev/portcullis/verify"
)

const vulnType = "https://cosign.sigstore.dev/attestation/vuln/v1"

var vulnPredicate = []byte(`{"scanner":{"uri":"pkg:github/aquasecurity/trivy@0.57.0","version":"0.57.0","result":{"SchemaVersion":2,"ArtifactName":"x","Results":[]}},"metadata":{"scanStartedOn":"2026-12-01T10:00:00Z","scanFinishedOn":"2026-12-01T10:01:00Z"}}`)

func keyAuthority(name string, k cosigntest.Key) verify.Authority {
	return verify.Authority{Name: name, Key: k.Public()}
}

func (r *reg) attestations(t *testing.T, img image, pinned []string, authorities ...verify.Authority) verify.AttestationResult {
	t.Helper()
	res, err := r.verifier.VerifyAttestations(context.Background(), img.repo, img.digest, authorities, pinned)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func wantAttRejected(t *testing.T, res verify.AttestationResult, kind verify.Kind, part string) {
	t.Helper()
	if len(res.Verified) != 0 {
		t.Fatalf("verified %+v, want a rejection", res.Verified)
	}
	for _, r := range res.Rejected {
		if r.Kind == kind && strings.Contains(r.Detail, part) {
			return
		}
	}
	t.Fatalf("no %s rejection mentioning %q in %+v", kind, part, res.Rejected)
}

// attestationFormats push an attestation of img, signed with k, in each stored form.
var attestationFormats = map[string]func(t *testing.T, r *reg, img image, predicateType string, stmt []byte, k cosigntest.Key){
	"att tag": func(t *testing.T, r *reg, img image, predicateType string, stmt []byte, k cosigntest.Key) {
		cosigntest.PushAttestationTag(t, r.host, img.repo, img.digest, cosigntest.AttestationLayer{Envelope: k.Envelope(t, stmt), PredicateType: predicateType})
	},
	"bundle referrer": func(t *testing.T, r *reg, img image, predicateType string, stmt []byte, k cosigntest.Key) {
		cosigntest.PushAttestationBundle(t, r.host, img.repo, img.digest, predicateType, k.AttestationBundle(t, k.Envelope(t, stmt)))
	},
}

func TestAttestationVerifies(t *testing.T) {
	for format, push := range attestationFormats {
		t.Run(format, func(t *testing.T) {
			r := distribution(t)
			k := cosigntest.NewKey(t)
			img := r.pushImage(t, "app")
			cosigntest.SignLegacy(t, r.host, img.repo, img.digest, k) // a signature too: passed over
			push(t, r, img, vulnType, cosigntest.Statement(t, r.host, img.repo, img.digest, vulnType, vulnPredicate), k)
			res := r.attestations(t, img, []string{vulnType}, keyAuthority("ci", k))
			if len(res.Verified) != 1 {
				t.Fatalf("verified %+v, rejected %+v", res.Verified, res.Rejected)
			}
			a := res.Verified[0]
			if a.PredicateType != vulnType || a.Authorities[0] != "ci" || !strings.Contains(string(a.Predicate), "scanFinishedOn") {
				t.Errorf("attestation %+v", a)
			}
			if len(res.Artifacts) == 0 {
				t.Error("no artifacts listed for the cache key")
			}
			listed, err := r.verifier.DiscoverAttestations(context.Background(), img.repo, img.digest)
			if err != nil || strings.Join(listed, " ") != strings.Join(res.Artifacts, " ") {
				t.Errorf("discovered %v (%v), verification listed %v", listed, err, res.Artifacts)
			}
		})
	}
}

func TestAttestationRejections(t *testing.T) {
	for format, push := range attestationFormats {
		t.Run(format, func(t *testing.T) {
			k, other := cosigntest.NewKey(t), cosigntest.NewKey(t)
			t.Run("wrong subject", func(t *testing.T) {
				r := distribution(t)
				img, elsewhere := r.pushImage(t, "app"), r.pushImage(t, "app")
				push(t, r, img, vulnType, cosigntest.Statement(t, r.host, img.repo, elsewhere.digest, vulnType, vulnPredicate), k)
				wantAttRejected(t, r.attestations(t, img, []string{vulnType}, keyAuthority("ci", k)), verify.KindOtherDigest, "not this image")
			})
			t.Run("unknown signer", func(t *testing.T) {
				r := distribution(t)
				img := r.pushImage(t, "app")
				push(t, r, img, vulnType, cosigntest.Statement(t, r.host, img.repo, img.digest, vulnType, vulnPredicate), other)
				wantAttRejected(t, r.attestations(t, img, []string{vulnType}, keyAuthority("ci", k)), verify.KindUnknownKey, "")
			})
			t.Run("unpinned type", func(t *testing.T) {
				r := distribution(t)
				img := r.pushImage(t, "app")
				push(t, r, img, vulnType, cosigntest.Statement(t, r.host, img.repo, img.digest, vulnType, vulnPredicate), k)
				wantAttRejected(t, r.attestations(t, img, []string{"https://in-toto.io/attestation/vulns/v0.2"}, keyAuthority("ci", k)), verify.KindUnpinned, vulnType)
			})
			t.Run("unpinned type under a pinned annotation", func(t *testing.T) {
				r := distribution(t)
				img := r.pushImage(t, "app")
				// The annotation (unsigned) claims the pinned type; the signed statement is another.
				push(t, r, img, vulnType, cosigntest.Statement(t, r.host, img.repo, img.digest, "https://slsa.dev/provenance/v1", vulnPredicate), k)
				wantAttRejected(t, r.attestations(t, img, []string{vulnType}, keyAuthority("ci", k)), verify.KindUnpinned, "https://slsa.dev/provenance/v1")
			})
		})
	}
}

func TestAttestationTampered(t *testing.T) {
	t.Run("att tag", func(t *testing.T) {
		r := distribution(t)
		k := cosigntest.NewKey(t)
		img := r.pushImage(t, "app")
		env := tamper(t, k.Envelope(t, cosigntest.Statement(t, r.host, img.repo, img.digest, vulnType, vulnPredicate)))
		cosigntest.PushAttestationTag(t, r.host, img.repo, img.digest, cosigntest.AttestationLayer{Envelope: env, PredicateType: vulnType})
		wantAttRejected(t, r.attestations(t, img, []string{vulnType}, keyAuthority("ci", k)), verify.KindUnknownKey, "altered")
	})
	t.Run("bundle referrer", func(t *testing.T) {
		r := distribution(t)
		k := cosigntest.NewKey(t)
		img := r.pushImage(t, "app")
		env := tamper(t, k.Envelope(t, cosigntest.Statement(t, r.host, img.repo, img.digest, vulnType, vulnPredicate)))
		cosigntest.PushAttestationBundle(t, r.host, img.repo, img.digest, vulnType, k.AttestationBundle(t, env))
		wantAttRejected(t, r.attestations(t, img, []string{vulnType}, keyAuthority("ci", k)), verify.KindTampered, "altered")
	})
}

// tamper lowers the scan's finish time in a signed envelope's statement.
func tamper(t *testing.T, env []byte) []byte {
	t.Helper()
	var e map[string]any
	if err := json.Unmarshal(env, &e); err != nil {
		t.Fatal(err)
	}
	p, _ := base64.StdEncoding.DecodeString(e["payload"].(string))
	changed := strings.Replace(string(p), "2026-12-01T10:01:00Z", "2026-12-07T10:01:00Z", 1)
	if changed == string(p) {
		t.Fatal("nothing to tamper with")
	}
	e["payload"] = base64.StdEncoding.EncodeToString([]byte(changed))
	out, _ := json.Marshal(e)
	return out
}

func TestKeylessAttestation(t *testing.T) {
	r := distribution(t)
	s := cosigntest.NewSigstore(t)
	img := r.pushImage(t, "app")
	stmt := cosigntest.Statement(t, r.host, img.repo, img.digest, vulnType, vulnPredicate)
	s.PushKeylessAttestation(t, r.host, img.repo, img.digest, vulnType, stmt, keylessSubject, keylessIssuer, cosigntest.KeylessOptions{})
	root := s.TrustedRoot(t)
	res := r.attestations(t, img, []string{vulnType}, keylessAuthority("ci", root, keylessSubject, "", keylessIssuer))
	if len(res.Verified) != 1 || res.Verified[0].Authorities[0] != "ci" {
		t.Fatalf("verified %+v, rejected %+v", res.Verified, res.Rejected)
	}
	wantAttRejected(t, r.attestations(t, img, []string{vulnType}, keylessAuthority("ci", root, "someone@example.com", "", keylessIssuer)), verify.KindWrongIdentity, "someone@example.com")

	r2 := distribution(t)
	img2 := r2.pushImage(t, "app")
	stmt2 := cosigntest.Statement(t, r2.host, img2.repo, img2.digest, vulnType, vulnPredicate)
	s.PushKeylessAttestation(t, r2.host, img2.repo, img2.digest, vulnType, stmt2, keylessSubject, keylessIssuer, cosigntest.KeylessOptions{Tamper: true})
	wantAttRejected(t, r2.attestations(t, img2, []string{vulnType}, keylessAuthority("ci", root, keylessSubject, "", keylessIssuer)), verify.KindTampered, "")
}

func TestSignaturesAreNotAttestations(t *testing.T) {
	r := distribution(t)
	k := cosigntest.NewKey(t)
	img := r.pushImage(t, "app")
	cosigntest.PushBundle(t, r.host, img.repo, img.digest, k)
	cosigntest.SignLegacy(t, r.host, img.repo, img.digest, k)
	res := r.attestations(t, img, []string{vulnType}, keyAuthority("ci", k))
	if len(res.Verified) != 0 || len(res.Rejected) != 0 {
		t.Fatalf("signatures taken for attestations: verified %+v, rejected %+v", res.Verified, res.Rejected)
	}
}
