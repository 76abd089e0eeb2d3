package cosigntest

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Sigstore is an in-process Fulcio CA, Rekor log and timestamp authority
// (sigstore-go's VirtualSigstore) that issues keyless signatures offline.
// Real cosign keyless output cannot be produced offline: it needs an OIDC
// token, Fulcio and Rekor.
type Sigstore struct {
	vs *ca.VirtualSigstore
}

// NewSigstore starts a Sigstore with fresh keys.
func NewSigstore(tb testing.TB) *Sigstore {
	tb.Helper()
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		tb.Fatal(err)
	}
	return &Sigstore{vs: vs}
}

// TrustedRoot is the trusted_root.json of s: its Fulcio CA, Rekor log, CT
// log and timestamp authority.
func (s *Sigstore) TrustedRoot(tb testing.TB) []byte {
	tb.Helper()
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, s.vs.FulcioCertificateAuthorities(), rawLogIDs(tb, s.vs.CTLogs()), s.vs.TimestampingAuthorities(), rawLogIDs(tb, s.vs.RekorLogs()))
	if err != nil {
		tb.Fatal(err)
	}
	data, err := tr.MarshalJSON()
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// TrustedRootWithCA is the trusted root of s with the Fulcio CA of ca
// instead of its own: its logs would accept what s signs, but not its
// certificates.
func (s *Sigstore) TrustedRootWithCA(tb testing.TB, ca *Sigstore) []byte {
	tb.Helper()
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, ca.vs.FulcioCertificateAuthorities(), rawLogIDs(tb, s.vs.CTLogs()), s.vs.TimestampingAuthorities(), rawLogIDs(tb, s.vs.RekorLogs()))
	if err != nil {
		tb.Fatal(err)
	}
	data, err := tr.MarshalJSON()
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// rawLogIDs returns logs with their IDs as the raw key IDs a trusted_root.json
// carries: VirtualSigstore keeps the hex text there, which would not survive
// the round trip through JSON.
func rawLogIDs(tb testing.TB, logs map[string]*root.TransparencyLog) map[string]*root.TransparencyLog {
	tb.Helper()
	out := make(map[string]*root.TransparencyLog, len(logs))
	for k, l := range logs {
		id, err := hex.DecodeString(string(l.ID))
		if err != nil {
			tb.Fatal(err)
		}
		c := *l
		c.ID = id
		out[k] = &c
	}
	return out
}

// KeylessOptions changes how a keyless signature is made.
type KeylessOptions struct {
	// At is when the transparency log integrated the entry; zero means five
	// minutes from now (the certificate is valid from now for ten minutes).
	At time.Time
	// NoTimestamp leaves out the timestamp authority's RFC 3161 timestamp.
	NoTimestamp bool
	// Tamper changes the signed content after signing.
	Tamper bool
}

func (o KeylessOptions) at() time.Time {
	if o.At.IsZero() {
		return time.Now().Add(5 * time.Minute)
	}
	return o.At
}

