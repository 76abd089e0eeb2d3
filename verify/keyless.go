package verify

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// Keyless is a certificate identity an authority trusts instead of a key: signatures made
// with a Fulcio certificate issued to Subject (or a subject matching SubjectRegExp) as
// authenticated by the OIDC Issuer, checked fully offline against TrustedRoot.
type Keyless struct {
	// Issuer is the OIDC issuer the certificate must name, exactly.
	Issuer string
	// Subject is the subject (email or URI SAN) the certificate must name, exactly.
	Subject string
	// SubjectRegExp, when Subject is "", is a regular expression the whole subject must
	// match (it is anchored at both ends).
	SubjectRegExp string
	// TrustedRoot is sigstore's trusted_root.json: the Fulcio CAs the certificate must
	// chain to, the Rekor keys its transparency log entry must be signed by, and the
	// timestamp authorities.
	TrustedRoot []byte
}

// Annotations cosign puts on a keyless legacy signature layer.
const (
	annotationChain = "dev.sigstore.cosign/chain"
)

// KindWrongIdentity means a keyless signature that verified, made by a certificate
// identity no authority trusts.
const KindWrongIdentity Kind = "wrong-identity"

// keylessKey is a keyless authority ready to verify.
type keylessKey struct {
	id       Keyless
	re       *regexp.Regexp
	verifier *sgverify.Verifier
}

// loadKeyless prepares a keyless authority: its trusted root and identity.
func loadKeyless(k Keyless) (*keylessKey, error) {
	if k.Issuer == "" {
		return nil, errors.New("keyless: no issuer")
	}
	out := &keylessKey{id: k}
	switch {
	case k.Subject != "" && k.SubjectRegExp != "":
		return nil, errors.New("keyless: give subject or subjectRegExp, not both")
	case k.Subject == "" && k.SubjectRegExp == "":
		return nil, errors.New("keyless: no subject or subjectRegExp")
	case k.SubjectRegExp != "":
		re, err := regexp.Compile("^(?:" + k.SubjectRegExp + ")$")
		if err != nil {
			return nil, fmt.Errorf("keyless: subjectRegExp: %w", err)
		}
		out.re = re
	}
	v, err := rootVerifier(k.TrustedRoot)
	if err != nil {
		return nil, err
	}
	out.verifier = v
	return out, nil
}

// verifiers holds the sigstore-go verifier of each trusted root recently used, by the
// SHA-256 of its JSON: a trusted root is parsed once, not on every verification.
var verifiers struct {
	sync.Mutex
	m map[[sha256.Size]byte]*sgverify.Verifier
}

// maxVerifiers bounds the verifiers kept; past it the cache starts over (trusted roots
// change with the policy, rarely).
const maxVerifiers = 32

// rootVerifier returns the verifier for the trusted root in data. Offline: a
// transparency log entry (its signed entry timestamp or inclusion proof checked against
// the Rekor keys of the trusted root) is required, and the certificate must have been
// valid at a time the log or a timestamp authority of the trusted root observed.
func rootVerifier(data []byte) (*sgverify.Verifier, error) {
	sum := sha256.Sum256(data)
	verifiers.Lock()
	v := verifiers.m[sum]
	verifiers.Unlock()
	if v != nil {
		return v, nil
	}
	tr, err := root.NewTrustedRootFromJSON(data)
	if err != nil {
		return nil, fmt.Errorf("keyless: trusted root: %w", err)
	}
	v, err = sgverify.NewVerifier(tr, sgverify.WithTransparencyLog(1), sgverify.WithObserverTimestamps(1))
	if err != nil {
		return nil, fmt.Errorf("keyless: %w", err)
	}
	verifiers.Lock()
	if verifiers.m == nil || len(verifiers.m) >= maxVerifiers {
		verifiers.m = map[[sha256.Size]byte]*sgverify.Verifier{}
	}
	verifiers.m[sum] = v
	verifiers.Unlock()
	return v, nil
}

// required describes the identity k requires, for messages.
func (k *keylessKey) required() string {
	if k.re != nil {
		return fmt.Sprintf("subject matching %q from issuer %q", k.id.SubjectRegExp, k.id.Issuer)
	}
	return fmt.Sprintf("subject %q from issuer %q", k.id.Subject, k.id.Issuer)
}

