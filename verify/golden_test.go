package verify

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// The golden files are signed by an Ed25519 key derived from a fixed seed (Ed25519
// signatures are deterministic, so -update rewrites identical bytes) for goldenImage.
var (
	goldenKey   = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	goldenImage = "sha256:" + strings.Repeat("ab", 32)
	otherImage  = "sha256:" + strings.Repeat("cd", 32)
)

func goldenKeys(t testing.TB) []trustedKey {
	t.Helper()
	k, err := loadKey(Authority{Name: "release", Key: goldenKey.Public()})
	if err != nil {
		t.Fatal(err)
	}
	return []trustedKey{k}
}

// goldenBundle builds a bundle v0.3 as cosign v3 writes it, with an edit applied to
// the statement before signing and to the envelope after.
func goldenBundle(t testing.TB, payloadType, predicateType, subject string, afterSigning func(env map[string]any)) []byte {
	t.Helper()
	st, _ := json.Marshal(map[string]any{
		"_type":         statementTypeV1,
		"subject":       []any{map[string]any{"name": "registry.example/team/app", "digest": map[string]string{"sha256": strings.TrimPrefix(subject, "sha256:")}}},
		"predicateType": predicateType,
		"predicate":     map[string]any{},
	})
	sv, err := signature.LoadED25519SignerVerifier(goldenKey)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := dsse.WrapSigner(sv, payloadType).SignMessage(bytes.NewReader(st))
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]any
	_ = json.Unmarshal(raw, &env)
	if afterSigning != nil {
		afterSigning(env)
	}
	der, _ := x509.MarshalPKIXPublicKey(goldenKey.Public())
	sum := sha256.Sum256(der)
	b, _ := json.MarshalIndent(map[string]any{
		"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
		"verificationMaterial": map[string]any{
			"publicKey":                 map[string]string{"hint": base64.StdEncoding.EncodeToString(sum[:])},
			"tlogEntries":               []any{},
			"timestampVerificationData": map[string]any{},
		},
		"dsseEnvelope": env,
	}, "", "  ")
	return b
}

// goldenLegacy returns a simple-signing payload for digest as cosign writes it and its
// signature (Ed25519ph, as cosign signs with an Ed25519 key file).
func goldenLegacy(t testing.TB, typ, digest string) ([]byte, []byte) {
	t.Helper()
	p := fmt.Appendf(nil, `{"critical":{"identity":{"docker-reference":"registry.example/team/app"},"image":{"docker-manifest-digest":%q},"type":%q},"optional":{"creator":"ci"}}`, digest, typ)
	sv, err := signature.LoadED25519phSignerVerifier(goldenKey)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := sv.SignMessage(bytes.NewReader(p))
	if err != nil {
		t.Fatal(err)
	}
	return p, sig
}

// golden compares data with testdata/name, or writes it under -update.
func golden(t *testing.T, name string, data []byte) []byte {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	return want
}

func TestGoldenBundles(t *testing.T) {
	tamper := func(env map[string]any) {
		p, _ := base64.StdEncoding.DecodeString(env["payload"].(string))
		env["payload"] = base64.StdEncoding.EncodeToString(bytes.Replace(p, []byte(`"predicate":{}`), []byte(`"predicate":{"x":1}`), 1))
	}
	cases := []struct {
		file string
		data []byte
		kind Kind // "" for verified
	}{
		{"bundle-signature.json", goldenBundle(t, payloadTypeInToto, predicateTypeCosign, goldenImage, nil), ""},
		{"bundle-attestation-slsa.json", goldenBundle(t, payloadTypeInToto, "https://slsa.dev/provenance/v1", goldenImage, nil), KindAttestation},
		{"bundle-wrong-payload-type.json", goldenBundle(t, "application/json", predicateTypeCosign, goldenImage, nil), KindWrongPayloadType},
		{"bundle-other-digest.json", goldenBundle(t, payloadTypeInToto, predicateTypeCosign, otherImage, nil), KindOtherDigest},
		{"bundle-tampered.json", goldenBundle(t, payloadTypeInToto, predicateTypeCosign, goldenImage, tamper), KindTampered},
		{"bundle-message-signature.json", []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"aGludA=="}},"messageSignature":{"messageDigest":{"algorithm":"SHA2_256","digest":"q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s="},"signature":"c2ln"}}` + "\n"), KindMalformed},
	}
	img, _ := parseDigest(goldenImage)
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			data := golden(t, c.file, c.data)
			vd := checkBundle(data, img, goldenKeys(t))
			if vd.kind != c.kind || (c.kind == "" && (len(vd.authorities) != 1 || vd.authorities[0] != "release")) {
				t.Errorf("verdict %+v, want kind %q", vd, c.kind)
			}
		})
	}
}

func TestGoldenLegacyPayloads(t *testing.T) {
	cases := []struct {
		name, typ, digest string
		kind              Kind
	}{
		{"legacy-signature", cosignSignatureType, goldenImage, ""},
		{"legacy-other-digest", cosignSignatureType, otherImage, KindOtherDigest},
		{"legacy-atomic", "atomic container signature", goldenImage, KindWrongPayloadType},
	}
	img, _ := parseDigest(goldenImage)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, sig := goldenLegacy(t, c.typ, c.digest)
			p = golden(t, c.name+".payload.json", p)
			sig = golden(t, c.name+".sig", []byte(base64.StdEncoding.EncodeToString(sig)))
			raw, err := base64.StdEncoding.DecodeString(string(sig))
			if err != nil {
				t.Fatal(err)
			}
			vd := checkLegacy(p, raw, nil, img, goldenKeys(t))
			if vd.kind != c.kind {
				t.Errorf("verdict %+v, want kind %q", vd, c.kind)
			}
		})
	}
}
