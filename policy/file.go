package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// SupportedVersion is the only policy file version this build reads.
const SupportedVersion = 1

// Parse reads and validates a policy file. On any problem it returns a
// *ValidationError listing every problem found, each with its path in the
// file (for example "rules[2].enforceFrom: not a date (want YYYY-MM-DD)").
// It reads no files: an authority with a keyFile is a problem (see
// ParseWith). Parse(data) is ParseWith(data, ParseOptions{}).
func Parse(data []byte) (*Policy, error) {
	return ParseWith(data, ParseOptions{})
}

// ParseWith is Parse with options: opts.ReadFile reads the key files that
// authorities name and the exception files, which opts.Glob finds from the
// exceptionFiles patterns. The files' names and contents are part of the
// Revision.
func ParseWith(data []byte, opts ParseOptions) (*Policy, error) {
	doc, err := decodeDocument(data)
	if err != nil {
		ps := problems{}
		ps.list = append(ps.list, syntaxProblem(err))
		return nil, ps.err()
	}
	r := &reader{readFile: opts.ReadFile, glob: opts.Glob}
	p := &Policy{exceptionRules: DefaultExceptionRules()}
	r.readTop(p, doc)
	validateReferences(r, p)
	validateExceptions(r, p)
	validateServices(r, p)
	if err := r.err(); err != nil {
		return nil, err
	}
	p.revision = revisionOf(data, r.keyFiles...)
	return p, nil
}

// revisionOf is the Revision of a policy parsed from data that read
// keyFiles (key files and exception files): the SHA-256 of data alone when
// there are none, else of the SHA-256 of data followed by the SHA-256 of
// each file's name and of its content, in the order they were read.
func revisionOf(data []byte, keyFiles ...keyFileRead) string {
	sum := sha256.Sum256(data)
	if len(keyFiles) > 0 {
		h := sha256.New()
		h.Write(sum[:])
		for _, f := range keyFiles {
			n, c := sha256.Sum256([]byte(f.name)), sha256.Sum256(f.data)
			h.Write(n[:])
			h.Write(c[:])
		}
		h.Sum(sum[:0])
	}
	return "sha256:" + hex.EncodeToString(sum[:])
}

// errNotOneDocument reports a file holding several YAML documents.
var errNotOneDocument = errors.New("a policy file holds one YAML document, found more")

// decodeDocument parses data as exactly one YAML document and returns its
// root node (nil for an empty document).
func decodeDocument(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, err
		}
		return nil, errNotOneDocument
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		return doc.Content[0], nil
	}
	return nil, nil
}

var yamlLineRE = regexp.MustCompile(`line (\d+)`)

// syntaxProblem turns a YAML decoding error into a Problem with its line.
func syntaxProblem(err error) Problem {
	msg := err.Error()
	p := Problem{Message: msg}
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
	}
	if p.Message == errNotOneDocument.Error() {
		p.Message = "yaml: " + p.Message
	}
	return p
}

// readTop reads the top-level mapping into p.
func (r *reader) readTop(p *Policy, root *yaml.Node) {
	if isNull(root) {
		r.add("", root, "empty policy file (want a mapping with version, environments and rules)")
		return
	}
	fields, ok := r.mapping("", root)
	if !ok {
		return
	}
	var version, files *field
	for i, f := range fields {
		switch f.key {
		case "version":
			version = &fields[i]
		case "exceptionProcess":
			p.exceptionProcess, _ = r.str(f.path, f.value)
		case "authorities":
			for i, n := range r.list(f.path, f.value) {
				if a, ok := r.readAuthority(fmt.Sprintf("authorities[%d]", i), n); ok {
					p.authorities = append(p.authorities, a)
				}
			}
		case "environments":
			for i, n := range r.list(f.path, f.value) {
				if e, ok := r.readEnvironment(fmt.Sprintf("environments[%d]", i), n); ok {
					p.envs = append(p.envs, e)
				}
			}
		case "rules":
			for i, n := range r.list(f.path, f.value) {
				if ru, ok := r.readRule(fmt.Sprintf("rules[%d]", i), n); ok {
					p.rules = append(p.rules, ru)
				}
			}
		case "exceptions":
			r.readExceptions(p, f.path, f.value, "")
		case "exceptionFiles":
			files = &fields[i]
		case "exceptionRules":
			r.readExceptionRules(p, f)
		case "services":
			for i, n := range r.list(f.path, f.value) {
				if s, ok := r.readService(fmt.Sprintf("services[%d]", i), n); ok {
					p.services = append(p.services, s)
				}
			}
		default:
			r.unknown(f)
		}
	}
	if files != nil {
		// After the policy's own exceptions, wherever the field is.
		r.readExceptionFiles(p, *files)
	}
	if version == nil {
		r.add("version", root, "required (want %d)", SupportedVersion)
		return
	}
	if v, ok := r.str(version.path, version.value); !ok || v != strconv.Itoa(SupportedVersion) {
		r.add(version.path, version.value, "unsupported version %q (want %d)", v, SupportedVersion)
	}
}
