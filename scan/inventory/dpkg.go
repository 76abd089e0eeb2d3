package inventory

import (
	"bytes"
	"hash/maphash"
	"path"
	"strings"
)

const (
	dpkgStatus    = "/var/lib/dpkg/status"
	dpkgStatusDir = "/var/lib/dpkg/status.d"
	dpkgUpdates   = "/var/lib/dpkg/updates"
	dpkgFormat    = "dpkg status"
)

// Dpkg reads Debian and Ubuntu packages from the dpkg database:
// /var/lib/dpkg/status, the journal of changes not yet folded into it that
// dpkg applies on top when it starts (/var/lib/dpkg/updates/NNNN, files named
// by digits only), and the one-file-per-package /var/lib/dpkg/status.d/*
// that distroless images carry instead.
//
// It reads them as dpkg does (lib/dpkg/parse.c): field names match whatever
// their case ("package", "PACKAGE"), values run on over continuation lines,
// package names are folded to lower case, and a later stanza for the same
// package and architecture replaces an earlier one. What dpkg refuses to load
// (a field given twice in a stanza, a stanza without Package, an installed
// package without Version, a malformed Status) is a *ParseError; more than
// MaxPackagesPerFile packages or a kept value over MaxFieldBytes is a
// *LimitError.
type Dpkg struct{}

// Wants reports whether p is the dpkg status file, an update journal entry
// or a status.d entry.
func (Dpkg) Wants(p string) bool {
	dir, base := path.Split(p)
	switch {
	case p == dpkgStatus:
		return true
	case dir == dpkgUpdates+"/":
		return base != "" && strings.Trim(base, "0123456789") == ""
	}
	return dir == dpkgStatusDir+"/" && !strings.HasSuffix(p, ".md5sums")
}

// dpkgStanza is the fields of one stanza that the extractor keeps.
type dpkgStanza struct {
	name, version, source, status, arch []byte
}

// Extract returns the installed packages in a dpkg status file. A package
// counts as installed when its Status state (third word) is "installed" or a
// pending trigger, whatever the selection ("install", "hold", "deinstall"); in
// status.d files, which may omit Status, a missing Status counts as installed.
// Alongside an error it returns the packages read before it.
func (Dpkg) Extract(p string, data []byte) ([]Package, error) {
	statusOptional := path.Dir(p) == dpkgStatusDir
	var pkgs []Package
	// byKey finds the package a stanza replaces: -1 for one not installed.
	byKey := map[string]int{}
	seen := fieldSet{seed: maphash.MakeSeed(), at: map[uint64]int{}}
	var lower []byte
	err := controlStanzas(dpkgFormat, data, func(fields []controlField, line int) error {
		var st dpkgStanza
		seen.reset(fields)
		for i, f := range fields {
			if len(f.name) > MaxFieldBytes {
				return limitf("%s: line %d: field name over %d bytes", dpkgFormat, f.line, MaxFieldBytes)
			}
			lower = asciiLower(lower[:0], f.name)
			if seen.add(lower, i) {
				return parseErrorf(dpkgFormat, f.line, "duplicate value for field %.40q", f.name)
			}
			var dst *[]byte
			switch string(lower) {
			case "package":
				dst = &st.name
			case "version":
				dst = &st.version
			case "source":
				dst = &st.source
			case "status":
				dst = &st.status
			case "architecture":
				dst = &st.arch
			default:
				continue
			}
			if len(f.value) > MaxFieldBytes {
				return limitf("%s: line %d: %s value over %d bytes", dpkgFormat, f.line, lower, MaxFieldBytes)
			}
			*dst = f.value
		}
		pkg, installed, err := st.pkg(p, line, statusOptional)
		if err != nil {
			return err
		}
		key := pkg.Name + ":" + pkg.Arch
		i, ok := byKey[key]
		if !ok && len(byKey) == MaxPackagesPerFile {
			return limitf("%s: over %d packages in %s", dpkgFormat, MaxPackagesPerFile, p)
		}
		switch {
		case installed && ok && i >= 0:
			pkgs[i] = pkg
		case installed:
			byKey[key] = len(pkgs)
			pkgs = append(pkgs, pkg)
		case ok && i >= 0:
			pkgs[i].Name = "" // a later stanza says it is not installed
			byKey[key] = -1
		default:
			byKey[key] = -1
		}
		return nil
	})
	kept := pkgs[:0]
	for _, pkg := range pkgs {
		if pkg.Name != "" {
			kept = append(kept, pkg)
		}
	}
	return kept, err
}

