package secrets

import (
	"bytes"
	"path"
	"strings"
)

// MaxFileBytes is the largest file Wants asks to read: configuration and key
// files are small, and larger text files are mostly data.
const MaxFileBytes = 1 << 20

// binarySniffLen is how much of a file is searched for a NUL byte to decide
// that it is binary.
const binarySniffLen = 8 << 10

// skippedExts are extensions of files that are binary or hold no credentials
// (media, fonts, compiled code, archives, translations).
var skippedExts = map[string]bool{
	".png": true, ".jpg": true, ".jpeg": true, ".gif": true, ".ico": true, ".bmp": true,
	".webp": true, ".svg": true, ".ttf": true, ".otf": true, ".woff": true, ".woff2": true,
	".eot": true, ".so": true, ".a": true, ".o": true, ".dll": true, ".exe": true,
	".pyc": true, ".pyo": true, ".class": true, ".jar": true, ".war": true, ".whl": true,
	".gz": true, ".tgz": true, ".bz2": true, ".xz": true, ".zst": true, ".zip": true,
	".7z": true, ".mo": true, ".wasm": true, ".mp3": true, ".mp4": true, ".pdf": true,
}

// skippedDirs hold no files a credential lives in: kernel pseudo-filesystems,
// documentation, locales, time zones and the public CA certificates.
var skippedDirs = []string{
	"/proc/", "/sys/", "/dev/",
	"/usr/share/doc/", "/usr/share/man/", "/usr/share/info/", "/usr/share/locale/",
	"/usr/share/i18n/", "/usr/share/zoneinfo/", "/usr/lib/locale/",
	"/usr/share/ca-certificates/", "/etc/ssl/certs/", "/etc/pki/ca-trust/extracted/",
}

// vendorRoots are where package managers and toolchains unpack third-party
// code; inside them, test fixture directories (fixtureDirs) are skipped.
var vendorRoots = []string{"/node_modules/", "/site-packages/", "/dist-packages/", "/go/pkg/mod/", "/usr/local/go/", "/usr/lib/go/", "/usr/lib/ruby/gems/", "/gems/"}

// fixtureDirs are the names of test fixture directories skipped inside vendorRoots.
var fixtureDirs = map[string]bool{"test": true, "tests": true, "testdata": true, "__tests__": true, "fixtures": true, "test_data": true}

// Wants reports whether the file at the clean absolute path p, of size bytes,
// is one to read for secrets. It declines empty files and files over
// MaxFileBytes; binary and media formats by extension; /proc, /sys, /dev,
// documentation, locale and time-zone data and the public CA bundles; and,
// because they ship deliberate test keys (CPython's Lib/test/certdata, Go's
// crypto/tls/testdata, npm packages' test/fixtures), test fixture directories
// (test, tests, testdata, __tests__, fixtures, test_data) inside third-party
// code: under node_modules, site-packages, dist-packages, the Go module cache
// and GOROOT, and Ruby gems, and CPython's own regression suite
// (/usr/lib/pythonX.Y/test/, /usr/local/lib/pythonX.Y/test/). The image's
// own application files, test directories included, are always read.
func Wants(p string, size int64) bool {
	if size <= 0 || size > MaxFileBytes {
		return false
	}
	if skippedExts[strings.ToLower(path.Ext(p))] {
		return false
	}
	for _, d := range skippedDirs {
		if strings.HasPrefix(p, d) {
			return false
		}
	}
	return !vendoredFixture(p)
}

// vendoredFixture reports whether p lies in a test fixture directory of
// third-party code (see Wants).
func vendoredFixture(p string) bool {
	for _, prefix := range []string{"/usr/lib/python", "/usr/local/lib/python"} {
		if rest, ok := strings.CutPrefix(p, prefix); ok {
			// pythonX.Y/test/...
			if v, after, ok := strings.Cut(rest, "/"); ok && isPythonVersion(v) && strings.HasPrefix(after, "test/") {
				return true
			}
		}
	}
	for _, root := range vendorRoots {
		i := strings.LastIndex(p, root)
		if i < 0 {
			continue
		}
		dirs := strings.Split(path.Dir(p[i+len(root):]), "/")
		for _, d := range dirs {
			if fixtureDirs[d] {
				return true
			}
		}
	}
	return false
}

// isPythonVersion reports whether v looks like "3.12" or "2.7".
func isPythonVersion(v string) bool {
	major, minor, ok := strings.Cut(v, ".")
	return ok && isDigits(major) && isDigits(minor)
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// IsBinary reports whether data looks binary: a NUL byte in its first 8 KiB.
func IsBinary(data []byte) bool {
	return bytes.IndexByte(data[:min(len(data), binarySniffLen)], 0) >= 0
}
