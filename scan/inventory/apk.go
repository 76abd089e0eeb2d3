package inventory

// APK reads Alpine (and other apk-based) packages from the apk database.
type APK struct{}

// Wants reports whether p is the apk installed database, at its classic
// location or the /usr/lib one newer apk-tools use.
func (APK) Wants(p string) bool {
	return p == "/lib/apk/db/installed" || p == "/usr/lib/apk/db/installed"
}

// Extract returns the packages in an apk installed database: P: name,
// V: version, o: origin (the source package), A: architecture.
func (APK) Extract(p string, data []byte) ([]Package, error) {
	var pkgs []Package
	var name, version, origin, arch string
	walkFields(data, ':', func(k, v []byte) {
		switch string(k) {
		case "P":
			name = string(v)
		case "A":
			arch = string(v)
		case "V":
			version = string(v)
		case "o":
			origin = string(v)
		}
	}, func() bool {
		if name != "" && version != "" {
			if origin == "" {
				origin = name
			}
			pkgs = append(pkgs, Package{Ecosystem: EcosystemAlpine, Name: name, Version: version, SourceName: origin, Arch: arch, Path: p})
		}
		name, version, origin, arch = "", "", "", ""
		return true
	})
	return pkgs, nil
}
