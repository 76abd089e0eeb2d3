package layer

import (
	"path"

	"github.com/portcullis-dev/portcullis/scan/bytesize"
	"github.com/portcullis-dev/portcullis/scan/inventory"
)

// What a Result's records cost in memory beyond their strings' bytes, about:
// a string header, a File, a Link, a Package.
const (
	stringOverhead  = 16
	fileOverhead    = 128
	linkOverhead    = 56
	packageOverhead = 200
)

// charge counts n more bytes kept in the Result; past MaxRecordBytes the
// analysis stops, incomplete.
func (a *analyzer) charge(n int64) error {
	a.records += n
	if a.records > a.limits.MaxRecordBytes {
		return &limitError{"records kept over " + bytesize.Format(a.limits.MaxRecordBytes)}
	}
	return nil
}

// countPackages counts packages found against MaxPackages and MaxRecordBytes.
func (a *analyzer) countPackages(pkgs []inventory.Package) error {
	a.packages += len(pkgs)
	if a.packages > a.limits.MaxPackages {
		return &limitError{"over " + formatCount(int64(a.limits.MaxPackages)) + " packages"}
	}
	var n int64
	for _, p := range pkgs {
		n += int64(len(p.Ecosystem)+len(p.Name)+len(p.Version)+len(p.SourceName)+len(p.SourceVersion)+
			len(p.Path)+len(p.Arch)+len(p.GOOS)+len(p.GOARCH)) + packageOverhead
	}
	return a.charge(n)
}

// The package databases OS tools read at fixed paths, which an image may
// reach through links (a symlinked /var/lib/dpkg, a hard link to a file of a
// lower layer).
const (
	dpkgStatus    = "/var/lib/dpkg/status"
	dpkgStatusDir = "/var/lib/dpkg/status.d"
	apkInstalled  = "/lib/apk/db/installed"
	apkInstalled2 = "/usr/lib/apk/db/installed"
)

// candidateAs returns the package database path a file at p may be, reached
// through links, by its name: ".../status" a dpkg status file,
// ".../status.d/<name>" a dpkg status.d file, ".../installed" an apk
// database; else "". The analysis reads such files as that database (File.As)
// and Squash counts what they hold only if the database's path leads to them.
func candidateAs(p string) string {
	dir, base := path.Split(p)
	switch {
	case base == "status":
		return dpkgStatus
	case path.Base(dir) == "status.d" && base != "" && path.Ext(base) != ".md5sums":
		return dpkgStatusDir + "/" + base
	case base == "installed":
		return apkInstalled
	}
	return ""
}

// consumerKind names the database a path is read as by the OS's tools, or "".
func consumerKind(p string) string {
	switch {
	case p == dpkgStatus:
		return "dpkg"
	case path.Dir(p) == dpkgStatusDir:
		return "dpkg status.d"
	case p == apkInstalled || p == apkInstalled2:
		return "apk"
	}
	return ""
}
