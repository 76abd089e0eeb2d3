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
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// DSSEMediaType is the media type of a DSSE envelope layer in a cosign v2 `.att` manifest.
const DSSEMediaType = "application/vnd.dsse.envelope.v1+json"

const inTotoPayloadType = "application/vnd.in-toto+json"

// Statement is the in-toto statement (v0.1, as cosign v2 `attest` writes it) about
// registryHost/repo@subject with predicateType and predicate (JSON).
func Statement(tb testing.TB, registryHost, repo, subject, predicateType string, predicate []byte) []byte {
	tb.Helper()
	alg, hex, _ := strings.Cut(subject, ":")
	b, err := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v0.1",
		"predicateType": predicateType,
		"subject":       []map[string]any{{"name": registryHost + "/" + repo, "digest": map[string]string{alg: hex}}},
		"predicate":     json.RawMessage(predicate),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// Envelope signs statement with k as cosign does for an attestation: a DSSE envelope,
// payload type application/vnd.in-toto+json, one signature over the pre-authentication
// encoding. It returns the envelope's JSON.
func (k Key) Envelope(tb testing.TB, statement []byte) []byte {
	tb.Helper()
	pae := fmt.Sprintf("DSSEv1 %d %s %d %s", len(inTotoPayloadType), inTotoPayloadType, len(statement), statement)
	b, err := json.Marshal(map[string]any{
		"payloadType": inTotoPayloadType,
		"payload":     base64.StdEncoding.EncodeToString(statement),
		"signatures":  []map[string]string{{"keyid": "", "sig": k.Sign(tb, []byte(pae))}},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// AttestationLayer is one layer of a `.att` manifest: a DSSE envelope and the predicate
// type cosign annotates it with.
type AttestationLayer struct {
	Envelope      []byte
	PredicateType string
}

// PushAttestationTag pushes layers as cosign v2 `attest` stores attestations: the tag
// sha256-<hex>.att of digest, an image manifest with one DSSE envelope layer per
// attestation, annotated with its predicateType.
func PushAttestationTag(tb testing.TB, registryHost, repo, digest string, layers ...AttestationLayer) {
	tb.Helper()
	img := mutate.MediaType(mutate.ConfigMediaType(empty.Image, types.OCIConfigJSON), types.OCIManifestSchema1)
	for _, l := range layers {
		var err error
		img, err = mutate.Append(img, mutate.Addendum{Layer: static.NewLayer(l.Envelope, types.MediaType(DSSEMediaType)),
			Annotations: map[string]string{"predicateType": l.PredicateType}})
		if err != nil {
			tb.Fatal(err)
		}
	}
	tag := strings.Replace(digest, ":", "-", 1) + ".att"
	ref, err := name.ParseReference(registryHost+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		tb.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		tb.Fatal(err)
	}
}

// AttestationBundle is the sigstore bundle v0.3 cosign v3 `attest --key` makes of
// envelope (signed by k): the key's hint and the DSSE envelope.
func (k Key) AttestationBundle(tb testing.TB, envelope []byte) []byte {
	tb.Helper()
	der, err := x509.MarshalPKIXPublicKey(&k.priv.PublicKey)
	if err != nil {
		tb.Fatal(err)
	}
	hint := sha256.Sum256(der)
	b, err := json.Marshal(map[string]any{
		"mediaType": BundleMediaType,
		"verificationMaterial": map[string]any{
			"publicKey":   map[string]string{"hint": base64.StdEncoding.EncodeToString(hint[:])},
			"tlogEntries": []any{},
		},
		"dsseEnvelope": json.RawMessage(envelope),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// PushAttestationBundle pushes a sigstore bundle holding an attestation as cosign v3
// does: an OCI referrer of repo@subject, artifactType the bundle's media type, one bundle
// layer, annotated with the statement's predicate type. It returns the referrer's digest.
func PushAttestationBundle(tb testing.TB, registryHost, repo, subject, predicateType string, bundle []byte) string {
	tb.Helper()
	return pushReferrer(tb, registryHost, repo, subject, map[string]any{
		"artifactType": BundleMediaType,
		"layers":       []any{pushBlob(tb, registryHost, repo, bundle, BundleMediaType)},
		"annotations": map[string]string{
			"dev.sigstore.bundle.content":       "dsse-envelope",
			"dev.sigstore.bundle.predicateType": predicateType,
		},
	})
}

// PushKeylessAttestation signs statement keyless for identity and issuer (certificate,
// Rekor entry and, unless o.NoTimestamp, an RFC 3161 timestamp) and pushes it as cosign v3
// `attest` does: a sigstore bundle referrer of repo@subject. It returns the referrer's
// digest.
func (s *Sigstore) PushKeylessAttestation(tb testing.TB, registryHost, repo, subject, predicateType string, statement []byte, identity, issuer string, o KeylessOptions) string {
	tb.Helper()
	return PushAttestationBundle(tb, registryHost, repo, subject, predicateType, s.statementBundle(tb, statement, identity, issuer, o))
}
