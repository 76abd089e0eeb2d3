package inventory

import (
	"encoding/json"
	"fmt"
	"path"
	"strings"
)

// NPM reads Node.js packages from the package.json of each installed module
// under a node_modules directory.
type NPM struct{}

// Wants reports whether p is a package.json inside a node_modules directory.
func (NPM) Wants(p string) bool {
	return path.Base(p) == "package.json" && strings.Contains(p, "/node_modules/")
}

// Extract returns the package a package.json names; files without both a name
// and a version (nested package.json files that only set options) have none.
func (NPM) Extract(p string, data []byte) ([]Package, error) {
	var manifest struct {
		Name    any `json:"name"`
		Version any `json:"version"`
	}
	if err := json.Unmarshal(data, &manifest); err != nil {
		return nil, fmt.Errorf("parsing package.json: %w", err)
	}
	name, _ := manifest.Name.(string)
	version, _ := manifest.Version.(string)
	if name == "" || version == "" {
		return nil, nil
	}
	return []Package{{Ecosystem: EcosystemNPM, Name: name, Version: version, Path: p}}, nil
}
