package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/root"
	"go.yaml.in/yaml/v3"
)

// maxTrustedRootBytes bounds a trustedRoot file: the public-good
// trusted_root.json is about 7 KiB.
const maxTrustedRootBytes = 1 << 20

// keylessKeys are the fields of an authority's keyless.
const keylessKeys = "issuer, subject, subjectRegExp and trustedRoot"

// readKeyless reads an authority's keyless mapping; nil when it has a
// problem (reported).
func (r *reader) readKeyless(path string, n *yaml.Node) *Keyless {
	fields, ok := r.mapping(path, n)
	if !ok {
		if isNull(r.resolve(n)) {
			r.add(path, n, "want a mapping with %s", keylessKeys)
		}
		return nil
	}
	k := &Keyless{}
	bad := false
	var subjectSeen, reSeen, rootSeen, issuerSeen bool
	nonEmpty := func(f field, what string) (string, bool) {
		s, ok := r.str(f.path, f.value)
		if !ok && isNull(r.resolve(f.value)) {
			r.add(f.path, f.value, "want %s", what)
		}
		if !ok {
			return "", false
		}
		if strings.TrimSpace(s) == "" || strings.IndexFunc(s, func(c rune) bool { return c < ' ' }) >= 0 {
			r.add(f.path, f.value, "want %s (one line, not empty)", what)
			return "", false
		}
		return s, true
	}
	for _, f := range fields {
		switch f.key {
		case "issuer":
			issuerSeen = true
			s, ok := nonEmpty(f, "the OIDC issuer URL, e.g. https://token.actions.githubusercontent.com")
			bad = bad || !ok
			k.Issuer = s
		case "subject":
			subjectSeen = true
			s, ok := nonEmpty(f, "the certificate subject (an email or URI)")
			bad = bad || !ok
			k.Subject = s
		case "subjectRegExp":
			reSeen = true
			s, ok := nonEmpty(f, "a regular expression the whole subject must match")
			if ok {
				if _, err := regexp.Compile(anchor(s)); err != nil {
					r.add(f.path, f.value, "not a regular expression: %v", err)
					ok = false
				}
			}
			bad = bad || !ok
			k.SubjectRegExp = s
		case "trustedRoot":
			rootSeen = true
			if !r.readTrustedRoot(f, k) {
				bad = true
			}
		default:
			r.add(f.path, f.keyN, "unknown field: keyless takes %s (line %d)", keylessKeys, f.keyN.Line)
		}
	}
	if !issuerSeen {
		r.add(path+".issuer", n, "required: the OIDC issuer the certificate must name")
		bad = true
	}
	switch {
	case subjectSeen && reSeen:
		r.add(path, n, "give subject or subjectRegExp, not both")
		bad = true
	case !subjectSeen && !reSeen:
		r.add(path, n, "needs subject or subjectRegExp: the identity signatures must be made by")
		bad = true
	}
	if !rootSeen {
		r.add(path+".trustedRoot", n, "required: the path of sigstore's trusted_root.json (Fulcio CAs, Rekor keys) to verify offline with")
		bad = true
	}
	if bad {
		return nil
	}
	return k
}

// readTrustedRoot reads and checks the trustedRoot file f names into k.
func (r *reader) readTrustedRoot(f field, k *Keyless) bool {
	name, ok := r.str(f.path, f.value)
	if !ok && !isNull(r.resolve(f.value)) {
		return false
	}
	if strings.TrimSpace(name) == "" {
		r.add(f.path, f.value, "want the path of a trusted_root.json file")
		return false
	}
	k.TrustedRoot = name
	if r.readFile == nil {
		r.add(f.path, f.value, "trustedRoot needs a %s loaded from a file (portcullis reads it relative to the %s file)", r.noun(), r.noun())
		return false
	}
	data, err := r.readFile(name)
	if err == nil && len(data) > maxTrustedRootBytes {
		err = fmt.Errorf("larger than %d KiB; a trusted_root.json is a few KiB", maxTrustedRootBytes>>10)
	}
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		r.add(f.path, f.value, "reading %s: %v", name, err)
		return false
	}
	r.keyFiles = append(r.keyFiles, keyFileRead{name: name, data: data})
	if err := CheckTrustedRoot(data); err != nil {
		r.add(f.path, f.value, "%s: %v", name, err)
		return false
	}
	k.TrustedRootJSON = data
	return true
}

// CheckTrustedRoot reports why data is not a sigstore trusted_root.json
// keyless signatures can be verified offline with: it must parse, and name
// at least one certificate authority and one transparency log.
func CheckTrustedRoot(data []byte) error {
	tr, err := root.NewTrustedRootFromJSON(data)
	if err != nil {
		return fmt.Errorf("not a sigstore trusted_root.json: %v", err)
	}
	if len(tr.FulcioCertificateAuthorities()) == 0 {
		return errors.New("no certificateAuthorities: keyless certificates cannot be checked without the Fulcio CA")
	}
	if len(tr.RekorLogs()) == 0 {
		return errors.New("no tlogs: keyless signatures cannot be checked offline without the Rekor log's key")
	}
	return nil
}

// anchor makes a subject regular expression match whole subjects only.
func anchor(re string) string { return "^(?:" + re + ")$" }
