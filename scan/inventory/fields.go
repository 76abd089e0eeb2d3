package inventory

import "bytes"

// walkFields walks text made of paragraphs of "key<sep>value" lines separated
// by blank lines (dpkg status, apk installed, email-style headers). It calls
// field for the first line of each field (continuation lines, which start with
// a space or tab, are skipped) and end after each paragraph; walking stops when
// end returns false.
func walkFields(data []byte, sep byte, field func(key, value []byte), end func() bool) {
	inParagraph := false
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(bytes.TrimSpace(line)) == 0 {
			if inParagraph {
				inParagraph = false
				if !end() {
					return
				}
			}
			continue
		}
		inParagraph = true
		if line[0] == ' ' || line[0] == '\t' {
			continue
		}
		if i := bytes.IndexByte(line, sep); i > 0 {
			field(bytes.TrimSpace(line[:i]), bytes.TrimSpace(line[i+1:]))
		}
	}
	if inParagraph {
		end()
	}
}