// matches reports whether the certificate names k's identity.
func (k *keylessKey) matches(subject, issuer string) bool {
	if issuer != k.id.Issuer {
		return false
	}
	if k.re != nil {
		return k.re.MatchString(subject)
	}
	return subject == k.id.Subject
}

// keylessOutcome is what the keyless authorities made of one signed entity.
type keylessOutcome struct {
	names  []string // authorities whose identity and trust root it verified with
	kind   Kind
	detail string
}

// checkKeyless verifies entity with every keyless authority among keys. artifact is
// the signed bytes for a message signature, nil for a DSSE envelope (whose subject the
// caller checks). It returns ok=false when no authority is keyless or the entity has
// no certificate, so that the caller's key-based explanation stands.
func checkKeyless(entity sgverify.SignedEntity, artifact []byte, keys []trustedKey) (keylessOutcome, bool) {
	vc, err := entity.VerificationContent()
	if err != nil || vc.Certificate() == nil {
		return keylessOutcome{}, false
	}
	var out keylessOutcome
	var wrong []string
	var found string
	tried := false
	for _, k := range keys {
		if k.keyless == nil {
			continue
		}
		tried = true
		ap := sgverify.WithoutArtifactUnsafe()
		if artifact != nil {
			ap = sgverify.WithArtifact(strings.NewReader(string(artifact)))
		}
		res, err := k.keyless.verifier.Verify(entity, sgverify.NewPolicy(ap, sgverify.WithoutIdentitiesUnsafe()))
		if err != nil {
			if out.detail == "" {
				out.kind, out.detail = classifyKeylessError(err, k.name)
			}
			continue
		}
		subject, issuer := "", ""
		if res.Signature != nil && res.Signature.Certificate != nil {
			subject, issuer = res.Signature.Certificate.SubjectAlternativeName, res.Signature.Certificate.Issuer
		}
		if k.keyless.matches(subject, issuer) {
			if !slices.Contains(out.names, k.name) {
				out.names = append(out.names, k.name)
			}
			continue
		}
		found = fmt.Sprintf("subject %q from issuer %q", subject, issuer)
		wrong = append(wrong, fmt.Sprintf("%q requires %s", k.name, k.keyless.required()))
	}
	if !tried {
		return keylessOutcome{}, false
	}
	if len(out.names) > 0 {
		return keylessOutcome{names: out.names}, true
	}
	if len(wrong) > 0 {
		return keylessOutcome{kind: KindWrongIdentity, detail: "keyless signature by " + found + ", but authority " + strings.Join(wrong, "; authority ")}, true
	}
	return out, true
}

// classifyKeylessError turns a sigstore-go verification failure into a rejection.
func classifyKeylessError(err error, name string) (Kind, string) {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "does not match") || strings.Contains(msg, "signature verification failed") || strings.Contains(msg, "failed to verify signature"):
		return KindTampered, fmt.Sprintf("keyless signature does not cover this content (authority %q): the signed content was altered: %s", name, msg)
	case strings.Contains(msg, "leaf certificate") || strings.Contains(msg, "certificate signed by unknown authority") || strings.Contains(msg, "x509"):
		return KindUnknownKey, fmt.Sprintf("keyless certificate not trusted by authority %q's trusted root: %s", name, msg)
	case strings.Contains(msg, "certificate validity") || strings.Contains(msg, "expired") || strings.Contains(msg, "not yet valid"):
		return KindUnknownKey, fmt.Sprintf("keyless certificate not valid at any time the trusted root's log or timestamp authorities observed (authority %q): %s", name, msg)
	case strings.Contains(msg, "transparency log") || strings.Contains(msg, "tlog") || strings.Contains(msg, "SET") || strings.Contains(msg, "inclusion"):
		return KindUnknownKey, fmt.Sprintf("keyless signature's transparency log entry does not verify against authority %q's trusted root: %s", name, msg)
	}
	return KindTampered, fmt.Sprintf("keyless signature does not verify (authority %q): %s", name, msg)
}

// keylessBundle parses a sigstore bundle for sigstore-go, or returns nil when it cannot
// (the key-based explanation then stands).
func keylessBundle(data []byte) *sgbundle.Bundle {
	var b sgbundle.Bundle
	if err := b.UnmarshalJSON(data); err != nil {
		return nil
	}
	return &b
}

