package inventory

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// apkInstalled is an apk database in the layout apk writes (as in alpine:3.20;
// checksums and file lists illustrative, the last entry deliberately minimal).
const apkInstalled = `C:Q1Ai5r6X5BCVXQd7TFfbeOHaxAeUw=
P:musl
V:1.2.5-r0
A:x86_64
S:411325
I:643072
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Timo Teräs <timo.teras@iki.fi>
t:1712068018
c:2dd3f8ea8d6fd9f6d1dd5219e5a40e8f4a24ccbb
p:so:libc.musl-x86_64.so.1=1
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1zPY0NK6Z2Gd+cHYSM1d7F7iHI4A=
R:libc.musl-x86_64.so.1

C:Q1HBT6Q4xl8gv0BGm+Q4U6ZG6IkmU=
P:busybox-binsh
V:1.36.1-r29
A:x86_64
S:1547
I:1
T:busybox ash /bin/sh
U:https://busybox.net/
L:GPL-2.0-only
o:busybox
m:Sören Tempel <soeren+alpine@soeren-tempel.net>
t:1716376185
c:e14d1c8a7c1c4fcd7b4e1b0ab23d6ee22b1d4a55
D:busybox=1.36.1-r29
p:/bin/sh cmd:sh=1.36.1-r29
r:busybox-initscripts
F:bin
R:sh
a:0:0:777
Z:Q1pcfTfDNEbNKQc2s1tia7da05M8Q=

C:Q1xs2QAMfA8iGsDUlaFm+yonGsEHo=
P:no-origin
V:0.1-r0
`

func TestAPK(t *testing.T) {
	a := APK{}
	for p, want := range map[string]bool{
		"/lib/apk/db/installed":     true,
		"/usr/lib/apk/db/installed": true,
		"/lib/apk/db/triggers":      false,
		"/etc/apk/world":            false,
	} {
		if got := a.Wants(p); got != want {
			t.Errorf("Wants(%s) = %v, want %v", p, got, want)
		}
	}
	pkgs, err := a.Extract("/lib/apk/db/installed", []byte(apkInstalled))
	if err != nil {
		t.Fatal(err)
	}
	want := []Package{
		{Ecosystem: "Alpine", Name: "musl", Version: "1.2.5-r0", SourceName: "musl", Arch: "x86_64", Path: "/lib/apk/db/installed"},
		{Ecosystem: "Alpine", Name: "busybox-binsh", Version: "1.36.1-r29", SourceName: "busybox", Arch: "x86_64", Path: "/lib/apk/db/installed"},
		{Ecosystem: "Alpine", Name: "no-origin", Version: "0.1-r0", SourceName: "no-origin", Path: "/lib/apk/db/installed"},
	}
	if !slices.Equal(pkgs, want) {
		t.Errorf("got %+v\nwant %+v", pkgs, want)
	}
}

// TestAPKReadsWhatAPKReads covers apk-tools' rules: case-sensitive
// one-letter fields, values as written, a short line ending a package, and
// what apk refuses to load.
func TestAPKReadsWhatAPKReads(t *testing.T) {
	cases := []struct {
		name, db string
		want     []string
		err      string
	}{
		{"lower-case p is provides, not the name", "p:musl\nV:1\n", nil, ""},
		{"upper-case O is not the origin", "P:a\nV:1\nO:x\n", []string{"a 1 a"}, ""},
		{"later field replaces the earlier", "P:a\nV:1\nV:2\n", []string{"a 2 a"}, ""},
		{"one-byte line ends the package", "P:a\nV:1\nx\nP:b\nV:2\n", []string{"a 1 a", "b 2 b"}, ""},
		{"CRLF: the lone CR line ends the package", "P:a\r\nV:1\r\n\r\nP:b\r\nV:2\r\n", []string{"a\r 1\r a\r", "b\r 2\r b\r"}, ""},
		{"no blank line at the end", "P:a\nV:1", []string{"a 1 a"}, ""},
		{"space before the colon", "P :a\nV:1\n", nil, "not a field"},
		{"indented field", "P:a\n V:1\n", nil, "not a field"},
		{"name without version", "P:a\nA:x86_64\n\nP:b\nV:1\n", nil, "has no version"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pkgs, err := APK{}.Extract("/lib/apk/db/installed", []byte(c.db))
			var got []string
			for _, p := range pkgs {
				got = append(got, p.Name+" "+p.Version+" "+p.SourceName)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("packages %q, want %q", got, c.want)
			}
			if (c.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.err) {
				t.Errorf("error %v, want %q", err, c.err)
			}
		})
	}
	var b strings.Builder
	for i := range MaxPackagesPerFile + 1 {
		fmt.Fprintf(&b, "P:p%d\nV:1\n\n", i)
	}
	pkgs, err := APK{}.Extract("/lib/apk/db/installed", []byte(b.String()))
	var le *LimitError
	if !errors.As(err, &le) || len(pkgs) != MaxPackagesPerFile {
		t.Errorf("flood: %d packages, error %v; want %d and a LimitError", len(pkgs), err, MaxPackagesPerFile)
	}
	if _, err := (APK{}).Extract("/lib/apk/db/installed", []byte("P:a\nV:"+strings.Repeat("1", MaxFieldBytes+1))); !errors.As(err, &le) {
		t.Errorf("long version: error %v, want a LimitError", err)
	}
}

func FuzzAPK(f *testing.F) {
	f.Add([]byte(apkInstalled))
	f.Add([]byte("P:a\nV:1\n\n\nP:b\no:c\nV:2"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := APK{}.Extract("/lib/apk/db/installed", data)
		checkExtractResult(t, pkgs, err)
		for _, pkg := range pkgs {
			if pkg.Name == "" || pkg.Version == "" || pkg.SourceName == "" {
				t.Fatalf("incomplete package %+v", pkg)
			}
		}
	})
}
