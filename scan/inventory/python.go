package inventory

import "strings"

// Python reads installed Python distributions from their metadata:
// *.dist-info/METADATA (wheels) and *.egg-info/PKG-INFO or a *.egg-info file (eggs, distutils).
type Python struct{}

// Wants reports whether p is a distribution's metadata file.
func (Python) Wants(p string) bool {
	return strings.HasSuffix(p, ".dist-info/METADATA") ||
		strings.HasSuffix(p, ".egg-info/PKG-INFO") ||
		strings.HasSuffix(p, ".egg-info")
}

// Extract returns the distribution named by the Name and Version headers.
func (Python) Extract(p string, data []byte) ([]Package, error) {
	var name, version string
	walkFields(data, ':', func(k, v []byte) {
		switch {
		case name == "" && strings.EqualFold(string(k), "Name"):
			name = string(v)
		case version == "" && strings.EqualFold(string(k), "Version"):
			version = string(v)
		}
	}, func() bool { return false }) // headers end at the first blank line
	if name == "" || version == "" {
		return nil, nil
	}
	return []Package{{Ecosystem: EcosystemPyPI, Name: name, Version: version, Path: p}}, nil
}
