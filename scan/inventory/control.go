package inventory

import "bytes"

// maxStanzaFields bounds the fields of one stanza (a real one has a few
// dozen), which are held until the stanza ends.
const maxStanzaFields = 10_000

// controlField is one field of a deb822 stanza as dpkg reads it: the name as
// written and the raw value, continuation lines included, without the
// surrounding whitespace.
type controlField struct {
	name, value []byte
	line        int
}

// isSpace is C's isspace in the "C" locale, which dpkg's parser uses.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// controlStanzas splits data into stanzas by dpkg's rules (lib/dpkg/parse.c):
// stanzas are separated by empty lines (only "\n": a line holding spaces or
// "\r" continues the field above it); a field is a name ending at whitespace
// or ':', optional blanks, ':' and a value running on over every following
// line that starts with whitespace. It calls stanza with each stanza's fields
// and the line it starts on, and stops at the first error, from itself or
// from stanza. Nothing is copied: the fields point into data and are reused.
func controlStanzas(format string, data []byte, stanza func(fields []controlField, line int) error) error {
	var fields []controlField
	line := 1
	for {
		// Skip the empty lines between stanzas.
		for len(data) > 0 && data[0] == '\n' {
			data = data[1:]
			line++
		}
		if len(data) == 0 {
			return nil
		}
		start := line
		fields = fields[:0]
		for {
			// The field name: up to whitespace or ':'.
			n := 0
			for n < len(data) && !isSpace(data[n]) && data[n] != ':' {
				n++
			}
			if n == 0 {
				return parseErrorf(format, line, "empty field name")
			}
			if data[0] == '-' {
				return parseErrorf(format, line, "field name %.40q starts with a hyphen", data[:n])
			}
			f := controlField{name: data[:n], line: line}
			rest := data[n:]
			for len(rest) > 0 && rest[0] != '\n' && isSpace(rest[0]) {
				rest = rest[1:]
			}
			if len(rest) == 0 || rest[0] != ':' {
				return parseErrorf(format, line, "field name %.40q is not followed by a colon", f.name)
			}
			rest = rest[1:]
			// The value: this line and every following one that starts
			// with whitespace other than the newline ending the stanza.
			end := 0
			for {
				i := bytes.IndexByte(rest[end:], '\n')
				if i < 0 {
					end = len(rest)
					break
				}
				end += i
				if end+1 < len(rest) && rest[end+1] != '\n' && isSpace(rest[end+1]) {
					end++
					line++
					continue
				}
				break
			}
			f.value = bytes.TrimFunc(rest[:end], func(r rune) bool { return r < 0x80 && isSpace(byte(r)) })
			if len(fields) == maxStanzaFields {
				return limitf("%s: stanza at line %d has over %d fields", format, start, maxStanzaFields)
			}
			fields = append(fields, f)
			data = rest[end:]
			if len(data) > 0 { // the newline ending the field
				data = data[1:]
				line++
			}
			if len(data) == 0 || data[0] == '\n' {
				break // end of the stanza
			}
		}
		if err := stanza(fields, start); err != nil {
			return err
		}
	}
}
