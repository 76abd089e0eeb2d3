package verify_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
	"github.com/sigstore/sigstore/pkg/signature/payload"
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
