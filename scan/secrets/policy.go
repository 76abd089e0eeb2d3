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
// documentation, locales, time zones and the CA certificates packages
// install. /etc/ssl/certs is read: keys get copied there by mistake.
var skippedDirs = []string{
	"/proc/", "/sys/", "/dev/",
	"/usr/share/doc/", "/usr/share/man/", "/usr/share/info/", "/usr/share/locale/",
	"/usr/share/i18n/", "/usr/share/zoneinfo/", "/usr/lib/locale/",
	"/usr/share/ca-certificates/", "/etc/pki/ca-trust/extracted/",
}

// vendorRoots are where package managers, toolchains and the distribution
// unpack third-party code; inside them, test fixtures, examples and
// documentation are skipped (see Wants).
var vendorRoots = []string{
	"/node_modules/", "/site-packages/", "/dist-packages/", "/go/pkg/mod/", "/usr/local/go/", "/usr/lib/go/",
	"/gems/", "/usr/lib/", "/usr/local/lib/", "/usr/share/",
}

// fixtureDirs are directory names skipped inside vendorRoots, as are names
// starting "test-" or "test_".
var fixtureDirs = map[string]bool{
	"test": true, "tests": true, "testdata": true, "testonly": true, "__tests__": true, "fixtures": true,
	"doc": true, "docs": true, "example": true, "examples": true, "_examples": true,
}

// fixtureSuffixes end file names skipped inside vendorRoots: tests and
// documentation.
var fixtureSuffixes = []string{
	"_test.go", "_test_data.go", "_test.py", ".test.js", ".spec.js", ".test.ts", ".spec.ts", ".test.mjs",
	".md", ".rst", ".adoc",
}

// Wants reports whether the file at the clean absolute path p, of size bytes,
// is one to read for secrets. It declines empty files and files over
// MaxFileBytes; binary and media formats by extension; /proc, /sys, /dev,
// documentation, locale and time-zone data and the CA bundles packages
// install (not /etc/ssl/certs, where keys get copied by mistake). And
// because third-party code ships deliberate test keys and example tokens
// (CPython's Lib/test/certdata, Go's crypto/tls/testdata, npm packages'
// test/fixtures, JWTs in library docs), it declines, inside third-party code
// only, tests, examples and documentation: under node_modules,
// site-packages, dist-packages, the Go module cache, GOROOT, Ruby gems,
// /usr/lib, /usr/local/lib and /usr/share, files in a directory named test,
// tests, testdata, testonly, __tests__, fixtures, test-* or test_*, doc,
// docs, example, examples or _examples, and files named *_test.go,
// *_test_data.go, test_*.py, *_test.py, *.test.js, *.spec.js, *.test.ts,
// *.spec.ts, *.md, *.rst or *.adoc. The image's own application files
// (/app, /srv, /home, /etc, /opt …), tests included, are always read.
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

// vendoredFixture reports whether p is a test, example or documentation
// file of third-party code (see Wants).
func vendoredFixture(p string) bool {
	for _, root := range vendorRoots {
		i := strings.Index(p, root)
		if i < 0 {
			continue
		}
		rest := p[i+len(root):]
		base := path.Base(rest)
		if strings.HasPrefix(base, "test_") && strings.HasSuffix(base, ".py") {
			return true
		}
		for _, suffix := range fixtureSuffixes {
			if strings.HasSuffix(base, suffix) {
				return true
			}
		}
		// The directories of rest, as strings.Split would give them but
		// without allocating.
		for dirs, more := path.Dir(rest), true; more; {
			var d string
			d, dirs, more = strings.Cut(dirs, "/")
			if fixtureDirs[d] || strings.HasPrefix(d, "test-") || strings.HasPrefix(d, "test_") {
				return true
			}
		}
	}
	return false
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
