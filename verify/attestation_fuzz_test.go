package verify

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/cosigntest"
)

// FuzzAttestationEnvelope feeds DSSE envelopes and sigstore bundles (outside input: anyone
// who may push can add them) to the attestation check: never a panic, a rejection always
// has a kind and a detail, and only the envelope the trusted key signed verifies, with
// the statement it signed.
func FuzzAttestationEnvelope(f *testing.F) {
	key := cosigntest.NewKey(f)
	img, _ := parseDigest(goldenImage)
	const vuln = "https://cosign.sigstore.dev/attestation/vuln/v1"
	stmt := cosigntest.Statement(f, "registry.example", "app", goldenImage, vuln, []byte(`{"scanner":{"result":[]},"metadata":{"scanFinishedOn":"2026-12-01T10:01:00Z"}}`))
	env := key.Envelope(f, stmt)
	k, err := loadKey(Authority{Name: "ci", Key: key.Public()})
	if err != nil {
		f.Fatal(err)
	}
	keys := []trustedKey{k}
	f.Add(env, false)
	f.Add(key.AttestationBundle(f, env), true)
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"sig":"AA=="}]}`), false)
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","dsseEnvelope":{"payloadType":"application/vnd.in-toto+json","payload":"eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEifQ==","signatures":[]}}`), true)
	f.Fuzz(func(t *testing.T, data []byte, isBundle bool) {
		var e *envelope
		var bundleJSON []byte
		if isBundle {
			b, err := parseBundle(data)
			if err != nil || b.DSSEEnvelope == nil {
				return
			}
			e, bundleJSON = b.DSSEEnvelope, data
		} else {
			if checkJSONObject(data) != nil {
				return
			}
			var v envelope
			if json.Unmarshal(data, &v) != nil {
				return
			}
			e = &v
		}
		out := checkAttestation(e, bundleJSON, img, keys, []string{vuln})
		switch {
		case len(out.authorities) > 0:
			payload, _ := decodeBase64(e.Payload)
			if !bytes.Equal(payload, stmt) {
				t.Fatalf("verified a statement the key did not sign: %s", payload)
			}
		case out.kind == "" && out.detail == "":
			// a signature statement, passed over: only cosign's signature predicate
		case out.kind == "" || out.detail == "":
			t.Fatalf("neither verified nor rejected: %+v", out)
		}
	})
}
