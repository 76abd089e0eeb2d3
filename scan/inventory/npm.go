package inventory

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"path"
	"strings"
)

const npmFormat = "package.json"

// maxJSONDepth bounds the nesting of arrays and objects in a package.json
// (real ones nest a handful of levels).
const maxJSONDepth = 1000

// NPM reads Node.js packages from the package.json of each installed module
// under a node_modules directory.
//
// It reads the file as Node and npm do (a UTF-8 byte order mark stripped,
// then JSON.parse): keys match exactly, with case ("VERSION" is not
// "version"), and the last of duplicate keys wins. A file that is not one
// JSON value, or whose name or version is not a string, is a *ParseError; a
// file over MaxManifestBytes or nested deeper than 1,000 levels is a
// *LimitError.
type NPM struct{}

// Wants reports whether p is a package.json inside a node_modules directory.
func (NPM) Wants(p string) bool {
	return path.Base(p) == "package.json" && strings.Contains(p, "/node_modules/")
}

// Extract returns the package a package.json names; files without both a name
// and a version (nested package.json files that only set options) have none.
func (NPM) Extract(p string, data []byte) ([]Package, error) {
	if len(data) > MaxManifestBytes {
		return nil, limitf("%s: %s is over %d bytes", npmFormat, p, MaxManifestBytes)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	name, version, err := npmNameVersion(data)
	if err != nil {
		return nil, err
	}
	if name == nil || version == nil {
		return nil, nil
	}
	n, nok := name.(string)
	v, vok := version.(string)
	switch {
	case !nok:
		return nil, parseErrorf(npmFormat, 0, "name is not a string")
	case !vok:
		return nil, parseErrorf(npmFormat, 0, "version is not a string")
	case n == "" || v == "":
		return nil, nil
	case len(n) > MaxFieldBytes || len(v) > MaxFieldBytes:
		return nil, limitf("%s: name or version over %d bytes", npmFormat, MaxFieldBytes)
	}
	return []Package{{Ecosystem: EcosystemNPM, Name: n, Version: v, Path: p}}, nil
}

// npmNameVersion returns the last values of the top-level keys "name" and
// "version" (nil when absent; a string, or a non-nil placeholder for another
// type), checking that data is exactly one JSON object.
func npmNameVersion(data []byte) (name, version any, err error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, npmSyntax(err)
	}
	if tok != json.Delim('{') {
		// Valid JSON that is not an object names no package, for Node too.
		if d, ok := tok.(json.Delim); ok {
			if err := skipJSON(dec, d); err != nil {
				return nil, nil, err
			}
		}
		return nil, nil, npmEnd(dec)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, npmSyntax(err)
		}
		key, _ := tok.(string)
		var dst *any
		switch key {
		case "name":
			dst = &name
		case "version":
			dst = &version
		}
		val, err := dec.Token()
		if err != nil {
			return nil, nil, npmSyntax(err)
		}
		if d, ok := val.(json.Delim); ok {
			if err := skipJSON(dec, d); err != nil {
				return nil, nil, err
			}
			val = d // neither a string nor nil
		}
		if dst != nil {
			if val == nil {
				val = json.Delim('n') // null: present, not a string
			}
			*dst = val
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, nil, npmSyntax(err)
	}
	return name, version, npmEnd(dec)
}

// npmEnd checks that nothing but white space follows the top-level value.
func npmEnd(dec *json.Decoder) error {
	if _, err := dec.Token(); err != io.EOF {
		return parseErrorf(npmFormat, 0, "data after the top-level value")
	}
	return nil
}

// skipJSON reads the rest of the array or object opened by open, which is
// already one level deep.
func skipJSON(dec *json.Decoder, open json.Delim) error {
	depth := 1
	if open == '}' || open == ']' {
		return parseErrorf(npmFormat, 0, "unexpected %q", open)
	}
	for depth > 0 {
		tok, err := dec.Token()
		if err != nil {
			return npmSyntax(err)
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
			if depth > maxJSONDepth {
				return limitf("%s: nested deeper than %d levels", npmFormat, maxJSONDepth)
			}
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
	return nil
}

// npmSyntax turns a decoding error into a *ParseError.
func npmSyntax(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return parseErrorf(npmFormat, 0, "unexpected end of JSON")
	}
	return parseErrorf(npmFormat, 0, "%v", err)
}