// pkg checks one stanza as dpkg would and returns its package and whether it
// is installed.
func (st dpkgStanza) pkg(p string, line int, statusOptional bool) (Package, bool, error) {
	if len(st.name) == 0 {
		return Package{}, false, parseErrorf(dpkgFormat, line, "stanza has no Package field")
	}
	if !dpkgNameOK(st.name) {
		return Package{}, false, parseErrorf(dpkgFormat, line, "invalid package name %.40q", st.name)
	}
	name := strings.ToLower(string(st.name))
	state := ""
	if len(st.status) > 0 || !statusOptional {
		words := strings.Fields(string(st.status))
		if len(st.status) == 0 {
			words = []string{"unknown", "ok", "not-installed"}
		}
		if len(words) != 3 || !dpkgWants[words[0]] || !dpkgFlags[words[1]] || !dpkgStates[words[2]] {
			return Package{}, false, parseErrorf(dpkgFormat, line, "package %s: invalid Status %.60q", name, st.status)
		}
		state = words[2]
	}
	installed := state == "" || state == "installed" || state == "triggers-pending" || state == "triggers-awaited"
	if len(st.version) == 0 {
		if state != "not-installed" && state != "half-installed" {
			return Package{}, false, parseErrorf(dpkgFormat, line, "package %s: no Version field", name)
		}
		return Package{Name: name, Arch: string(st.arch)}, false, nil
	}
	if bytes.ContainsFunc(st.version, func(r rune) bool { return r < 0x80 && isSpace(byte(r)) }) {
		return Package{}, false, parseErrorf(dpkgFormat, line, "package %s: version %.60q has embedded spaces", name, st.version)
	}
	if bytes.ContainsFunc(st.arch, func(r rune) bool { return r < 0x80 && isSpace(byte(r)) }) {
		return Package{}, false, parseErrorf(dpkgFormat, line, "package %s: invalid Architecture %.40q", name, st.arch)
	}
	version := string(st.version)
	pkg := Package{Ecosystem: EcosystemDebian, Name: name, Version: version, SourceName: name, Arch: string(st.arch), Path: p}
	if len(st.source) > 0 {
		pkg.SourceName, pkg.SourceVersion = parseDpkgSource(strings.Join(strings.Fields(string(st.source)), " "))
		pkg.SourceName = strings.ToLower(pkg.SourceName)
		if pkg.SourceVersion == version {
			pkg.SourceVersion = ""
		}
	}
	return pkg, installed, nil
}

// fieldSet finds a stanza's repeated field names (in lower case) without
// copying them: by a seeded hash, confirmed by comparing the names.
type fieldSet struct {
	seed   maphash.Seed
	at     map[uint64]int // hash of a lower-case name → index in fields
	fields []controlField
}

func (s *fieldSet) reset(fields []controlField) {
	clear(s.at)
	s.fields = fields
}

// add records fields[i], whose name in lower case is lower, and reports
// whether an earlier field has the same name.
func (s *fieldSet) add(lower []byte, i int) bool {
	h := maphash.Bytes(s.seed, lower)
	j, ok := s.at[h]
	if !ok {
		s.at[h] = i
		return false
	}
	if asciiEqualFold(s.fields[j].name, string(lower)) {
		return true
	}
	// A hash collision: compare with every earlier field (never in practice).
	for _, f := range s.fields[:i] {
		if asciiEqualFold(f.name, string(lower)) {
			return true
		}
	}
	return false
}

// asciiLower appends b to dst with ASCII letters in lower case.
func asciiLower(dst, b []byte) []byte {
	for _, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// dpkgNameOK reports whether name is a package name dpkg accepts
// (pkg_name_is_illegal): an alphanumeric, then alphanumerics and "-+.".
func dpkgNameOK(name []byte) bool {
	for i, c := range name {
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && (i == 0 || (c != '-' && c != '+' && c != '.')) {
			return false
		}
	}
	return len(name) > 0
}

// The words of a Status field, as dpkg's parser knows them.
var (
	dpkgWants  = map[string]bool{"unknown": true, "install": true, "hold": true, "deinstall": true, "purge": true}
	dpkgFlags  = map[string]bool{"ok": true, "reinstreq": true}
	dpkgStates = map[string]bool{
		"not-installed": true, "config-files": true, "half-installed": true, "unpacked": true,
		"half-configured": true, "triggers-awaited": true, "triggers-pending": true, "installed": true,
	}
)

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
