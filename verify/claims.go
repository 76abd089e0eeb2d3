package verify

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"strings"
)

// keyClaims is what an artifact says about the key that signed it: hints and keys taken
// from unsigned fields (a bundle's publicKey.hint or certificate, a DSSE keyid, cosign's
// certificate and Rekor bundle annotations). They never make a signature count; they only
// tell a signature altered after a trusted key made it ("tampered") from one made with
// another key ("unknown-key").
type keyClaims struct {
	hints []string // sha256 of a PKIX key, base64 or hex
	keys  [][]byte // PKIX DER of claimed keys (a certificate's key included)
	cert  bool     // a certificate was presented (keyless signing)
}

// addPEM records the key in a PEM public key or certificate.
func (c *keyClaims) addPEM(data []byte) {
	for len(data) > 0 {
		block, rest := pem.Decode(data)
		if block == nil {
			return
		}
		data = rest
		switch block.Type {
		case "PUBLIC KEY":
			c.keys = append(c.keys, block.Bytes)
		case "CERTIFICATE":
			c.addCertDER(block.Bytes)
		}
	}
}

// addCertDER records the key of a DER certificate.
func (c *keyClaims) addCertDER(der []byte) {
	c.cert = true
	if cert, err := x509.ParseCertificate(der); err == nil {
		c.keys = append(c.keys, cert.RawSubjectPublicKeyInfo)
	}
}

// names returns the trusted key the claims point at, or "".
func (c keyClaims) names(keys []trustedKey) string {
	for _, k := range keys {
		if k.keyless != nil {
			continue
		}
		h := k.keyHint()
		for _, hint := range c.hints {
			if got, err := decodeBase64(hint); err == nil && bytes.Equal(got, h[:]) {
				return k.name
			}
			if got, err := hex.DecodeString(strings.ToLower(hint)); err == nil && bytes.Equal(got, h[:]) {
				return k.name
			}
		}
		for _, der := range c.keys {
			if bytes.Equal(der, k.der) {
				return k.name
			}
		}
	}
	return ""
}

// classify turns a signature no trusted key verifies into a rejection kind and detail.
func (c keyClaims) classify(keys []trustedKey) (Kind, string) {
	if name := c.names(keys); name != "" {
		return KindTampered, "the artifact names trusted key " + quote(name) + " but its signature does not verify: the signed content was altered"
	}
	switch {
	case c.cert:
		return KindUnknownKey, "signed with a certificate (keyless) whose key is not a trusted key; keyless identities are not trusted here"
	case len(c.hints) > 0 || len(c.keys) > 0:
		return KindUnknownKey, "signed with a key that is not trusted"
	}
	return KindUnknownKey, "no trusted key verifies the signature: it was made with another key, or the signed content was altered"
}

// legacyClaims reads the key claims of a legacy signature layer's annotations: the
// Fulcio certificate cosign attaches for keyless signing, and the public key or
// certificate inside the Rekor entry of cosign's bundle annotation.
func legacyClaims(annotations map[string]string) keyClaims {
	var c keyClaims
	if cert := annotations[annotationCertificate]; cert != "" {
		c.addPEM([]byte(cert))
	}
	if b := annotations[annotationRekorBundle]; b != "" {
		var rb struct {
			Payload struct {
				Body string `json:"body"`
			} `json:"Payload"`
		}
		if json.Unmarshal([]byte(b), &rb) != nil {
			return c
		}
		body, err := decodeBase64(rb.Payload.Body)
		if err != nil {
			return c
		}
		var entry struct {
			Spec struct {
				Signature struct {
					PublicKey struct {
						Content string `json:"content"`
					} `json:"publicKey"`
				} `json:"signature"`
			} `json:"spec"`
		}
		if json.Unmarshal(body, &entry) != nil {
			return c
		}
		if key, err := decodeBase64(entry.Spec.Signature.PublicKey.Content); err == nil {
			c.addPEM(key)
		}
	}
	return c
}

// bundleClaims reads the key claims of a bundle: the public key hint, the certificate
// (or chain leaf) and the DSSE keyids.
func bundleClaims(b bundle) keyClaims {
	var c keyClaims
	if vm := b.VerificationMaterial; vm != nil {
		if vm.PublicKey != nil && vm.PublicKey.Hint != "" {
			c.hints = append(c.hints, vm.PublicKey.Hint)
		}
		if vm.Certificate != nil {
			if der, err := decodeBase64(vm.Certificate.RawBytes); err == nil {
				c.addCertDER(der)
			}
		}
		if ch := vm.X509CertificateChain; ch != nil && len(ch.Certificates) > 0 {
			if der, err := decodeBase64(ch.Certificates[0].RawBytes); err == nil {
				c.addCertDER(der)
			}
		}
	}
	if b.DSSEEnvelope != nil {
		for _, s := range b.DSSEEnvelope.Signatures {
			if s.KeyID != "" {
				c.hints = append(c.hints, s.KeyID)
			}
		}
	}
	return c
}
