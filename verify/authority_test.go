package verify_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/verify"
)

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func TestParsePublicKeyPEM(t *testing.T) {
	t.Parallel()
	pkix := func(pub any) []byte {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return pemOf("PUBLIC KEY", der)
	}
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	rsaKey := newKey(t, "rsa2048").pub.(*rsa.PublicKey)
	cases := []struct {
		name string
		in   []byte
		err  string // "" for success
	}{
		{"ECDSA P-256", pkix(newKey(t, "p256").pub), ""},
		{"ECDSA P-384", pkix(newKey(t, "p384").pub), ""},
		{"RSA 2048", pkix(rsaKey), ""},
		{"RSA 3072", pkix(newKey(t, "rsa3072").pub), ""},
		{"RSA PKCS #1", pemOf("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(rsaKey)), ""},
		{"Ed25519", pkix(newKey(t, "ed25519").pub), ""},
		{"ECDSA P-224", pkix(&p224.PublicKey), "P-224 is not supported"},
		{"RSA 1024", pkix(&rsa1024.PublicKey), "1024 bits is not supported"},
		{"a cosign private key", pemOf("ENCRYPTED SIGSTORE PRIVATE KEY", []byte("x")), "never the private key"},
		{"a PKCS #8 private key", pemOf("PRIVATE KEY", []byte("x")), "never the private key"},
		{"a certificate", pemOf("CERTIFICATE", []byte("x")), "keyless"},
		{"another PEM type", pemOf("OPENSSH KEY", []byte("x")), `expected "PUBLIC KEY"`},
		{"not PEM", []byte("ssh-ed25519 AAAA... user@host"), "no PEM block"},
		{"corrupt DER", pemOf("PUBLIC KEY", []byte("not DER")), "parsing PUBLIC KEY"},
	}
	for _, c := range cases {
		pub, err := verify.ParsePublicKeyPEM(c.in)
		switch {
		case c.err == "" && (err != nil || pub == nil):
			t.Errorf("%s: %v", c.name, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.err)
		}
	}
}
