package inventory

import (
	"path"
	"strings"
)

const (
	dpkgStatus    = "/var/lib/dpkg/status"
	dpkgStatusDir = "/var/lib/dpkg/status.d"
)

// Dpkg reads Debian and Ubuntu packages from the dpkg database:
// /var/lib/dpkg/status, and the one-file-per-package /var/lib/dpkg/status.d/*
// that distroless images carry instead.
type Dpkg struct{}

// Wants reports whether p is the dpkg status file or a status.d entry.
func (Dpkg) Wants(p string) bool {
	if p == dpkgStatus {
		return true
	}
	return path.Dir(p) == dpkgStatusDir && !strings.HasSuffix(p, ".md5sums")
}

// Extract returns the installed packages in a dpkg status file. A package
// counts as installed when its Status state (third word) is "installed" or a
// pending trigger, whatever the selection ("install", "hold", "deinstall"); in
// status.d files, which may omit Status, a missing Status counts as installed.
func (Dpkg) Extract(p string, data []byte) ([]Package, error) {
	statusOptional := p != dpkgStatus
	var pkgs []Package
	var name, version, source, status, arch string
	walkFields(data, ':', func(k, v []byte) {
		switch string(k) {
		case "Package":
			name = string(v)
		case "Architecture":
			arch = string(v)
		case "Version":
			version = string(v)
		case "Source":
			source = string(v)
		case "Status":
			status = string(v)
		}
	}, func() bool {
		if name != "" && version != "" && dpkgInstalled(status, statusOptional) {
			pkg := Package{Ecosystem: EcosystemDebian, Name: name, Version: version, SourceName: name, Arch: arch, Path: p}
			if source != "" {
				pkg.SourceName, pkg.SourceVersion = parseDpkgSource(source)
				if pkg.SourceVersion == version {
					pkg.SourceVersion = ""
				}
			}
			pkgs = append(pkgs, pkg)
		}
		name, version, source, status, arch = "", "", "", "", ""
		return true
	})
	return pkgs, nil
}

// dpkgInstalled reports whether a Status value ("want flag state") says the
// package's files are on disk.
func dpkgInstalled(status string, optional bool) bool {
	words := strings.Fields(status)
	if len(words) == 0 {
		return optional
	}
	if len(words) != 3 {
		return false
	}
	switch words[2] {
	case "installed", "triggers-pending", "triggers-awaited":
		return true
	}
	return false
}

// parseDpkgSource splits a Source field, "name" or "name (version)".
func parseDpkgSource(s string) (name, version string) {
	name, rest, ok := strings.Cut(s, " ")
	if !ok {
		return name, ""
	}
	rest = strings.TrimSpace(rest)
	if strings.HasPrefix(rest, "(") && strings.HasSuffix(rest, ")") {
		version = strings.TrimSpace(rest[1 : len(rest)-1])
	}
	return name, version
}
