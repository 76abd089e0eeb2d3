package secrets

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// Every credential in these tests is generated here: random, well-formed and
// never valid anywhere.

const (
	base62Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	base32Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	base64Alphabet = base62Alphabet + "+/"
	urlAlphabet    = base62Alphabet + "-_"
)

var rng = mrand.New(mrand.NewPCG(1, 2))

func randFrom(alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(b)
}

func fakeGitHub(prefix string) string { return prefix + randFrom(base62Alphabet, 36) }
func fakeGitHubPAT() string {
	return "github_pat_" + randFrom(base62Alphabet, 22) + "_" + randFrom(base62Alphabet, 59)
}
func fakeAWSID() string     { return "AKIA" + randFrom(base32Alphabet, 16) }
func fakeAWSSecret() string { return randFrom(base64Alphabet, 40) }
func fakeGitLab() string    { return "glpat-" + randFrom(urlAlphabet, 20) }
func fakeSlackBot() string {
	return "xoxb-" + randFrom("0123456789", 12) + "-" + randFrom("0123456789", 13) + "-" + randFrom(base62Alphabet, 24)
}
func fakeSlackUser() string {
	return "xoxp-" + randFrom("0123456789", 11) + "-" + randFrom("0123456789", 11) + "-" + randFrom("0123456789", 12) + "-" + randFrom("0123456789abcdef", 32)
}
func fakeSlackWebhook() string {
	return "https://hooks.slack.com/services/T" + randFrom("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 8) + "/B" + randFrom("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 10) + "/" + randFrom(base62Alphabet, 24)
}
func fakeStripe(prefix string) string { return prefix + randFrom(base62Alphabet, 24) }
func fakeNPM() string                 { return "npm_" + randFrom(base62Alphabet, 36) }
func fakePyPI() string                { return "pypi-AgEIcHlwaS5vcmc" + randFrom(urlAlphabet, 120) }
func fakeJWT() string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." +
		enc([]byte(`{"sub":"svc-deployer","iat":1767225600,"exp":1893456000}`)) + "." +
		randFrom(urlAlphabet, 43)
}

func pemOf(t testing.TB, typ string, der []byte) string {
	t.Helper()
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func rsaKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ecKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func rsaPEM(t testing.TB) string {
	return pemOf(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey(t)))
}

func ecPEM(t testing.TB) string {
	der, err := x509.MarshalECPrivateKey(ecKey(t))
	if err != nil {
		t.Fatal(err)
	}
	return pemOf(t, "EC PRIVATE KEY", der)
}

func pkcs8PEM(t testing.TB) string {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pemOf(t, "PRIVATE KEY", der)
}

func opensshPEM(t testing.TB) string {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ssh.MarshalPrivateKey(k, "deploy@ci")
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(b))
}

// encryptedLegacyPEM is an RSA key in OpenSSL's traditional encrypted form;
// the body is random bytes, as ciphertext looks.
func encryptedLegacyPEM(t testing.TB) string {
	body := make([]byte, 1200)
	_, _ = rand.Read(body)
	return string(pem.EncodeToMemory(&pem.Block{
		Type:    "RSA PRIVATE KEY",
		Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,0123456789ABCDEF0123456789ABCDEF"},
		Bytes:   body,
	}))
}

// pgpPrivateBlock is an ASCII-armored OpenPGP secret key block with a random
// body: armor header, blank line, base64, CRC-24 line.
func pgpPrivateBlock() string {
	body := make([]byte, 900)
	_, _ = rand.Read(body)
	b64 := base64.StdEncoding.EncodeToString(body)
	var lines []string
	for len(b64) > 64 {
		lines = append(lines, b64[:64])
		b64 = b64[64:]
	}
	lines = append(lines, b64)
	return "-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: GnuPG v2\n\n" + strings.Join(lines, "\n") + "\n=" + randFrom(base64Alphabet, 4) + "\n-----END PGP PRIVATE KEY BLOCK-----\n"
}

func publicKeyPEM(t testing.TB) string {
	der, err := x509.MarshalPKIXPublicKey(&rsaKey(t).PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pemOf(t, "PUBLIC KEY", der)
}

func certificatePEM(t testing.TB) string {
	k := ecKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "registry.internal"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return pemOf(t, "CERTIFICATE", der)
}

// gcpServiceAccount is a service account key file as the console downloads
// it, with a freshly generated key.
func gcpServiceAccount(t testing.TB) string {
	key := strings.ReplaceAll(pkcs8RSAPEM(t), "\n", `\n`)
	return `{
  "type": "service_account",
  "project_id": "acme-prod",
  "private_key_id": "` + randFrom("0123456789abcdef", 40) + `",
  "private_key": "` + key + `",
  "client_email": "deployer@acme-prod.iam.gserviceaccount.com",
  "client_id": "` + randFrom("0123456789", 21) + `",
  "auth_uri": "https://accounts.google.com/o/oauth2/auth",
  "token_uri": "https://oauth2.googleapis.com/token"
}
`
}

func pkcs8RSAPEM(t testing.TB) string {
	der, err := x509.MarshalPKCS8PrivateKey(rsaKey(t))
	if err != nil {
		t.Fatal(err)
	}
	return pemOf(t, "PRIVATE KEY", der)
}

// assertRedacted fails if found reveals 7 or more consecutive characters of raw.
func assertRedacted(t testing.TB, redacted, raw string) {
	t.Helper()
	for i := 0; i+7 <= len(raw); i++ {
		if strings.Contains(redacted, raw[i:i+7]) {
			t.Fatalf("redacted %q reveals %q of the secret", redacted, raw[i:i+7])
		}
	}
}
