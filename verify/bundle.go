package verify

import (
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
)

// Types a cosign image signature bundle carries.
const (
	payloadTypeInToto    = "application/vnd.in-toto+json"
	statementTypeV1      = "https://in-toto.io/Statement/v1"
	statementTypeV01     = "https://in-toto.io/Statement/v0.1"
	predicateTypeCosign  = "https://sigstore.dev/cosign/sign/v1"
	maxEnvelopeSignature = 16 // signatures examined in one DSSE envelope
)

// bundle is the part of a sigstore bundle (v0.1 to v0.3, protobuf JSON) verify reads.
type bundle struct {
	MediaType            string `json:"mediaType"`
	VerificationMaterial *struct {
		PublicKey *struct {
			Hint string `json:"hint"`
		} `json:"publicKey"`
		Certificate *struct {
			RawBytes string `json:"rawBytes"`
		} `json:"certificate"`
		X509CertificateChain *struct {
			Certificates []struct {
				RawBytes string `json:"rawBytes"`
			} `json:"certificates"`
		} `json:"x509CertificateChain"`
	} `json:"verificationMaterial"`
	DSSEEnvelope     *envelope       `json:"dsseEnvelope"`
	MessageSignature json.RawMessage `json:"messageSignature"`
}

// envelope is a DSSE envelope.
type envelope struct {
	Payload     string `json:"payload"`
	PayloadType string `json:"payloadType"`
	Signatures  []struct {
		Sig   string `json:"sig"`
		KeyID string `json:"keyid"`
	} `json:"signatures"`
}

// statement is an in-toto statement (v1 or v0.1).
type statement struct {
	Type    string `json:"_type"`
	Subject []struct {
		Name   string            `json:"name"`
		Digest map[string]string `json:"digest"`
	} `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

// parseBundle parses a sigstore bundle's JSON and checks its media type.
func parseBundle(data []byte) (bundle, error) {
	if err := checkJSONObject(data); err != nil {
		return bundle{}, err
	}
	var b bundle
	if err := json.Unmarshal(data, &b); err != nil {
		return bundle{}, err
	}
	if !isBundleMediaType(b.MediaType) {
		return bundle{}, errors.New("mediaType " + quote(b.MediaType) + " is not a sigstore bundle")
	}
	return b, nil
}

// parseStatement parses an in-toto statement.
func parseStatement(data []byte) (statement, error) {
	if err := checkJSONObject(data); err != nil {
		return statement{}, err
	}
	var s statement
	if err := json.Unmarshal(data, &s); err != nil {
		return statement{}, err
	}
	if s.Type != statementTypeV1 && s.Type != statementTypeV01 {
		return statement{}, errors.New("_type " + quote(s.Type) + " is not an in-toto statement")
	}
	return s, nil
}

// pae is DSSE's pre-authentication encoding, the bytes a DSSE signature is over.
func pae(payloadType string, payload []byte) []byte {
	b := make([]byte, 0, len(payloadType)+len(payload)+32)
	b = append(b, "DSSEv1 "...)
	b = strconv.AppendInt(b, int64(len(payloadType)), 10)
	b = append(b, ' ')
	b = append(b, payloadType...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(payload)), 10)
	b = append(b, ' ')
	return append(b, payload...)
}

// checkBundle judges one bundle for the image img.
func checkBundle(data []byte, img digest, keys []trustedKey) verdict {
	b, err := parseBundle(data)
	if err != nil {
		return reject(KindMalformed, "not a sigstore bundle: "+err.Error())
	}
	env := b.DSSEEnvelope
	if env == nil {
		if len(b.MessageSignature) > 0 {
			return reject(KindMalformed, "a message-signature bundle: cosign image signatures are DSSE envelopes over an in-toto statement")
		}
		return reject(KindMalformed, "bundle has no dsseEnvelope")
	}
	if env.PayloadType != payloadTypeInToto {
		return reject(KindWrongPayloadType, "payloadType is "+quote(env.PayloadType)+", not "+quote(payloadTypeInToto))
	}
	payload, err := decodeBase64(env.Payload)
	if err != nil {
		return reject(KindMalformed, "envelope payload: "+err.Error())
	}
	st, err := parseStatement(payload)
	if err != nil {
		return reject(KindMalformed, "envelope payload: "+err.Error())
	}
	if st.PredicateType != predicateTypeCosign {
		return reject(KindAttestation, "attestation, not a signature: predicateType is "+quote(st.PredicateType)+", a signature's is "+quote(predicateTypeCosign))
	}
	if len(env.Signatures) == 0 {
		return reject(KindMalformed, "envelope has no signatures")
	}
	names := envelopeSigners(env, payload, keys)
	if len(names) == 0 {
		if sb := keylessBundle(data); sb != nil {
			if out, ok := checkKeyless(sb, nil, keys); ok {
				if len(out.names) == 0 {
					return reject(out.kind, out.detail)
				}
				names = out.names
			}
		}
	}
	if len(names) == 0 {
		kind, detail := bundleClaims(b).classify(keys)
		return reject(kind, detail)
	}
	for _, s := range st.Subject {
		if s.Digest[img.alg] == img.hex {
			return verdict{authorities: names}
		}
	}
	return reject(KindOtherDigest, "signed by "+quote(names[0])+" for "+subjectList(st)+", not this image: a signature copied from another image")
}

// subjectList describes a statement's subject digests for a message.
func subjectList(st statement) string {
	var ds []string
	for _, s := range st.Subject {
		for alg, hex := range s.Digest {
			ds = append(ds, alg+":"+hex)
		}
	}
	slices.Sort(ds)
	if len(ds) == 0 {
		return "no subject"
	}
	if len(ds) > 3 {
		ds = append(ds[:3], "...")
	}
	return quote(strings.Join(ds, ", "))
}

// envelopeSigners names the trusted keys that signed the DSSE envelope env over payload,
// each once, looking at no more than maxEnvelopeSignature signatures.
func envelopeSigners(env *envelope, payload []byte, keys []trustedKey) []string {
	msg := pae(env.PayloadType, payload)
	var names []string
	for i, s := range env.Signatures {
		if i == maxEnvelopeSignature {
			break
		}
		sig, err := decodeBase64(s.Sig)
		if err != nil {
			continue
		}
		if name := firstSigner(keys, sig, msg); name != "" && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names
}
