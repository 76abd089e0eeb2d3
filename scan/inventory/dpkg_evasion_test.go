package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// TestDpkgReadsWhatDpkgReads covers the ways a status file can be written so
// that dpkg loads a package a stricter or looser reader would miss, and the
// files dpkg refuses to load, which must be errors rather than "no packages".
func TestDpkgReadsWhatDpkgReads(t *testing.T) {
	deb := func(name, version string) string { return name + " " + version }
	cases := []struct {
		name   string
		status string
		want   []string
		err    string // substring of the error; "" for none
	}{
		{"lower-case field names", "package: openssl\nstatus: install ok installed\nversion: 1.1.1n-0\n", []string{deb("openssl", "1.1.1n-0")}, ""},
		{"upper-case field names", "PACKAGE: openssl\nSTATUS: install ok installed\nVERSION: 1.1.1n-0\n", []string{deb("openssl", "1.1.1n-0")}, ""},
		{"mixed case and blanks before the colon", "PaCkAgE  : openssl\nStatus\t: install ok installed\nVersion :1.1.1n-0\n", []string{deb("openssl", "1.1.1n-0")}, ""},
		{"upper-case package name folded", "Package: OpenSSL\nStatus: install ok installed\nVersion: 3\n", []string{deb("openssl", "3")}, ""},
		{"whitespace-only line continues the stanza", "Package: openssl\n \nStatus: install ok installed\nVersion: 3\n", []string{deb("openssl", "3")}, ""},
		{"CR line ends continue the field", "Package: openssl\nStatus: install ok installed\nVersion: 3\nDescription: x\r\n\r\n\r\n", []string{deb("openssl", "3")}, ""},
		{"value on a continuation line", "Package:\n openssl\nStatus: install ok\n installed\nVersion:\n\t3\n", []string{deb("openssl", "3")}, ""},
		{"later stanza replaces the earlier", "Package: openssl\nStatus: install ok installed\nVersion: 1\n\nPackage: openssl\nStatus: install ok installed\nVersion: 3\n", []string{deb("openssl", "3")}, ""},
		{"later stanza removes the earlier", "Package: openssl\nStatus: install ok installed\nVersion: 1\n\nPackage: OPENSSL\nStatus: purge ok not-installed\n", nil, ""},
		{"two architectures are two packages", "Package: libc6\nArchitecture: amd64\nStatus: install ok installed\nVersion: 2\n\nPackage: libc6\nArchitecture: i386\nStatus: install ok installed\nVersion: 2\n", []string{deb("libc6", "2"), deb("libc6", "2")}, ""},
		{"duplicate field", "Package: openssl\nVersion: 3\nStatus: install ok installed\nversion: 1\n", nil, `duplicate value for field "version"`},
		{"duplicate unknown field", "Package: openssl\nX-Foo: 1\nx-foo: 2\nStatus: install ok installed\nVersion: 3\n", nil, "duplicate value"},
		{"space-only line between stanzas", "Package: a\nStatus: install ok installed\nVersion: 1\n\n \nPackage: b\n", []string{deb("a", "1")}, "empty field name"},
		{"line without colon", "Package: a\nStatus: install ok installed\nVersion 1\n", nil, "not followed by a colon"},
		{"no Package", "Status: install ok installed\nVersion: 1\n", nil, "no Package field"},
		{"installed without Version", "Package: a\nStatus: install ok installed\n", nil, "no Version field"},
		{"config-files without Version", "Package: a\nStatus: deinstall ok config-files\n", nil, "no Version field"},
		{"bad Status", "Package: a\nStatus: install ok installd\nVersion: 1\n", nil, "invalid Status"},
		{"version with a space", "Package: a\nStatus: install ok installed\nVersion: 1\n 2\n", nil, "embedded spaces"},
		{"invalid name", "Package: a/b\nStatus: install ok installed\nVersion: 1\n", nil, "invalid package name"},
		{"not-installed without Version is fine", "Package: a\nStatus: purge ok not-installed\n", nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pkgs, err := Dpkg{}.Extract(dpkgStatus, []byte(c.status))
			var got []string
			for _, p := range pkgs {
				got = append(got, deb(p.Name, p.Version))
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("packages %q, want %q", got, c.want)
			}
			switch {
			case c.err == "" && err != nil:
				t.Errorf("error %v", err)
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
				t.Errorf("error %v, want one containing %q", err, c.err)
			case c.err != "":
				var pe *ParseError
				if !errors.As(err, &pe) {
					t.Errorf("error %T, want *ParseError", err)
				}
			}
		})
	}
}

// TestDpkgBounds checks that a status file listing more packages than
// MaxPackagesPerFile, or a field over MaxFieldBytes, stops with a LimitError,
// and that memory stays proportional to the bound, not to the file.
func TestDpkgBounds(t *testing.T) {
	var b bytes.Buffer
	for i := range MaxPackagesPerFile * 3 {
		fmt.Fprintf(&b, "Package: p%d\nVersion: 1\n\n", i)
	}
	data := b.Bytes()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	pkgs, err := Dpkg{}.Extract(dpkgStatusDir+"/flood", data)
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(pkgs)
	var le *LimitError
	if !errors.As(err, &le) || !strings.Contains(le.Reason, "packages") {
		t.Fatalf("error %v, want a LimitError about packages", err)
	}
	if len(pkgs) != MaxPackagesPerFile {
		t.Errorf("%d packages before the limit, want %d", len(pkgs), MaxPackagesPerFile)
	}
	// What stays is the packages: a Package struct and its short strings,
	// well under 512 bytes each.
	if kept := int64(after.HeapAlloc) - int64(before.HeapAlloc); kept > MaxPackagesPerFile*512 {
		t.Errorf("kept %d bytes of heap for %d packages", kept, MaxPackagesPerFile)
	}

	long := "Package: a\nStatus: install ok installed\nVersion: " + strings.Repeat("1", MaxFieldBytes+1) + "\n"
	if _, err := (Dpkg{}).Extract(dpkgStatus, []byte(long)); !errors.As(err, &le) {
		t.Errorf("long version: error %v, want a LimitError", err)
	}
	many := "Package: a\n" + strings.Repeat("X-A:\n", maxStanzaFields+1)
	if _, err := (Dpkg{}).Extract(dpkgStatus, []byte(many)); !errors.As(err, &le) {
		t.Errorf("many fields: error %v, want a LimitError", err)
	}
}
