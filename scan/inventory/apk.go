package inventory

import "bytes"

const apkFormat = "apk installed database"

// APK reads Alpine (and other apk-based) packages from the apk database.
//
// It reads it as apk-tools does (apk_db_fdb_read): a line shorter than two
// bytes ends a package, every other line is a one-letter, case-sensitive
// field name, ':' and the value as written, and a later line of the same
// field replaces an earlier one. A line whose second byte is not ':' makes
// apk refuse the whole database, and is a *ParseError here, as is a package
// without a version; more than MaxPackagesPerFile packages or a kept value
// over MaxFieldBytes is a *LimitError.
type APK struct{}

// Wants reports whether p is the apk installed database, at its classic
// location or the /usr/lib one newer apk-tools use.
func (APK) Wants(p string) bool {
	return p == "/lib/apk/db/installed" || p == "/usr/lib/apk/db/installed"
}

// Extract returns the packages in an apk installed database: P: name,
// V: version, o: origin (the source package), A: architecture. Alongside an
// error it returns the packages read before it.
func (APK) Extract(p string, data []byte) ([]Package, error) {
	var pkgs []Package
	var name, version, origin, arch []byte
	start, line := 1, 0
	end := func() error {
		defer func() { name, version, origin, arch = nil, nil, nil, nil }()
		if name == nil {
			return nil // apk skips a package without a name
		}
		if len(name) == 0 {
			return parseErrorf(apkFormat, start, "package with an empty name")
		}
		if len(version) == 0 {
			return parseErrorf(apkFormat, start, "package %.40q has no version", name)
		}
		if len(pkgs) == MaxPackagesPerFile {
			return limitf("%s: over %d packages in %s", apkFormat, MaxPackagesPerFile, p)
		}
		if len(origin) == 0 {
			origin = name
		}
		pkgs = append(pkgs, Package{Ecosystem: EcosystemAlpine, Name: string(name), Version: string(version), SourceName: string(origin), Arch: string(arch), Path: p})
		return nil
	}
	for len(data) > 0 {
		l := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			l, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		line++
		if len(l) < 2 {
			if err := end(); err != nil {
				return pkgs, err
			}
			start = line + 1
			continue
		}
		if l[1] != ':' {
			return pkgs, parseErrorf(apkFormat, line, "line %.40q is not a field", l)
		}
		var dst *[]byte
		switch l[0] {
		case 'P':
			dst = &name
		case 'V':
			dst = &version
		case 'o':
			dst = &origin
		case 'A':
			dst = &arch
		default:
			continue
		}
		if len(l)-2 > MaxFieldBytes {
			return pkgs, limitf("%s: line %d: %c: value over %d bytes", apkFormat, line, l[0], MaxFieldBytes)
		}
		*dst = l[2:]
	}
	return pkgs, end()
}
