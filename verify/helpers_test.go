package verify_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
	"github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/upstream"
	"github.com/portcullis-dev/portcullis/verify"
)

// Media types and annotations of cosign's formats, as cosign writes them.
const (
	simpleSigningMT  = "application/vnd.dev.cosign.simplesigning.v1+json"
	bundleMT         = "application/vnd.dev.sigstore.bundle.v0.3+json"
	sigAnnotation    = "dev.cosignproject.cosign/signature"
	rekorAnnotation  = "dev.sigstore.cosign/bundle"
	certAnnotation   = "dev.sigstore.cosign/certificate"
	inTotoType       = "application/vnd.in-toto+json"
	cosignPredicate  = "https://sigstore.dev/cosign/sign/v1"
	slsaPredicate    = "https://slsa.dev/provenance/v1"
	statementV1      = "https://in-toto.io/Statement/v1"
	emptyConfigMT    = "application/vnd.oci.empty.v1+json"
	ociManifestMT    = "application/vnd.oci.image.manifest.v1+json"
	bundleContentKey = "dev.sigstore.bundle.content"
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

// reg is a running registry with a verifier reading it through upstream.Client.
type reg struct {
	url, host string
	client    *upstream.Client
	verifier  *verify.Verifier
	read      atomic.Int64 // response body bytes read through client
}

// distribution starts a distribution v3 registry (no referrers API: cosign falls back
// to the referrers tag scheme).
func distribution(t testing.TB, opts ...verify.Option) *reg {
	return newReg(t, regtest.Registry(t), opts...)
}

// ggcrRegistry starts go-containerregistry's registry with the referrers API, which
// stores manifests without validating them.
func ggcrRegistry(t testing.TB, opts ...verify.Option) *reg {
	srv := httptest.NewServer(registry.New(registry.WithReferrersSupport(true), registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return newReg(t, srv.URL, opts...)
}

func newReg(t testing.TB, url string, opts ...verify.Option) *reg {
	t.Helper()
	r := &reg{url: url, host: strings.TrimPrefix(url, "http://")}
	c, err := upstream.New(url, countingTransport{next: http.DefaultTransport, n: &r.read})
	if err != nil {
		t.Fatal(err)
	}
	r.client = c
	r.verifier = verify.New(c, opts...)
	return r
}

// countingTransport counts the response body bytes read.
type countingTransport struct {
	next http.RoundTripper
	n    *atomic.Int64
}

func (c countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err == nil {
		resp.Body = countingBody{ReadCloser: resp.Body, n: c.n}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// ref parses a reference in the registry.
func (r *reg) ref(t testing.TB, s string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(r.host+"/"+s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// image is a pushed image.
type image struct {
	repo, digest string
	size         int64
	mediaType    types.MediaType
}

// hex returns the image digest's hex part.
func (i image) hex() string { return strings.TrimPrefix(i.digest, "sha256:") }

// pushImage pushes a random image to repo by digest.
func (r *reg) pushImage(t testing.TB, repo string) image {
	t.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	raw, _ := img.RawManifest()
	mt, _ := img.MediaType()
	if err := remote.Write(r.ref(t, repo+"@"+d.String()), img); err != nil {
		t.Fatal(err)
	}
	return image{repo: repo, digest: d.String(), size: int64(len(raw)), mediaType: mt}
}

// verify runs Verify on the image.
func (r *reg) verify(t testing.TB, img image, authorities ...verify.Authority) verify.Result {
	t.Helper()
	res, err := r.verifier.Verify(context.Background(), img.repo, img.digest, authorities)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return res
}

// legacySig is one layer of a `.sig` manifest.
type legacySig struct {
	payload     []byte
	mediaType   string
	annotations map[string]string
}

// simpleSigning returns cosign's simple-signing payload for img (digest names the image
// the payload claims).
func (r *reg) simpleSigning(t testing.TB, repo, digest string) []byte {
	t.Helper()
	d, err := name.NewDigest(r.host+"/"+repo+"@"+digest, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	b, err := payload.Cosign{Image: d}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signLegacy signs img's simple-signing payload with k, as `cosign sign --key
// --tlog-upload=false` does.
func (r *reg) signLegacy(t testing.TB, k key, img image) legacySig {
	t.Helper()
	p := r.simpleSigning(t, img.repo, img.digest)
	return legacySig{payload: p, mediaType: simpleSigningMT, annotations: map[string]string{
		sigAnnotation: base64.StdEncoding.EncodeToString(k.sign(t, p)),
	}}
}

// pushLegacy writes the `.sig` manifest of img with one layer per signature, as cosign
// does, and returns its digest.
func (r *reg) pushLegacy(t testing.TB, img image, sigs ...legacySig) string {
	t.Helper()
	var si v1.Image = empty.Image
	si = mutate.MediaType(si, types.OCIManifestSchema1)
	si = mutate.ConfigMediaType(si, types.OCIConfigJSON)
	for _, s := range sigs {
		var err error
		si, err = mutate.Append(si, mutate.Addendum{Layer: static.NewLayer(s.payload, types.MediaType(s.mediaType)), Annotations: s.annotations})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := remote.Write(r.ref(t, img.repo+":sha256-"+img.hex()+".sig"), si); err != nil {
		t.Fatal(err)
	}
	d, err := si.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// statement returns an in-toto v1 statement about img.
func statement(t testing.TB, img image, predicateType string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"_type":         statementV1,
		"subject":       []map[string]any{{"name": img.repo, "digest": map[string]string{"sha256": img.hex()}}},
		"predicateType": predicateType,
		"predicate":     map[string]any{},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// envelope signs stmt in a DSSE envelope with sigstore's DSSE signer.
func envelope(t testing.TB, k key, payloadType string, stmt []byte) []byte {
	t.Helper()
	env, err := dsse.WrapSigner(k.sv, payloadType).SignMessage(bytes.NewReader(stmt))
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// bundleJSON wraps a DSSE envelope in a sigstore bundle v0.3 naming k's key by hint.
func bundleJSON(t testing.TB, k key, env []byte) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"mediaType": bundleMT,
		"verificationMaterial": map[string]any{
			"publicKey":   map[string]string{"hint": k.hint(t)},
			"tlogEntries": []any{},
		},
		"dsseEnvelope": json.RawMessage(env),
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signBundle makes the bundle `cosign sign --key` (v3) makes for img.
func signBundle(t testing.TB, k key, img image) []byte {
	t.Helper()
	return bundleJSON(t, k, envelope(t, k, inTotoType, statement(t, img, cosignPredicate)))
}

// rawManifest is a manifest to push as is.
type rawManifest struct {
	body []byte
	mt   types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.body, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }

// pushBlob uploads data to repo and returns its descriptor.
func (r *reg) pushBlob(t testing.TB, repo string, data []byte, mt string) map[string]any {
	t.Helper()
	l := static.NewLayer(data, types.MediaType(mt))
	repoRef, err := name.NewRepository(r.host+"/"+repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteLayer(repoRef, l); err != nil {
		t.Fatal(err)
	}
	d, _ := l.Digest()
	return map[string]any{"mediaType": mt, "digest": d.String(), "size": len(data)}
}

// pushBundle stores a bundle as cosign v3 does: an OCI 1.1 manifest whose subject is
// subject and whose one layer is the bundle, pushed with go-containerregistry (as cosign
// does), which also writes the referrers fallback tag `sha256-<hex>` when the registry
// has no referrers API. It returns the referrer manifest's digest.
func (r *reg) pushBundle(t testing.TB, repo string, subject image, bundle []byte, predicateType string, edits ...func(map[string]any)) string {
	t.Helper()
	m := map[string]any{
		"schemaVersion": 2,
		"mediaType":     ociManifestMT,
		"artifactType":  bundleMT,
		"config":        r.pushBlob(t, repo, []byte("{}"), emptyConfigMT),
		"layers":        []any{r.pushBlob(t, repo, bundle, bundleMT)},
		"subject":       map[string]any{"mediaType": subject.mediaType, "digest": subject.digest, "size": subject.size},
		"annotations": map[string]string{
			bundleContentKey:                    "dsse-envelope",
			"dev.sigstore.bundle.predicateType": predicateType,
		},
	}
	for _, e := range edits {
		e(m)
	}
	body, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	d := fmt.Sprintf("sha256:%x", sum)
	if err := remote.Put(r.ref(t, repo+"@"+d), rawManifest{body: body, mt: ociManifestMT}); err != nil {
		t.Fatal(err)
	}
	return d
}

// putRaw PUTs body as the manifest repo:ref with media type mt, bypassing any client-side
// check, and returns its digest.
func (r *reg) putRaw(t testing.TB, repo, ref string, body []byte, mt string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, r.url+"/v2/"+repo+"/manifests/"+ref, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mt)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("PUT %s:%s: %s %s", repo, ref, resp.Status, b)
	}
	sum := sha256.Sum256(body)
	return fmt.Sprintf("sha256:%x", sum)
}

// fallbackDigest returns the digest of the referrers fallback tag of img, or "".
func (r *reg) fallbackDigest(t testing.TB, img image) string {
	t.Helper()
	desc, err := remote.Head(r.ref(t, img.repo+":sha256-"+img.hex()))
	if err != nil {
		return ""
	}
	return desc.Digest.String()
}

// remoteGet returns the raw manifest at ref.
func remoteGet(r *reg, t testing.TB, ref string) ([]byte, error) {
	t.Helper()
	desc, err := remote.Get(r.ref(t, ref))
	if err != nil {
		return nil, err
	}
	return desc.Manifest, nil
}

// rekorBundle returns cosign's `dev.sigstore.cosign/bundle` annotation for a legacy
// signature uploaded to Rekor: the hashedrekord entry names the payload hash and the key.
// (Its SignedEntryTimestamp is not checked offline; verify reads the key as a claim.)
func rekorBundle(t testing.TB, k key, s legacySig) string {
	t.Helper()
	pemKey, err := cryptoutils.MarshalPublicKeyToPEM(k.pub)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(s.payload)
	body, _ := json.Marshal(map[string]any{
		"apiVersion": "0.0.1",
		"kind":       "hashedrekord",
		"spec": map[string]any{
			"data": map[string]any{"hash": map[string]string{"algorithm": "sha256", "value": fmt.Sprintf("%x", sum)}},
			"signature": map[string]any{
				"content":   s.annotations[sigAnnotation],
				"publicKey": map[string]string{"content": base64.StdEncoding.EncodeToString(pemKey)},
			},
		},
	})
	b, _ := json.Marshal(map[string]any{
		"SignedEntryTimestamp": base64.StdEncoding.EncodeToString([]byte("not checked offline")),
		"Payload": map[string]any{
			"body":           base64.StdEncoding.EncodeToString(body),
			"integratedTime": 1767225600,
			"logIndex":       42,
			"logID":          fmt.Sprintf("%x", sha256.Sum256([]byte("log"))),
		},
	})
	return string(b)
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