// rekorBundle is cosign's dev.sigstore.cosign/bundle annotation: a Rekor entry with its
// signed entry timestamp (SET).
type rekorBundle struct {
	SignedEntryTimestamp string `json:"SignedEntryTimestamp"`
	Payload              struct {
		Body           string `json:"body"`
		IntegratedTime int64  `json:"integratedTime"`
		LogIndex       int64  `json:"logIndex"`
		LogID          string `json:"logID"`
	} `json:"Payload"`
}

// legacyEntity is a keyless legacy signature (certificate and Rekor bundle annotations)
// as a sigstore-go signed entity: a message signature over the simple-signing payload,
// its certificate, and the Rekor entry with its SET, without inclusion proof.
type legacyEntity struct {
	sgverify.BaseSignedEntity
	cert  *x509.Certificate
	msg   *sgbundle.MessageSignature
	entry *tlog.Entry
}

func (e *legacyEntity) HasInclusionPromise() bool { return true }
func (e *legacyEntity) HasInclusionProof() bool   { return false }
func (e *legacyEntity) Version() (string, error)  { return "v0.1", nil }
func (e *legacyEntity) Timestamps() ([][]byte, error) {
	return nil, nil
}
func (e *legacyEntity) TlogEntries() ([]*tlog.Entry, error) { return []*tlog.Entry{e.entry}, nil }
func (e *legacyEntity) VerificationContent() (sgverify.VerificationContent, error) {
	return sgbundle.NewCertificate(e.cert), nil
}
func (e *legacyEntity) SignatureContent() (sgverify.SignatureContent, error) { return e.msg, nil }

// newLegacyEntity reads the keyless annotations of a legacy signature layer. It
// returns ok=false when the layer carries no certificate (a key signature), and an
// error when the keyless annotations are there but malformed. The chain annotation is
// not trusted: the certificate must chain to a CA of the trusted root.
func newLegacyEntity(payload, sig []byte, annotations map[string]string) (*legacyEntity, bool, error) {
	certPEM := annotations[annotationCertificate]
	if certPEM == "" {
		return nil, false, nil
	}
	certs, err := cryptoutils.UnmarshalCertificatesFromPEM([]byte(certPEM))
	if err != nil || len(certs) == 0 {
		return nil, true, fmt.Errorf("%s annotation is not a PEM certificate", annotationCertificate)
	}
	rb := annotations[annotationRekorBundle]
	if rb == "" {
		return nil, true, fmt.Errorf("keyless signature without a %s annotation: no transparency log entry to verify offline", annotationRekorBundle)
	}
	if err := checkJSONObject([]byte(rb)); err != nil {
		return nil, true, fmt.Errorf("%s annotation: %v", annotationRekorBundle, err)
	}
	var b rekorBundle
	if err := json.Unmarshal([]byte(rb), &b); err != nil {
		return nil, true, fmt.Errorf("%s annotation: %v", annotationRekorBundle, err)
	}
	body, err := base64.StdEncoding.DecodeString(b.Payload.Body)
	if err != nil {
		return nil, true, fmt.Errorf("%s annotation: Payload.body: %v", annotationRekorBundle, err)
	}
	set, err := base64.StdEncoding.DecodeString(b.SignedEntryTimestamp)
	if err != nil || len(set) == 0 {
		return nil, true, fmt.Errorf("%s annotation: SignedEntryTimestamp is not base64", annotationRekorBundle)
	}
	logID, err := hex.DecodeString(b.Payload.LogID)
	if err != nil || len(logID) == 0 {
		return nil, true, fmt.Errorf("%s annotation: Payload.logID is not hex", annotationRekorBundle)
	}
	entry, err := tlog.NewEntry(body, b.Payload.IntegratedTime, b.Payload.LogIndex, logID, set, nil) //nolint:staticcheck // the only constructor for a Rekor v1 entry from its parts
	if err != nil {
		return nil, true, fmt.Errorf("%s annotation: %v", annotationRekorBundle, err)
	}
	d := sha256.Sum256(payload)
	return &legacyEntity{cert: certs[0], msg: sgbundle.NewMessageSignature(d[:], "SHA2_256", sig), entry: entry}, true, nil
}

// hasKeyless reports whether any of keys is a keyless authority.
func hasKeyless(keys []trustedKey) bool {
	for _, k := range keys {
		if k.keyless != nil {
			return true
		}
	}
	return false
}
