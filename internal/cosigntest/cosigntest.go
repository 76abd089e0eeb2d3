package cosigntest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Key is an ECDSA P-256 signing key, the kind `cosign generate-key-pair` makes.
type Key struct {
	priv *ecdsa.PrivateKey
}

// NewKey generates a key.
func NewKey(tb testing.TB) Key {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return Key{priv: k}
}

// Public returns the public key.
func (k Key) Public() crypto.PublicKey { return &k.priv.PublicKey }

// PublicPEM returns the public key as a PEM "PUBLIC KEY" block, as cosign.pub holds it.
func (k Key) PublicPEM(tb testing.TB) string {
	tb.Helper()
	der, err := x509.MarshalPKIXPublicKey(&k.priv.PublicKey)
	if err != nil {
		tb.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// Payload is the simple-signing payload cosign signs for host/repo@digest.
func Payload(dockerReference, digest string) []byte {
	b, _ := json.Marshal(map[string]any{
		"critical": map[string]any{
			"identity": map[string]string{"docker-reference": dockerReference},
			"image":    map[string]string{"docker-manifest-digest": digest},
			"type":     "cosign container image signature",
		},
		"optional": nil,
	})
	return b
}

// Sign returns the base64 ASN.1 ECDSA signature over sha256(payload), as cosign writes it.
func (k Key) Sign(tb testing.TB, payload []byte) string {
	tb.Helper()
	sum := sha256.Sum256(payload)
	sig, err := ecdsa.SignASN1(rand.Reader, k.priv, sum[:])
	if err != nil {
		tb.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// SignLegacy signs repo@digest with k and pushes the signature to the registry at
// registryHost (host:port, plain HTTP) as cosign does: tag sha256-<hex>.sig, one
// simple-signing layer carrying the signature annotation.
func SignLegacy(tb testing.TB, registryHost, repo, digest string, k Key) {
	tb.Helper()
	PushLegacy(tb, registryHost, repo, digest, Payload(registryHost+"/"+repo, digest), k.Sign)
}

// PushLegacy pushes a `.sig` image for digest whose layer is payload, signed with sign.
func PushLegacy(tb testing.TB, registryHost, repo, digest string, payload []byte, sign func(testing.TB, []byte) string) {
	tb.Helper()
	layer := static.NewLayer(payload, types.MediaType("application/vnd.dev.cosign.simplesigning.v1+json"))
	img, err := mutate.Append(mutate.MediaType(mutate.ConfigMediaType(empty.Image, types.OCIConfigJSON), types.OCIManifestSchema1),
		mutate.Addendum{Layer: layer, Annotations: map[string]string{"dev.cosignproject.cosign/signature": sign(tb, payload)}})
	if err != nil {
		tb.Fatal(err)
	}
	tag := strings.Replace(digest, ":", "-", 1) + ".sig"
	ref, err := name.ParseReference(registryHost+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		tb.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		tb.Fatal(err)
	}
}

// AuthorityYAML is a policy `authorities` entry naming k's public key inline, indented for
// a list under a top-level `authorities:` key.
func (k Key) AuthorityYAML(tb testing.TB, name string) string {
	tb.Helper()
	lines := strings.Split(strings.TrimRight(k.PublicPEM(tb), "\n"), "\n")
	for i := range lines {
		lines[i] = "      " + lines[i]
	}
	return "  - name: " + name + "\n    key: |\n" + strings.Join(lines, "\n") + "\n"
}
