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
func Parse(data []byte) (*Policy, error) {
	doc, err := decodeDocument(data)
	if err != nil {
		ps := problems{}
		ps.list = append(ps.list, syntaxProblem(err))
		return nil, ps.err()
	}
	r := &reader{}
	p := &Policy{revision: revisionOf(data)}
	r.readTop(p, doc)
	validateReferences(r, p)
	if err := r.err(); err != nil {
		return nil, err
	}
	return p, nil
}

// revisionOf is the Revision of a policy parsed from data.
func revisionOf(data []byte) string {
	sum := sha256.Sum256(data)
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
	var version *field
	for i, f := range fields {
		switch f.key {
		case "version":
			version = &fields[i]
		case "exceptionProcess":
			p.exceptionProcess, _ = r.str(f.path, f.value)
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
		default:
			r.unknown(f)
		}
	}
	if version == nil {
		r.add("version", root, "required (want %d)", SupportedVersion)
		return
	}
	if v, ok := r.str(version.path, version.value); !ok || v != strconv.Itoa(SupportedVersion) {
		r.add(version.path, version.value, "unsupported version %q (want %d)", v, SupportedVersion)
	}
}
