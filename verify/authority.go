package verify

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/sigstore/sigstore/pkg/signature"
)

// Authority is a trusted signing key and the name policies and reports use for it.
type Authority struct {
	// Name identifies the key in policies, thresholds and reports.
	Name string
	// Key is an ECDSA (P-256, P-384, P-521), RSA (2048 to 8192 bits) or Ed25519 public key;
	// nil for a keyless authority.
	Key crypto.PublicKey
	// Keyless, when not nil, makes this a keyless authority: a certificate identity and
	// the trusted root to check it with, instead of Key.
	Keyless *Keyless
}

// ParsePublicKeyPEM parses a PEM public key as `cosign generate-key-pair` writes it
// (cosign.pub: "PUBLIC KEY", PKIX) or an "RSA PUBLIC KEY" (PKCS #1), and checks that it is
// a key verify can use: ECDSA P-256, P-384 or P-521, RSA of 2048 to 8192 bits, or Ed25519.
func ParsePublicKeyPEM(data []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found: expected a PEM \"PUBLIC KEY\" such as cosign.pub")
	}
	var (
		pub crypto.PublicKey
		err error
	)
	switch t := block.Type; {
	case t == "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case t == "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case strings.Contains(t, "PRIVATE KEY"):
		return nil, fmt.Errorf("PEM block is a %s: give the public key (cosign.pub), never the private key", t)
	case t == "CERTIFICATE":
		return nil, errors.New("PEM block is a certificate: give a public key, or a Keyless identity and trusted root for keyless signatures")
	default:
		return nil, fmt.Errorf("PEM block is %q: expected \"PUBLIC KEY\"", t)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", block.Type, err)
	}
	if err := checkKey(pub); err != nil {
		return nil, err
	}
	return pub, nil
}

// checkKey reports whether pub is of a type and size verify accepts.
func checkKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k == nil || k.Curve == nil {
			return errors.New("empty ECDSA key")
		}
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
		return fmt.Errorf("ECDSA curve %s is not supported: use P-256, P-384 or P-521", k.Curve.Params().Name)
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			return errors.New("empty RSA key")
		}
		if bits := k.N.BitLen(); bits < 2048 || bits > 8192 {
			return fmt.Errorf("RSA key of %d bits is not supported: use 2048 to 8192 bits", bits)
		}
		return nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return fmt.Errorf("Ed25519 key of %d bytes, want %d", len(k), ed25519.PublicKeySize)
		}
		return nil
	case nil:
		return errors.New("no key")
	}
	return fmt.Errorf("key type %T is not supported: use ECDSA, RSA or Ed25519", pub)
}

// trustedKey is an authority ready to verify: the signature schemes cosign and sigstore
// use with its key type.
type trustedKey struct {
	name      string
	der       []byte // PKIX DER of the key, to compare with claimed keys
	verifiers []signature.Verifier
	keyless   *keylessKey // a keyless authority: no der, no verifiers
}

// loadKeys prepares the authorities. A key verify cannot use is an error: the
// configuration is broken and no decision can be made.
func loadKeys(authorities []Authority) ([]trustedKey, error) {
	keys := make([]trustedKey, 0, len(authorities))
	for _, a := range authorities {
		k, err := loadKey(a)
		if err != nil {
			return nil, fmt.Errorf("authority %q: %w", a.Name, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// loadKey builds the verifiers for one authority. cosign signs with SHA-256 whatever the
// ECDSA curve (its default hash), while sigstore's algorithm registry pairs P-384 with
// SHA-384 and P-521 with SHA-512: both are accepted. RSA is PKCS #1 v1.5 with SHA-256.
// Ed25519 is tried pure and pre-hashed (Ed25519ph, which recent cosign uses for keys it
// loads from files); the two are domain-separated, so accepting both admits no forgery.
func loadKey(a Authority) (trustedKey, error) {
	if a.Keyless != nil {
		if a.Key != nil {
			return trustedKey{}, errors.New("give a key or a keyless identity, not both")
		}
		k, err := loadKeyless(*a.Keyless)
		if err != nil {
			return trustedKey{}, err
		}
		return trustedKey{name: a.Name, keyless: k}, nil
	}
	if err := checkKey(a.Key); err != nil {
		return trustedKey{}, err
	}
	der, err := x509.MarshalPKIXPublicKey(a.Key)
	if err != nil {
		return trustedKey{}, fmt.Errorf("encoding key: %w", err)
	}
	k := trustedKey{name: a.Name, der: der}
	add := func(v signature.Verifier, err error) error {
		if err != nil {
			return err
		}
		k.verifiers = append(k.verifiers, v)
		return nil
	}
	switch pub := a.Key.(type) {
	case *ecdsa.PublicKey:
		hashes := []crypto.Hash{crypto.SHA256}
		switch pub.Curve {
		case elliptic.P384():
			hashes = []crypto.Hash{crypto.SHA384, crypto.SHA256}
		case elliptic.P521():
			hashes = []crypto.Hash{crypto.SHA512, crypto.SHA256}
		}
		for _, h := range hashes {
			if err := add(signature.LoadECDSAVerifier(pub, h)); err != nil {
				return trustedKey{}, err
			}
		}
	case *rsa.PublicKey:
		err = add(signature.LoadRSAPKCS1v15Verifier(pub, crypto.SHA256))
	case ed25519.PublicKey:
		if err = add(signature.LoadED25519Verifier(pub)); err == nil {
			err = add(signature.LoadED25519phVerifier(pub))
		}
	}
	if err != nil {
		return trustedKey{}, err
	}
	return k, nil
}

// verifies reports whether sig is this key's signature over msg.
func (k trustedKey) verifies(sig, msg []byte) bool {
	for _, v := range k.verifiers {
		if v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(msg)) == nil {
			return true
		}
	}
	return false
}

// firstSigner returns the name of the first trusted key whose signature sig is over msg,
// or "". A key listed under two names thus counts once per signature.
func firstSigner(keys []trustedKey, sig, msg []byte) string {
	for _, k := range keys {
		if k.verifies(sig, msg) {
			return k.name
		}
	}
	return ""
}

// keyHint is sha256 of the key's PKIX DER: what bundles carry in publicKey.hint and
// DSSE keyid (encoded in base64 or hex, depending on the producer).
func (k trustedKey) keyHint() [sha256.Size]byte { return sha256.Sum256(k.der) }
