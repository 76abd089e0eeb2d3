package inventory

import (
	"bytes"
	"strings"
)

const pythonFormat = "Python metadata"

// Python reads installed Python distributions from their metadata:
// *.dist-info/METADATA (wheels) and *.egg-info/PKG-INFO or a *.egg-info file (eggs, distutils).
//
// It reads the headers as importlib.metadata does, through the email
// package's parser (compat32): lines end at "\r\n", "\r" or "\n"; header
// names match whatever their case; a line starting with a space or tab
// (even one holding nothing else) continues the header above; the headers
// end at an empty line or at the first line that is not a header ("Name :"
// with a space is not); and of repeated headers the first counts. A file
// without a Name or Version header (as one starting with a byte order mark
// is to Python) is a *ParseError; a file over MaxManifestBytes or a Name or
// Version over MaxFieldBytes is a *LimitError.
type Python struct{}

// Wants reports whether p is a distribution's metadata file.
func (Python) Wants(p string) bool {
	return strings.HasSuffix(p, ".dist-info/METADATA") ||
		strings.HasSuffix(p, ".egg-info/PKG-INFO") ||
		strings.HasSuffix(p, ".egg-info")
}

// Extract returns the distribution named by the Name and Version headers.
func (Python) Extract(p string, data []byte) ([]Package, error) {
	if len(data) > MaxManifestBytes {
		return nil, limitf("%s: %s is over %d bytes", pythonFormat, p, MaxManifestBytes)
	}
	name, version := emailHeaders(data, "name", "version")
	switch {
	case name == nil || version == nil:
		return nil, parseErrorf(pythonFormat, 0, "no Name or no Version header")
	case len(name) > MaxFieldBytes || len(version) > MaxFieldBytes:
		return nil, limitf("%s: Name or Version over %d bytes", pythonFormat, MaxFieldBytes)
	}
	n, v := strings.TrimSpace(string(name)), strings.TrimSpace(string(version))
	if n == "" || v == "" {
		return nil, parseErrorf(pythonFormat, 0, "empty Name or Version header")
	}
	return []Package{{Ecosystem: EcosystemPyPI, Name: n, Version: v, Path: p}}, nil
}

// emailHeaders returns the values of the first headers named a and b (lower
// case) in data, as Python's email.feedparser with the compat32 policy
// returns them, or nil for a header that is not there. A value continued
// over several lines holds them joined by "\n".
func emailHeaders(data []byte, a, b string) (va, vb []byte) {
	var name []byte  // the header being read
	var value []byte // its value so far
	var cont bool    // whether value was copied to take continuations
	done := func() {
		if name == nil {
			return
		}
		v := bytes.TrimRight(value, "\r\n")
		switch {
		case va == nil && asciiEqualFold(name, a):
			va = v
		case vb == nil && asciiEqualFold(name, b):
			vb = v
		}
		name, value, cont = nil, nil, false
	}
	for len(data) > 0 {
		line, rest := emailLine(data)
		data = rest
		if !emailHeaderLine(line) {
			break // an empty line, or the body starting without one
		}
		if line[0] == ' ' || line[0] == '\t' {
			if name != nil {
				if !cont {
					value, cont = bytes.Clone(value), true
				}
				if len(value) <= MaxFieldBytes { // beyond, it is over the bound anyway
					value = append(append(value, '\n'), line...)
				}
			}
			continue
		}
		done()
		if bytes.HasPrefix(line, []byte("From ")) {
			continue // the Unix envelope line, or a misplaced one: ignored either way
		}
		i := bytes.IndexByte(line, ':')
		if i == 0 {
			continue // no header name: ignored
		}
		name = line[:i]
		value = bytes.TrimLeft(line[i+1:], " \t")
	}
	done()
	return va, vb
}

// emailLine splits off the first line of data, without its "\r\n", "\r" or
// "\n" ending.
func emailLine(data []byte) (line, rest []byte) {
	i := bytes.IndexAny(data, "\r\n")
	if i < 0 {
		return data, nil
	}
	line, rest = data[:i], data[i+1:]
	if data[i] == '\r' && len(rest) > 0 && rest[0] == '\n' {
		rest = rest[1:]
	}
	return line, rest
}

// emailHeaderLine reports whether line matches the email parser's headerRE,
// ^(From |[\041-\071\073-\176]*:|[\t ]): a header, a continuation or an
// envelope line.
func emailHeaderLine(line []byte) bool {
	if len(line) == 0 {
		return false
	}
	if line[0] == ' ' || line[0] == '\t' || bytes.HasPrefix(line, []byte("From ")) {
		return true
	}
	for _, c := range line {
		switch {
		case c == ':':
			return true
		case c < 0x21 || c > 0x7e:
			return false
		}
	}
	return false
}

// asciiEqualFold reports whether b equals the lower-case ASCII s, ignoring case.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
