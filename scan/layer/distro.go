package layer

import (
	"bytes"
	"strings"
)

// Distro is the operating system an image says it is, from os-release(5).
type Distro struct {
	ID              string `json:"id,omitempty"`              // "debian", "ubuntu", "alpine"
	VersionID       string `json:"versionID,omitempty"`       // "12", "22.04", "3.20.3"
	VersionCodename string `json:"versionCodename,omitempty"` // "bookworm", "jammy"
	PrettyName      string `json:"prettyName,omitempty"`      // "Debian GNU/Linux 12 (bookworm)"
}

// ParseOSRelease reads ID, VERSION_ID, VERSION_CODENAME and PRETTY_NAME from
// an os-release file: KEY=value lines, values optionally quoted, "#" comments.
func ParseOSRelease(data []byte) Distro {
	var d Distro
	for line := range bytes.Lines(data) {
		k, v, ok := strings.Cut(strings.TrimSpace(string(line)), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		v = unquoteOSRelease(v)
		switch k {
		case "ID":
			d.ID = v
		case "VERSION_ID":
			d.VersionID = v
		case "VERSION_CODENAME":
			d.VersionCodename = v
		case "PRETTY_NAME":
			d.PrettyName = v
		}
	}
	return d
}

// unquoteOSRelease undoes shell-style quoting: '...' literally, "..." with
// backslash escapes.
func unquoteOSRelease(v string) string {
	if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
		return v[1 : len(v)-1]
	}
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return v
	}
	v = v[1 : len(v)-1]
	if !strings.Contains(v, `\`) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}
