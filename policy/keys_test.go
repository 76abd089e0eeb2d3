package policy

import (
	"crypto/dsa" //nolint:staticcheck // DSA keys must be refused
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"
)

// pemBlock encodes der as a PEM block of type typ.
func pemBlock(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

// publicPEM encodes a public key as cosign.pub does: PEM "PUBLIC KEY", PKIX.
func publicPEM(pub any) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return pemBlock("PUBLIC KEY", der)
}

// dsaPublicPEM encodes a DSA public key, which x509 can parse but no
// longer marshal, as PKIX.
func dsaPublicPEM(k *dsa.PublicKey) string {
	params, _ := asn1.Marshal(struct{ P, Q, G *big.Int }{k.P, k.Q, k.G})
	y, _ := asn1.Marshal(k.Y)
	der, err := asn1.Marshal(struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}{
		pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 10040, 4, 1}, Parameters: asn1.RawValue{FullBytes: params}},
		asn1.BitString{Bytes: y, BitLength: 8 * len(y)},
	})
	if err != nil {
		panic(err)
	}
	return pemBlock("PUBLIC KEY", der)
}

// generatedKeys are freshly generated keys of every type the tests need,
// as PEM, generated once per test binary (RSA and DSA take a while).
var generatedKeys = sync.OnceValue(func() map[string]string {
	keys := map[string]string{}
	ec := func(c elliptic.Curve) *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	}
	p256 := ec(elliptic.P256())
	keys["p256"] = publicPEM(&p256.PublicKey)
	keys["p384"] = publicPEM(&ec(elliptic.P384()).PublicKey)
	keys["p521"] = publicPEM(&ec(elliptic.P521()).PublicKey)
	for _, bits := range []int{1024, 2048} {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			panic(err)
		}
		keys[fmt.Sprintf("rsa%d", bits)] = publicPEM(&k.PublicKey)
		if bits == 2048 {
			keys["rsa-pkcs1"] = pemBlock("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&k.PublicKey))
		}
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	keys["ed25519"] = publicPEM(edPub)
	x, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	keys["x25519"] = publicPEM(x.PublicKey())
	var d dsa.PrivateKey
	if err := dsa.GenerateParameters(&d.Parameters, rand.Reader, dsa.L1024N160); err != nil {
		panic(err)
	}
	if err := dsa.GenerateKey(&d, rand.Reader); err != nil {
		panic(err)
	}
	keys["dsa"] = dsaPublicPEM(&d.PublicKey)
	priv, err := x509.MarshalECPrivateKey(p256)
	if err != nil {
		panic(err)
	}
	keys["ec-private"] = pemBlock("EC PRIVATE KEY", priv)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "release"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	cert, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p256.PublicKey, p256)
	if err != nil {
		panic(err)
	}
	keys["certificate"] = pemBlock("CERTIFICATE", cert)
	return keys
})

// testKey returns a generated key of a kind (see generatedKeys) as PEM.
func testKey(t testing.TB, kind string) string {
	t.Helper()
	k, ok := generatedKeys()[kind]
	if !ok {
		t.Fatalf("no generated key %q", kind)
	}
	return k
}

var (
	signerKeysMu sync.Mutex
	signerKeys   []string
)

// signerKey returns the i-th of a set of distinct ECDSA P-256 public keys,
// as PEM.
func signerKey(i int) string {
	signerKeysMu.Lock()
	defer signerKeysMu.Unlock()
	for len(signerKeys) <= i {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		signerKeys = append(signerKeys, publicPEM(&k.PublicKey))
	}
	return signerKeys[i]
}

// indent indents every line of s by n spaces, for a YAML block scalar.
func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+pad) + "\n"
}

// authoritiesYAML is an authorities section with one distinct P-256 key
// per name; a name written "name=command" gets that signCommand.
func authoritiesYAML(names ...string) string {
	var b strings.Builder
	b.WriteString("authorities:\n")
	for i, n := range names {
		name, cmd, _ := strings.Cut(n, "=")
		fmt.Fprintf(&b, "  - name: %s\n", name)
		if cmd != "" {
			fmt.Fprintf(&b, "    signCommand: %q\n", cmd)
		}
		b.WriteString("    key: |\n" + indent(signerKey(i), 6))
	}
	return b.String()
}
