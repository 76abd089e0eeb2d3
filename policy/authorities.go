package policy

import (
	"bytes"
	"crypto"
	"crypto/dsa" //nolint:staticcheck // only to name DSA keys in a refusal
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// Authority is a trusted signing key of a policy: signature rules name
// authorities, and a signature counts for a rule when it verifies with the
// key of an authority the rule lists.
type Authority struct {
	// Name identifies the authority in rules, evidence and messages.
	Name string `json:"name"`
	// PublicKey is an *ecdsa.PublicKey (P-256 or P-384), an *rsa.PublicKey
	// (2048 to 8192 bits) or an ed25519.PublicKey.
	PublicKey crypto.PublicKey `json:"-"`
	// KeyFile is the keyFile as written in the policy, "" for an inline key.
	KeyFile string `json:"keyFile,omitempty"`
	// SignCommand is how people sign with this authority, e.g. "cosign
	// sign --key k8s://security/release-key"; "" when not given.
	SignCommand string `json:"signCommand,omitempty"`
	// Keyless is the certificate identity of a keyless authority (Fulcio
	// certificates), nil for a key authority. An authority has either a
	// PublicKey or Keyless.
	Keyless *Keyless `json:"keyless,omitempty"`
}

// Keyless is a keyless authority: signatures made with a short-lived
// certificate issued by a Fulcio CA of TrustedRoot to the identity Subject
// (or one matching SubjectRegExp) as authenticated by the OIDC Issuer,
// logged in a transparency log of TrustedRoot.
type Keyless struct {
	// Issuer is the OIDC issuer the certificate must name, exactly.
	Issuer string `json:"issuer"`
	// Subject is the certificate's subject (its email or URI SAN), exactly;
	// "" when SubjectRegExp is given.
	Subject string `json:"subject,omitempty"`
	// SubjectRegExp is a Go regular expression the whole subject must
	// match; "" when Subject is given.
	SubjectRegExp string `json:"subjectRegExp,omitempty"`
	// TrustedRoot is the trustedRoot file as written in the policy.
	TrustedRoot string `json:"trustedRoot"`
	// TrustedRootJSON is the content of that file: sigstore's
	// trusted_root.json (Fulcio CAs, Rekor keys, timestamp authorities).
	TrustedRootJSON []byte `json:"-"`
}

// Identity describes the identity the authority requires, for messages.
func (k *Keyless) Identity() string {
	if k.SubjectRegExp != "" {
		return fmt.Sprintf("subject matching %q from issuer %q", k.SubjectRegExp, k.Issuer)
	}
	return fmt.Sprintf("subject %q from issuer %q", k.Subject, k.Issuer)
}

// ParseOptions are the optional inputs of ParseWith.
type ParseOptions struct {
	// ReadFile reads a file the policy names (an authority's keyFile, or
	// an exception file Glob returned), given its name exactly as written
	// or returned. The loader decides what a name is relative to
	// (portcullis: the directory of the policy file). When ReadFile is
	// nil, a keyFile or exceptionFiles is a problem.
	ReadFile func(name string) ([]byte, error)
	// Glob expands a pattern of exceptionFiles (path.Match syntax with '/'
	// separators, relative as ReadFile's names are) into the names of the
	// files it matches, which ReadFile then reads; a pattern without
	// wildcards that matches nothing is read as a name anyway, so that a
	// missing file is reported. For a loader reading from the directory of
	// the policy file: filepath.Glob of the joined pattern, made relative to
	// that directory again. When Glob is nil, exceptionFiles is a problem.
	Glob func(pattern string) ([]string, error)
}

// maxKeyFileBytes bounds a key file: a PEM public key is a few hundred
// bytes, an RSA one under two kilobytes.
const maxKeyFileBytes = 64 << 10

// authority is a compiled Authority.
type authority struct {
	Authority
	der []byte // PKIX DER of the key, to find one key listed under two names
	// set while parsing, for messages
	path     string
	nameNode *yaml.Node
	keyField field
}

// keyFileRead is one key file read while parsing; its content is part of
// the policy's Revision.
type keyFileRead struct {
	name string
	data []byte
}

// Authorities returns a copy of the authorities, in policy order.
func (p *Policy) Authorities() []Authority {
	out := make([]Authority, len(p.authorities))
	for i, a := range p.authorities {
		out[i] = a.Authority
	}
	return out
}

// authorityKeys are the fields of an authority.
const authorityKeys = "name, key, keyFile, keyless and signCommand"

// readAuthority reads authorities[i]. ok is false when n is not a mapping.
func (r *reader) readAuthority(path string, n *yaml.Node) (a authority, ok bool) {
	fields, ok := r.mapping(path, n)
	if !ok {
		return a, false
	}
	a.path = path
	var nameSeen, keySeen, fileSeen, keylessSeen bool
	for _, f := range fields {
		switch f.key {
		case "name":
			a.Name, nameSeen = r.str(f.path, f.value)
			a.nameNode = f.value
			if nameSeen {
				r.checkName(f.path, f.value, a.Name)
			}
		case "key":
			keySeen, a.keyField = true, f
			s, ok := r.str(f.path, f.value)
			if !ok {
				if isNull(r.resolve(f.value)) {
					r.add(f.path, f.value, "want a PEM public key")
				}
				continue
			}
			pub, der, err := parsePublicKey([]byte(s))
			if err != nil {
				r.add(f.path, f.value, "%v", err)
				continue
			}
			a.PublicKey, a.der = pub, der
		case "keyFile":
			fileSeen, a.keyField = true, f
			name, ok := r.str(f.path, f.value)
			if !ok && !isNull(r.resolve(f.value)) {
				continue
			}
			if strings.TrimSpace(name) == "" {
				r.add(f.path, f.value, "want the path of a PEM public key file")
				continue
			}
			a.KeyFile = name
			if r.readFile == nil {
				r.add(f.path, f.value, "keyFile needs a %s loaded from a file (portcullis reads it relative to the %s file)", r.noun(), r.noun())
				continue
			}
			data, err := r.readFile(name)
			if err == nil && len(data) > maxKeyFileBytes {
				err = fmt.Errorf("larger than %d KiB; a public key is a few hundred bytes", maxKeyFileBytes>>10)
			}
			if err != nil {
				var pe *fs.PathError
				if errors.As(err, &pe) {
					err = pe.Err
				}
				r.add(f.path, f.value, "reading %s: %v", name, err)
				continue
			}
			r.keyFiles = append(r.keyFiles, keyFileRead{name: name, data: data})
			pub, der, err := parsePublicKey(data)
			if err != nil {
				r.add(f.path, f.value, "%s: %v", name, err)
				continue
			}
			a.PublicKey, a.der = pub, der
		case "keyless":
			keylessSeen, a.keyField = true, f
			a.Keyless = r.readKeyless(f.path, f.value)
		case "signCommand":
			s, ok := r.str(f.path, f.value)
			if !ok {
				continue
			}
			s = strings.TrimSpace(s)
			switch {
			case s == "":
				r.add(f.path, f.value, "empty: give the command or remove the field")
			case strings.IndexFunc(s, unicode.IsControl) >= 0:
				r.add(f.path, f.value, "must be one line without control characters")
			default:
				a.SignCommand = s
			}
		default:
			r.add(f.path, f.keyN, "unknown field: authorities take %s (line %d)", authorityKeys, f.keyN.Line)
		}
	}
	if !nameSeen {
		r.add(path+".name", n, "required")
	}
	switch {
	case keylessSeen && (keySeen || fileSeen):
		r.add(path, n, "give key, keyFile or keyless, only one")
		a.PublicKey, a.der, a.Keyless = nil, nil, nil
	case keySeen && fileSeen:
		r.add(path, n, "give key or keyFile, not both")
		a.PublicKey, a.der = nil, nil
	case !keySeen && !fileSeen && !keylessSeen:
		r.add(path, n, "needs key (an inline PEM public key), keyFile, or keyless (a certificate identity)")
	}
	return a, true
}

// parsePublicKey reads a PEM "PUBLIC KEY" (PKIX) block and checks that it is
// a key signatures can be verified with: ECDSA P-256 or P-384, RSA of 2048
// to 8192 bits, or Ed25519. It returns the key and its DER.
func parsePublicKey(data []byte) (crypto.PublicKey, []byte, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, nil, errors.New("not a PEM public key (want a -----BEGIN PUBLIC KEY----- block such as cosign.pub)")
	}
	switch t := block.Type; {
	case t == "PUBLIC KEY":
	case strings.Contains(t, "PRIVATE KEY"):
		return nil, nil, fmt.Errorf("this is a private key (%s): give the public key (cosign.pub), and never commit the private key", t)
	case t == "CERTIFICATE":
		return nil, nil, errors.New("this is a certificate, not a public key: give the signer's public key (cosign.pub), or for keyless signatures the identity under keyless")
	default:
		return nil, nil, fmt.Errorf("not a PEM public key: the PEM block is %q (want \"PUBLIC KEY\")", t)
	}
	if next, _ := pem.Decode(rest); next != nil {
		return nil, nil, errors.New("holds more than one PEM block: give one key per authority")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		if strings.HasPrefix(err.Error(), "asn1:") {
			return nil, nil, errors.New("not a valid public key: the PEM block does not hold a DER-encoded PKIX public key")
		}
		return nil, nil, fmt.Errorf("not a valid public key: %v", err)
	}
	if err := checkKey(pub); err != nil {
		return nil, nil, err
	}
	return pub, bytes.Clone(block.Bytes), nil
}

// acceptedKeys lists the key types checkKey accepts, for messages.
const acceptedKeys = "want ECDSA P-256 or P-384, RSA of at least 2048 bits, or Ed25519"

// checkKey reports a key type or size that signatures cannot be verified
// with, or that is too weak to trust.
func checkKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384():
			return nil
		}
		return fmt.Errorf("ECDSA curve %s is not supported (want P-256 or P-384)", k.Curve.Params().Name)
	case *rsa.PublicKey:
		switch bits := k.N.BitLen(); {
		case bits < 2048:
			return fmt.Errorf("RSA key of %d bits is too weak (want at least 2048)", bits)
		case bits > 8192:
			return fmt.Errorf("RSA key of %d bits is too large (want at most 8192)", bits)
		}
		return nil
	case ed25519.PublicKey:
		return nil
	case *dsa.PublicKey:
		return errors.New("DSA keys are not supported (" + acceptedKeys + ")")
	case *ecdh.PublicKey:
		return errors.New("an X25519 key cannot sign (" + acceptedKeys + ")")
	}
	return fmt.Errorf("%T keys are not supported (%s)", pub, acceptedKeys)
}
