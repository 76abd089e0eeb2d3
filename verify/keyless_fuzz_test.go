package verify

import (
	"testing"

	"github.com/portcullis-dev/portcullis/internal/cosigntest"
)

// FuzzLegacyKeylessAnnotations feeds the keyless annotations of a legacy signature
// layer (certificate and Rekor bundle, outside input) to the keyless check: it must
// never panic, must reject with a kind and a detail, and verifies only with the
// certificate and Rekor entry that were issued for the signature.
func FuzzLegacyKeylessAnnotations(f *testing.F) {
	s := cosigntest.NewSigstore(f)
	const issuer, subject = "https://issuer.example", "dev@example.com"
	img, _ := parseDigest(goldenImage)
	payload := cosigntest.Payload("registry.example/app", goldenImage)
	ann := s.LegacyKeylessAnnotations(f, payload, subject, issuer, cosigntest.KeylessOptions{})
	sig, err := decodeBase64(ann[annotationSignature])
	if err != nil {
		f.Fatal(err)
	}
	k, err := loadKey(Authority{Name: "ci", Keyless: &Keyless{Issuer: issuer, Subject: subject, TrustedRoot: s.TrustedRoot(f)}})
	if err != nil {
		f.Fatal(err)
	}
	keys := []trustedKey{k}
	f.Add(ann[annotationCertificate], ann[annotationRekorBundle])
	f.Add("", ann[annotationRekorBundle])
	f.Add(ann[annotationCertificate], `{"SignedEntryTimestamp":"AA==","Payload":{"body":"e30=","integratedTime":1,"logIndex":0,"logID":"00"}}`)
	f.Add(ann[annotationCertificate], `{"Payload":{"body":"eyJraW5kIjoiaGFzaGVkcmVrb3JkIn0="}}`)
	f.Fuzz(func(t *testing.T, cert, rekor string) {
		vd := checkLegacy(payload, sig, map[string]string{annotationCertificate: cert, annotationRekorBundle: rekor}, img, keys)
		if len(vd.authorities) == 0 {
			if vd.kind == "" || vd.detail == "" {
				t.Fatalf("neither verified nor rejected: %+v", vd)
			}
			return
		}
		if cert != ann[annotationCertificate] {
			t.Fatalf("verified with another certificate: %q", cert)
		}
	})
}
