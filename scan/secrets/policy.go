package secrets

import (
	"path"
	"strings"

	"github.com/portcullis-dev/portcullis/scan/bytesize"
)

// MaxFileBytes is the largest file the secret search reads, and the largest
// file inside an archive it opens: configuration and key files are small,
// and larger files are mostly data. Larger ones are not searched, and
// reported so (Skip).
const MaxFileBytes = 1 << 20

// skippedDirs hold no files a credential lives in, or only the examples of
// documentation: kernel pseudo-filesystems and /usr/share/doc. Everything
// else is read, media, locales, time zones, certificate bundles and
// executables included (a NUL byte stops nothing), and archives are opened.
var skippedDirs = []string{"/proc/", "/sys/", "/dev/", "/usr/share/doc/"}

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
// is one to read for secrets: not empty, at most MaxFileBytes, and not
// Excluded. See Skip for why one is not.
func Wants(p string, size int64) bool {
	skip, _ := Skip(p, size)
	return !skip
}

// Skip reports whether the secret search passes over the file at the clean
// absolute path p, of size bytes, and if so whether that must be reported:
// reason is empty for a file with nothing to search (empty) or Excluded by
// design, and says why for one that may hold a secret but is not read
// ("over 1 MiB"): callers list it as not searched, so that a policy can
// require that everything be.
func Skip(p string, size int64) (skip bool, reason string) {
	switch {
	case size <= 0 || Excluded(p):
		return true, ""
	case size > MaxFileBytes:
		return true, "over " + bytesize.Format(MaxFileBytes)
	}
	return false, ""
}

// Excluded reports whether the secret search leaves the path p out by
// design: /proc, /sys, /dev and /usr/share/doc; and, because third-party
// code ships deliberate test keys and example tokens (CPython's
// Lib/test/certdata, Go's crypto/tls/testdata, npm packages'
// test/fixtures, JWTs in library docs), inside third-party code only, its
// tests, examples and documentation: under node_modules, site-packages,
// dist-packages, the Go module cache, GOROOT, Ruby gems, /usr/lib,
// /usr/local/lib and /usr/share, files in a directory named test, tests,
// testdata, testonly, __tests__, fixtures, test-* or test_*, doc, docs,
// example, examples or _examples, and files named *_test.go,
// *_test_data.go, test_*.py, *_test.py, *.test.js, *.spec.js, *.test.ts,
// *.spec.ts, *.md, *.rst or *.adoc. The image's own application files
// (/app, /srv, /home, /etc, /opt …), tests included, are always read.
//
// A link from a path that is not Excluded to one that is makes what the
// excluded path holds visible where it is read: callers report such a link
// as not searched.
func Excluded(p string) bool {
	for _, d := range skippedDirs {
		if strings.HasPrefix(p, d) {
			return true
		}
	}
	return vendoredFixture(p)
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