// set signs a Rekor v1 entry's signed entry timestamp as the log of s.
func (s *Sigstore) set(tb testing.TB, e *tlog.Entry) []byte {
	tb.Helper()
	tle := e.TransparencyLogEntry()
	sig, err := s.vs.RekorSignPayload(tlog.RekorPayload{
		Body:           base64.StdEncoding.EncodeToString(tle.CanonicalizedBody),
		IntegratedTime: tle.IntegratedTime,
		LogIndex:       tle.LogIndex,
		LogID:          hex.EncodeToString(tle.LogId.KeyId),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return sig
}

// LegacyKeylessAnnotations signs payload as cosign v2 keyless `sign` does
// for identity (an email SAN) and issuer, and returns the annotations of the
// `.sig` layer: the signature, the certificate, the chain and the Rekor
// bundle with its signed entry timestamp.
func (s *Sigstore) LegacyKeylessAnnotations(tb testing.TB, payload []byte, identity, issuer string, o KeylessOptions) map[string]string {
	tb.Helper()
	te, err := s.vs.SignAtTime(identity, issuer, payload, o.at())
	if err != nil {
		tb.Fatal(err)
	}
	vc, _ := te.VerificationContent()
	sc, _ := te.SignatureContent()
	entries, _ := te.TlogEntries()
	certPEM, err := cryptoutils.MarshalCertificateToPEM(vc.Certificate())
	if err != nil {
		tb.Fatal(err)
	}
	tle := entries[0].TransparencyLogEntry()
	rb, err := json.Marshal(map[string]any{
		"SignedEntryTimestamp": base64.StdEncoding.EncodeToString(s.set(tb, entries[0])),
		"Payload": map[string]any{
			"body":           base64.StdEncoding.EncodeToString(tle.CanonicalizedBody),
			"integratedTime": tle.IntegratedTime,
			"logIndex":       tle.LogIndex,
			"logID":          hex.EncodeToString(tle.LogId.KeyId),
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	var chain []byte
	for _, c := range s.vs.FulcioCertificateAuthorities()[0].(*root.FulcioCertificateAuthority).Intermediates {
		p, _ := cryptoutils.MarshalCertificateToPEM(c)
		chain = append(chain, p...)
	}
	return map[string]string{
		"dev.cosignproject.cosign/signature": base64.StdEncoding.EncodeToString(sc.Signature()),
		"dev.sigstore.cosign/certificate":    string(certPEM),
		"dev.sigstore.cosign/chain":          string(chain),
		"dev.sigstore.cosign/bundle":         string(rb),
	}
}

// PushLegacyKeyless signs registryHost/repo@digest keyless and pushes the
// signature as cosign v2 does: tag sha256-<hex>.sig, one simple-signing
// layer with the keyless annotations. With o.Tamper the payload pushed names
// the digest with a changed optional section, so that the signature no
// longer covers it.
func (s *Sigstore) PushLegacyKeyless(tb testing.TB, registryHost, repo, digest, identity, issuer string, o KeylessOptions) {
	tb.Helper()
	payload := Payload(registryHost+"/"+repo, digest)
	ann := s.LegacyKeylessAnnotations(tb, payload, identity, issuer, o)
	if o.Tamper {
		payload = []byte(strings.Replace(string(payload), `"optional":null`, `"optional":{"x":"y"}`, 1))
	}
	layer := static.NewLayer(payload, types.MediaType(simpleSigningMediaType))
	img, err := mutate.Append(mutate.MediaType(mutate.ConfigMediaType(empty.Image, types.OCIConfigJSON), types.OCIManifestSchema1),
		mutate.Addendum{Layer: layer, Annotations: ann})
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

// KeylessBundle signs the cosign v3 statement for registryHost/repo@subject
// keyless for identity and issuer, and returns the sigstore bundle v0.3 JSON:
// the certificate, the DSSE envelope, the Rekor entry with inclusion proof
// and signed entry timestamp, and (unless o.NoTimestamp) an RFC 3161
// timestamp.
func (s *Sigstore) KeylessBundle(tb testing.TB, registryHost, repo, subject, identity, issuer string, o KeylessOptions) []byte {
	tb.Helper()
	alg, hx, _ := strings.Cut(subject, ":")
	stmt, err := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []map[string]any{{"name": registryHost + "/" + repo, "digest": map[string]string{alg: hx}}},
		"predicateType": "https://sigstore.dev/cosign/sign/v1",
		"predicate":     map[string]any{},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return s.statementBundle(tb, stmt, identity, issuer, o)
}

// statementBundle signs an in-toto statement keyless and returns the sigstore bundle
// v0.3 JSON (see KeylessBundle). With o.Tamper, an empty predicate is changed after
// signing, and any other statement gets a space added to its payload.
func (s *Sigstore) statementBundle(tb testing.TB, stmt []byte, identity, issuer string, o KeylessOptions) []byte {
	tb.Helper()
	te, err := s.vs.AttestAtTime(identity, issuer, stmt, o.at(), true)
	if err != nil {
		tb.Fatal(err)
	}
	vc, _ := te.VerificationContent()
	sc, _ := te.SignatureContent()
	entries, _ := te.TlogEntries()
	tss, _ := te.Timestamps()
	env := sc.EnvelopeContent().RawEnvelope()
	tle := proto.Clone(entries[0].TransparencyLogEntry()).(*protorekor.TransparencyLogEntry)
	tle.KindVersion = &protorekor.KindVersion{Kind: "dsse", Version: "0.0.1"}
	tle.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: s.set(tb, entries[0])}
	vm := &protobundle.VerificationMaterial{
		Content:     &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: vc.Certificate().Raw}},
		TlogEntries: []*protorekor.TransparencyLogEntry{tle},
	}
	if !o.NoTimestamp {
		vm.TimestampVerificationData = &protobundle.TimestampVerificationData{}
		for _, t := range tss {
			vm.TimestampVerificationData.Rfc3161Timestamps = append(vm.TimestampVerificationData.Rfc3161Timestamps, &protocommon.RFC3161SignedTimestamp{SignedTimestamp: t})
		}
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		tb.Fatal(err)
	}
	if o.Tamper {
		if t := strings.Replace(string(payload), `"predicate":{}`, `"predicate":{"x":"y"}`, 1); t != string(payload) {
			payload = []byte(t)
		} else {
			payload = append(payload, ' ')
		}
	}
	sig, err := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
	if err != nil {
		tb.Fatal(err)
	}
	b := &protobundle.Bundle{
		MediaType:            BundleMediaType,
		VerificationMaterial: vm,
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload: payload, PayloadType: env.PayloadType,
			Signatures: []*protodsse.Signature{{Sig: sig}},
		}},
	}
	data, err := protojson.Marshal(b)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// PushKeylessBundle pushes KeylessBundle as cosign v3 does: an OCI referrer
// of repo@subject whose one layer is the bundle. It returns the referrer's
// digest.
func (s *Sigstore) PushKeylessBundle(tb testing.TB, registryHost, repo, subject, identity, issuer string, o KeylessOptions) string {
	tb.Helper()
	b := s.KeylessBundle(tb, registryHost, repo, subject, identity, issuer, o)
	return pushReferrer(tb, registryHost, repo, subject, map[string]any{
		"artifactType": BundleMediaType,
		"layers":       []any{pushBlob(tb, registryHost, repo, b, BundleMediaType)},
		"annotations": map[string]string{
			"dev.sigstore.bundle.content":       "dsse-envelope",
			"dev.sigstore.bundle.predicateType": "https://sigstore.dev/cosign/sign/v1",
		},
	})
}
