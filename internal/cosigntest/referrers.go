package cosigntest

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Media types of cosign's referrer formats.
const (
	// SignatureArtifactType is the artifactType of a cosign signature stored as an OCI 1.1
	// referrer (cosign v2 `sign --registry-referrers-mode=oci-1-1`).
	SignatureArtifactType = "application/vnd.dev.cosign.artifact.sig.v1+json"
	// BundleMediaType is the media type (and artifactType) of a sigstore bundle v0.3, as
	// cosign v3 stores its signatures.
	BundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"

	simpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	emptyConfigMediaType   = "application/vnd.oci.empty.v1+json"
	ociManifestMediaType   = "application/vnd.oci.image.manifest.v1+json"
)

// SignatureLayer is one simple-signing layer: a payload and its base64 signature.
type SignatureLayer struct {
	Payload   []byte
	Signature string
}

// Layer signs the simple-signing payload of registryHost/repo@digest with k.
func (k Key) Layer(tb testing.TB, registryHost, repo, digest string) SignatureLayer {
	tb.Helper()
	p := Payload(registryHost+"/"+repo, digest)
	return SignatureLayer{Payload: p, Signature: k.Sign(tb, p)}
}

// PushSignatureReferrer pushes a cosign signature as an OCI 1.1 referrer of
// repo@subject, as cosign v2 `sign --registry-referrers-mode=oci-1-1` does: an OCI
// manifest with artifactType SignatureArtifactType, the empty config, one simple-signing
// layer per entry of layers (each distinct payload uploaded once) and subject. It is
// pushed with go-containerregistry, which also updates the referrers fallback tag
// `sha256-<hex>` of a registry without the referrers API. It returns the referrer's digest.
func PushSignatureReferrer(tb testing.TB, registryHost, repo, subject string, layers ...SignatureLayer) string {
	tb.Helper()
	blobs := map[string]map[string]any{}
	descs := make([]any, len(layers))
	for i, l := range layers {
		d, ok := blobs[string(l.Payload)]
		if !ok {
			d = pushBlob(tb, registryHost, repo, l.Payload, simpleSigningMediaType)
			blobs[string(l.Payload)] = d
		}
		descs[i] = map[string]any{"mediaType": d["mediaType"], "digest": d["digest"], "size": d["size"],
			"annotations": map[string]string{"dev.cosignproject.cosign/signature": l.Signature}}
	}
	return pushReferrer(tb, registryHost, repo, subject, map[string]any{
		"artifactType": SignatureArtifactType,
		"layers":       descs,
	})
}

// PushBundle signs repo@subject with k as cosign v3 `sign --key` does and pushes the
// signature as a sigstore bundle v0.3 referrer: a DSSE envelope over an in-toto statement
// with predicate type https://sigstore.dev/cosign/sign/v1 naming subject, in an OCI
// manifest with artifactType BundleMediaType whose one layer is the bundle. It returns the
// referrer's digest.
func PushBundle(tb testing.TB, registryHost, repo, subject string, k Key) string {
	tb.Helper()
	alg, hex, _ := strings.Cut(subject, ":")
	stmt, err := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []map[string]any{{"name": registryHost + "/" + repo, "digest": map[string]string{alg: hex}}},
		"predicateType": "https://sigstore.dev/cosign/sign/v1",
		"predicate":     map[string]any{},
	})
	if err != nil {
		tb.Fatal(err)
	}
	const payloadType = "application/vnd.in-toto+json"
	pae := fmt.Sprintf("DSSEv1 %d %s %d %s", len(payloadType), payloadType, len(stmt), stmt)
	der, err := x509.MarshalPKIXPublicKey(&k.priv.PublicKey)
	if err != nil {
		tb.Fatal(err)
	}
	hint := sha256.Sum256(der)
	bundle, err := json.Marshal(map[string]any{
		"mediaType": BundleMediaType,
		"verificationMaterial": map[string]any{
			"publicKey":   map[string]string{"hint": base64.StdEncoding.EncodeToString(hint[:])},
			"tlogEntries": []any{},
		},
		"dsseEnvelope": map[string]any{
			"payload":     base64.StdEncoding.EncodeToString(stmt),
			"payloadType": payloadType,
			"signatures":  []map[string]string{{"sig": k.Sign(tb, []byte(pae))}},
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return pushReferrer(tb, registryHost, repo, subject, map[string]any{
		"artifactType": BundleMediaType,
		"layers":       []any{pushBlob(tb, registryHost, repo, bundle, BundleMediaType)},
		"annotations": map[string]string{
			"dev.sigstore.bundle.content":       "dsse-envelope",
			"dev.sigstore.bundle.predicateType": "https://sigstore.dev/cosign/sign/v1",
		},
	})
}

// pushReferrer completes fields into an OCI manifest whose subject is repo@subject and
// pushes it by digest.
func pushReferrer(tb testing.TB, registryHost, repo, subject string, fields map[string]any) string {
	tb.Helper()
	sref, err := name.ParseReference(registryHost+"/"+repo+"@"+subject, name.Insecure)
	if err != nil {
		tb.Fatal(err)
	}
	sd, err := remote.Head(sref)
	if err != nil {
		tb.Fatal(err)
	}
	m := map[string]any{
		"schemaVersion": 2,
		"mediaType":     ociManifestMediaType,
		"config":        pushBlob(tb, registryHost, repo, []byte("{}"), emptyConfigMediaType),
		"subject":       map[string]any{"mediaType": sd.MediaType, "digest": subject, "size": sd.Size},
	}
	for k, v := range fields {
		m[k] = v
	}
	body, err := json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	d := fmt.Sprintf("sha256:%x", sha256.Sum256(body))
	ref, err := name.ParseReference(registryHost+"/"+repo+"@"+d, name.Insecure)
	if err != nil {
		tb.Fatal(err)
	}
	if err := remote.Put(ref, rawManifest{body: body, mt: ociManifestMediaType}); err != nil {
		tb.Fatal(err)
	}
	return d
}

// pushBlob uploads data to repo and returns its descriptor.
func pushBlob(tb testing.TB, registryHost, repo string, data []byte, mediaType string) map[string]any {
	tb.Helper()
	l := static.NewLayer(data, types.MediaType(mediaType))
	r, err := name.NewRepository(registryHost+"/"+repo, name.Insecure)
	if err != nil {
		tb.Fatal(err)
	}
	if err := remote.WriteLayer(r, l); err != nil {
		tb.Fatal(err)
	}
	d, _ := l.Digest()
	return map[string]any{"mediaType": mediaType, "digest": d.String(), "size": len(data)}
}

// rawManifest is a manifest pushed as is.
type rawManifest struct {
	body []byte
	mt   types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.body, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }
