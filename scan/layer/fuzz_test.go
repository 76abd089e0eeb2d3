package layer_test

import (
	"bytes"
	"context"
	"path"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/scan/layer"
)

// FuzzAnalyze feeds arbitrary bytes to Analyze: it must not panic, and what it
// returns must stay within its limits and inside the image's root.
func FuzzAnalyze(f *testing.F) {
	small := []entry{
		dir("etc/"),
		symlink("etc/os-release", "../usr/lib/os-release"),
		file("usr/lib/os-release", []byte("ID=debian\nVERSION_ID=\"12\"\n")),
		file("var/lib/dpkg/status", []byte("Package: a\nStatus: install ok installed\nVersion: 1\n")),
		file("lib/apk/db/installed", []byte("P:b\nV:2\no:c\n")),
		file("../x/node_modules/d/package.json", []byte(`{"name":"d","version":"3"}`)),
		file("a/.wh.b", nil),
		file("c/.wh..wh..opq", nil),
		hardlink("e", "/usr/lib/os-release"),
	}
	tarBytes := tarLayer(f, small...)
	f.Add(tarBytes)
	f.Add(gzipLayer(f, small...))
	f.Add(zstdBytes(f, tarBytes))
	f.Add(zipOf(f, "META-INF/maven/g/a/pom.properties", []byte("groupId=g\nartifactId=a\nversion=1\n")))
	f.Add(tarLayer(f, file("app.jar", zipOf(f, "META-INF/maven/g/a/pom.properties", []byte("groupId=g\nartifactId=a\nversion=1\n")))))
	f.Add([]byte{0x1f, 0x8b})
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd})

	limits := layer.Limits{
		MaxUncompressedBytes: 1 << 20,
		MaxEntries:           64,
		MaxFileBytes:         64 << 10,
		MaxDepth:             2,
		MaxZstdWindow:        1 << 20,
		Timeout:              time.Minute,
		Secrets:              true,
	}
	extractors := layer.DefaultExtractors(limits)
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := layer.Analyze(context.Background(), bytes.NewReader(data), "", limits, extractors...)
		if err != nil {
			return
		}
		if res.Entries > limits.MaxEntries || res.UncompressedSize > limits.MaxUncompressedBytes {
			t.Fatalf("over the limits: %d entries, %d bytes", res.Entries, res.UncompressedSize)
		}
		if res.Incomplete != (res.IncompleteReason != "") {
			t.Fatalf("incomplete %v with reason %q", res.Incomplete, res.IncompleteReason)
		}
		if res.Digest != sha256Digest(data) || res.Size != int64(len(data)) {
			t.Fatalf("digest %s of %d bytes, read %s of %d", sha256Digest(data), len(data), res.Digest, res.Size)
		}
		inside := func(p string) {
			if p != path.Clean(p) || !path.IsAbs(p) {
				t.Fatalf("path %q not clean and absolute", p)
			}
		}
		for _, f := range res.Files {
			inside(f.Path)
			if f.Size > limits.MaxFileBytes && f.Data != nil {
				t.Fatalf("%s: %d bytes kept", f.Path, f.Size)
			}
		}
		for _, s := range res.Secrets {
			inside(s.Path)
		}
		for _, l := range res.Links {
			inside(l.Path)
			inside(l.Target)
			if len(l.Target) > layer.DefaultLimits().MaxPathBytes+len(l.Path)+1 {
				t.Fatalf("link target of %d bytes kept", len(l.Target))
			}
		}
		if n := len(res.Packages()); n > layer.DefaultLimits().MaxPackages {
			t.Fatalf("%d packages kept", n)
		}
		if len(res.Errors) > 0 && !res.Incomplete {
			t.Fatalf("extractor errors %v in a complete result", res.Errors)
		}
		for _, p := range append(res.Whiteouts, res.OpaqueDirs...) {
			inside(p)
		}
		layer.Squash([]layer.Result{res, res})
	})
}

// FuzzSquash stacks two fuzzed layers (tar, gzip or zstd) over a base image
// whose package database and os-release are reached through links: Squash
// must not panic, must say why it is incomplete, and every package it lists
// must be at a clean absolute path.
func FuzzSquash(f *testing.F) {
	base := tarLayer(f,
		file("usr/lib/os-release", []byte("ID=debian\n")),
		symlink("etc/os-release", "../usr/lib/os-release"),
		file("opt/dpkg/status", []byte("Package: a\nStatus: install ok installed\nVersion: 1\n")),
		symlink("var/lib/dpkg", "/opt/dpkg"),
	)
	f.Add(tarLayer(f, hardlink("var/lib/dpkg/status", "opt/dpkg/status")), tarLayer(f, file("etc/.wh.os-release", nil)))
	f.Add(tarLayer(f, symlink("opt/dpkg", "/x"), file("x/status", []byte("Package: b\nStatus: install ok installed\nVersion: 2\n"))), tarLayer(f, file("opt/.wh..wh..opq", nil)))
	f.Add(tarLayer(f, symlink("a", "b"), symlink("b", "a"), symlink("var/lib/dpkg/status.d", "/a")), []byte{})
	f.Add(gzipLayer(f, dir("var/lib/dpkg/"), file("var/lib/dpkg/status.d/c", []byte("Package: c\nVersion: 3\n"))), zstdBytes(f, base))
	limits := layer.Limits{MaxUncompressedBytes: 1 << 20, MaxEntries: 64, MaxFileBytes: 64 << 10, MaxZstdWindow: 1 << 20}
	extractors := layer.DefaultExtractors(limits)
	analyse := func(t *testing.T, data []byte) (layer.Result, bool) {
		res, err := layer.Analyze(context.Background(), bytes.NewReader(data), "", limits, extractors...)
		if err != nil {
			return res, false
		}
		if res.DiffID == "" {
			res.DiffID = "unknown"
		}
		return res, true
	}
	baseRes, _ := analyse(&testing.T{}, base)
	f.Fuzz(func(t *testing.T, a, b []byte) {
		ra, ok1 := analyse(t, a)
		rb, ok2 := analyse(t, b)
		if !ok1 || !ok2 {
			return
		}
		img := layer.Squash([]layer.Result{baseRes, ra, rb})
		if img.Incomplete != (len(img.IncompleteReasons) > 0) {
			t.Fatalf("incomplete %v with reasons %q", img.Incomplete, img.IncompleteReasons)
		}
		if img.DistroUnknown != (img.Distro.ID == "") {
			t.Fatalf("distro unknown %v, distro %+v", img.DistroUnknown, img.Distro)
		}
		for _, p := range img.Packages {
			if p.Path == "" || !path.IsAbs(p.Path) {
				t.Fatalf("package %+v at no absolute path", p)
			}
		}
	})
}
