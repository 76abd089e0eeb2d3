package verify_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/portcullis-dev/portcullis/verify"
)

// key is a signing key made for a test, with the signer cosign would use for it.
type key struct {
	name string
	pub  crypto.PublicKey
	sv   signature.SignerVerifier
}

var (
	keysMu sync.Mutex
	keys   = map[string]key{}
)

// newKey returns the test key of kind (made once per test binary): p256, p384 (signing
// with SHA-256, cosign's default), p384-sha384 (sigstore's default pairing), rsa2048,
// rsa3072, ed25519 (pure), ed25519ph (pre-hashed, as recent cosign signs with key files),
// and other-* for keys no authority trusts.
func newKey(t testing.TB, kind string) key {
	t.Helper()
	keysMu.Lock()
	defer keysMu.Unlock()
	if k, ok := keys[kind]; ok {
		return k
	}
	var (
		pub crypto.PublicKey
		sv  signature.SignerVerifier
		err error
	)
	switch strings.TrimPrefix(kind, "other-") {
	case "p256", "p384", "p384-sha384":
		curve, h := elliptic.P256(), crypto.SHA256
		if strings.Contains(kind, "p384") {
			curve = elliptic.P384()
		}
		if strings.HasSuffix(kind, "sha384") {
			h = crypto.SHA384
		}
		var priv *ecdsa.PrivateKey
		if priv, err = ecdsa.GenerateKey(curve, rand.Reader); err == nil {
			pub = &priv.PublicKey
			sv, err = signature.LoadECDSASignerVerifier(priv, h)
		}
	case "rsa2048", "rsa3072":
		bits := 2048
		if strings.HasSuffix(kind, "3072") {
			bits = 3072
		}
		var priv *rsa.PrivateKey
		if priv, err = rsa.GenerateKey(rand.Reader, bits); err == nil {
			pub = &priv.PublicKey
			sv, err = signature.LoadRSAPKCS1v15SignerVerifier(priv, crypto.SHA256)
		}
	case "ed25519", "ed25519ph":
		var priv ed25519.PrivateKey
		if pub, priv, err = ed25519.GenerateKey(rand.Reader); err == nil {
			if strings.HasSuffix(kind, "ph") {
				sv, err = signature.LoadED25519phSignerVerifier(priv)
			} else {
				sv, err = signature.LoadED25519SignerVerifier(priv)
			}
		}
	default:
		t.Fatalf("unknown key kind %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	k := key{name: kind, pub: pub, sv: sv}
	keys[kind] = k
	return k
}

// authority returns the key as the gate would configure it: through its PEM file.
func (k key) authority(t testing.TB) verify.Authority {
	t.Helper()
	pemBytes, err := cryptoutils.MarshalPublicKeyToPEM(k.pub)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := verify.ParsePublicKeyPEM(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	return verify.Authority{Name: k.name, Key: pub}
}

// sign signs msg as cosign does with this key.
func (k key) sign(t testing.TB, msg []byte) []byte {
	t.Helper()
	sig, err := k.sv.SignMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// hint is the bundle's publicKey.hint for the key: base64 of sha256 of its PKIX DER.
func (k key) hint(t testing.TB) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.pub)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// selfSignedPEM returns a PEM certificate for k's key, as a Fulcio certificate names the
// key of a keyless signature.
func selfSignedPEM(t testing.TB, k key) string {
	t.Helper()
	ca, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		EmailAddresses: []string{"ci@example.com"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.pub, ca)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}
