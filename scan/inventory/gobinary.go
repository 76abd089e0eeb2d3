package inventory

import (
	"bytes"
	"debug/buildinfo"
	"encoding/binary"
	"runtime/debug"
	"strings"
)

// GoBinary reads the modules compiled into Go executables (ELF, Mach-O, PE)
// from the build information the Go linker embeds.
type GoBinary struct{}

// Wants accepts every path: executables are recognised by content (WantsContent).
func (GoBinary) Wants(string) bool { return true }

// WantsContent reports whether head starts like an executable.
func (GoBinary) WantsContent(_ string, _ int64, head []byte) bool {
	return isExecutable(head)
}

// Extract returns the binary's main module, its dependencies (a replaced
// module as its replacement) and the standard library as module "stdlib",
// each with the GOOS and GOARCH the binary was built for: what
// debug/buildinfo reads, and also whatever build information a search of the
// whole file finds (see buildInfoScan), so that headers Go's reader cannot
// parse, a decoy marker or an embedded binary hide nothing.
// A file that is not a Go executable has no packages and no error.
func (GoBinary) Extract(p string, data []byte) ([]Package, error) {
	if !isExecutable(data) {
		return nil, nil
	}
	var pkgs []Package
	if bi, err := buildinfo.Read(bytes.NewReader(data)); err == nil {
		pkgs = goPackages(p, bi)
	}
	s := scanBuildInfoBytes(data)
	pkgs = s.packages(p, pkgs)
	if len(pkgs) > 0 && s.limit == nil {
		return pkgs, nil
	}
	return pkgs, s.err(false)
}

// isExecutable reports whether b starts with ELF, Mach-O (thin or universal)
// or PE magic.
func isExecutable(b []byte) bool {
	if len(b) < 4 {
		return len(b) >= 2 && b[0] == 'M' && b[1] == 'Z'
	}
	switch binary.BigEndian.Uint32(b) {
	case 0x7f454c46, // ELF
		0xfeedface, 0xfeedfacf, 0xcefaedfe, 0xcffaedfe: // Mach-O 32/64, both byte orders
		return true
	case 0xcafebabe:
		// Universal Mach-O, told apart from a Java class file (same magic) by
		// its small architecture count where a class file has its version.
		return len(b) >= 8 && binary.BigEndian.Uint32(b[4:]) < 20
	}
	return b[0] == 'M' && b[1] == 'Z'
}

// goPackages turns build information into packages, each carrying the
// GOOS and GOARCH build settings (absent before Go 1.18).
func goPackages(p string, bi *debug.BuildInfo) []Package {
	var goos, goarch string
	for _, s := range bi.Settings {
		switch s.Key {
		case "GOOS":
			goos = s.Value
		case "GOARCH":
			goarch = s.Value
		}
	}
	pkg := func(name, version string) Package {
		return Package{Ecosystem: EcosystemGo, Name: name, Version: version, Path: p, GOOS: goos, GOARCH: goarch}
	}
	pkgs := make([]Package, 0, len(bi.Deps)+2)
	if v := goToolchainVersion(bi.GoVersion); v != "" {
		pkgs = append(pkgs, pkg("stdlib", v))
	}
	if bi.Main.Path != "" {
		pkgs = append(pkgs, pkg(bi.Main.Path, bi.Main.Version))
	}
	for _, m := range bi.Deps {
		if m == nil {
			continue
		}
		name, version := m.Path, m.Version
		if r := m.Replace; r != nil {
			if isLocalPath(r.Path) {
				// Replaced by a directory: the code is whatever was there.
				version = "(devel)"
			} else {
				name, version = r.Path, r.Version
			}
		}
		pkgs = append(pkgs, pkg(name, version))
	}
	return pkgs
}

// isLocalPath reports whether a replacement is a directory rather than a
// module, as the go command tells them apart (cmd/go modfile.IsDirectoryPath).
func isLocalPath(p string) bool {
	return p == "." || p == ".." || strings.HasPrefix(p, "./") || strings.HasPrefix(p, "../") ||
		strings.HasPrefix(p, "/") || strings.HasPrefix(p, `.\`) || strings.HasPrefix(p, `..\`) ||
		strings.HasPrefix(p, `\`) || (len(p) >= 2 && p[1] == ':')
}
