package layer_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/scan/inventory"
	"github.com/portcullis-dev/portcullis/scan/layer"
)

// machineLayer is a layer made of this machine's real package databases,
// os-release, a Go binary (this test) and a jar.
func machineLayer(t *testing.T) ([]entry, int) {
	status := machineFile(t, "/var/lib/dpkg/status")
	dpkgPkgs, err := inventory.Dpkg{}.Extract("/var/lib/dpkg/status", status)
	if err != nil || len(dpkgPkgs) == 0 {
		t.Fatalf("dpkg status: %d packages, %v", len(dpkgPkgs), err)
	}
	osRelease := machineFile(t, "/usr/lib/os-release")
	target, err := os.Readlink("/etc/os-release")
	if err != nil {
		t.Skipf("/etc/os-release is not a symlink here: %v", err)
	}
	return []entry{
		dir("etc/"),
		symlink("etc/os-release", target),
		dir("usr/"), dir("usr/lib/"),
		file("usr/lib/os-release", osRelease),
		dir("var/"), dir("var/lib/"), dir("var/lib/dpkg/"),
		file("var/lib/dpkg/status", status),
		file("usr/local/bin/app", testExecutable(t)),
		file("usr/share/java/commons-io.jar", machineFile(t, "/usr/share/java/commons-io-2.11.0.jar")),
		file("usr/lib/python3/dist-packages/blinker-1.5.dist-info/METADATA", []byte("Metadata-Version: 2.1\nName: blinker\nVersion: 1.5\n")),
		file("usr/lib/node_modules/npm/node_modules/semver/package.json", []byte(`{"name":"semver","version":"7.5.4"}`)),
		file("usr/bin/script", []byte("#!/bin/sh\n")),
	}, len(dpkgPkgs)
}

// TestAnalyzeMachineLayer analyses the same real layer uncompressed, gzip
// and zstd (by the zstd command) and checks digests, diffID and inventory.
func TestAnalyzeMachineLayer(t *testing.T) {
	entries, dpkgCount := machineLayer(t)
	tarBytes := tarLayer(t, entries...)
	bi, _ := debug.ReadBuildInfo()
	for _, tc := range []struct {
		compression layer.Compression
		blob        []byte
	}{
		{layer.Uncompressed, tarBytes},
		{layer.Gzip, gzipLayer(t, entries...)},
		{layer.Zstd, zstdBytes(t, tarBytes)},
	} {
		t.Run(string(tc.compression), func(t *testing.T) {
			res := analyze(t, tc.blob, layer.DefaultLimits())
			if res.Incomplete || len(res.Errors) > 0 {
				t.Fatalf("incomplete %q, errors %v", res.IncompleteReason, res.Errors)
			}
			if res.Compression != tc.compression || res.Digest != sha256Digest(tc.blob) ||
				res.DiffID != sha256Digest(tarBytes) || res.Size != int64(len(tc.blob)) ||
				res.UncompressedSize != int64(len(tarBytes)) || res.Entries != int64(len(entries)) {
				t.Errorf("got %s digest %s diffID %s size %d/%d entries %d", res.Compression, res.Digest, res.DiffID, res.Size, res.UncompressedSize, res.Entries)
			}
			count := map[string]int{}
			for _, p := range res.Packages() {
				count[p.Ecosystem]++
				if p.Layer != res.DiffID {
					t.Errorf("%s: layer %q", p.Name, p.Layer)
				}
			}
			want := map[string]int{"Debian": dpkgCount, "Go": len(bi.Deps) + 2, "Maven": 1, "PyPI": 1, "npm": 1}
			if bi.Main.Path == "" {
				want["Go"]--
			}
			for eco, n := range want {
				if count[eco] != n {
					t.Errorf("%s: %d packages, want %d", eco, count[eco], n)
				}
			}
			var paths []string
			for _, f := range res.Files {
				paths = append(paths, f.Path)
			}
			wantPaths := []string{"/usr/lib/os-release", "/var/lib/dpkg/status", "/usr/local/bin/app", "/usr/share/java/commons-io.jar",
				"/usr/lib/python3/dist-packages/blinker-1.5.dist-info/METADATA", "/usr/lib/node_modules/npm/node_modules/semver/package.json"}
			if !slices.Equal(paths, wantPaths) {
				t.Errorf("files %q\nwant %q", paths, wantPaths)
			}
			if !res.Paths.Has("/usr/bin/script") || !res.Paths.HasNonDir("/etc/os-release") || res.Paths.HasNonDir("/usr/lib") || !res.Paths.Has("/usr/lib") {
				t.Error("path set does not record the entries")
			}
			if len(res.Links) != 1 || res.Links[0] != (layer.Link{Path: "/etc/os-release", Target: "/usr/lib/os-release"}) {
				t.Errorf("links %+v", res.Links)
			}
		})
	}
}

// TestAnalyzePathsNormalised checks that "../", "./" and absolute names stay
// inside the image: "../../var/lib/dpkg/status" is /var/lib/dpkg/status.
func TestAnalyzePathsNormalised(t *testing.T) {
	status := []byte("Package: escaped\nStatus: install ok installed\nVersion: 1\n")
	blob := tarLayer(t,
		file("../../var/lib/dpkg/status", status),
		file("/lib/apk/db/installed", []byte("P:abs\nV:2\n")),
		file("./a/../b/./c", nil),
		dir("d//e/"),
		symlink("x/y", "../../../../etc/passwd"),
		hardlink("z", "../../../b/c"),
	)
	res := analyze(t, blob, layer.DefaultLimits())
	var got []string
	for _, f := range res.Files {
		for _, p := range f.Packages {
			got = append(got, f.Path+" "+p.Name)
		}
	}
	want := []string{"/var/lib/dpkg/status escaped", "/lib/apk/db/installed abs"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	for _, p := range []string{"/b/c", "/x/y", "/z"} {
		if !res.Paths.HasNonDir(p) {
			t.Errorf("%s not recorded", p)
		}
	}
	if !res.Paths.Has("/d/e") {
		t.Error("/d/e not recorded")
	}
	wantLinks := []layer.Link{{Path: "/x/y", Target: "/etc/passwd"}, {Path: "/z", Target: "/b/c", Hard: true}}
	if !slices.Equal(res.Links, wantLinks) {
		t.Errorf("links %+v, want %+v", res.Links, wantLinks)
	}
}

// TestAnalyzeLaterEntryWins checks that of two entries at one path in one
// layer the later counts, as when a runtime extracts the tar.
func TestAnalyzeLaterEntryWins(t *testing.T) {
	res := analyze(t, tarLayer(t,
		file("var/lib/dpkg/status", []byte("Package: old\nStatus: install ok installed\nVersion: 1\n")),
		file("var/lib/dpkg/status", []byte("Package: new\nStatus: install ok installed\nVersion: 2\n")),
		file("lib/apk/db/installed", []byte("P:gone\nV:1\n")),
		symlink("lib/apk/db/installed", "/dev/null"),
	), layer.DefaultLimits())
	pkgs := res.Packages()
	if len(pkgs) != 1 || pkgs[0].Name != "new" {
		t.Errorf("got %+v", pkgs)
	}
	if len(res.Links) != 1 || res.Links[0].Path != "/lib/apk/db/installed" {
		t.Errorf("links %+v", res.Links)
	}
}

// TestAnalyzeWhiteouts checks containerd's rules: only base names count, so
// content under a directory named .wh..wh.plnk is extracted (and read).
func TestAnalyzeWhiteouts(t *testing.T) {
	res := analyze(t, tarLayer(t,
		file("etc/.wh.motd", nil),
		file("app/node_modules/.wh..wh..opq", nil),
		file(".wh..wh.plnk/123", nil),
		dir("x/.wh..wh.plnk/"),
		file("x/.wh..wh.plnk/var/lib/dpkg/status", []byte("Package: a\nStatus: install ok installed\nVersion: 1\n")),
		file("usr/.wh..wh.aufs", nil),
	), layer.DefaultLimits())
	if !slices.Equal(res.Whiteouts, []string{"/etc/motd"}) || !slices.Equal(res.OpaqueDirs, []string{"/app/node_modules"}) {
		t.Errorf("whiteouts %q, opaque %q", res.Whiteouts, res.OpaqueDirs)
	}
	if res.Paths.Has("/etc/.wh.motd") || res.Paths.Has("/app/node_modules/.wh..wh..opq") || res.Paths.Has("/usr/.wh..wh.aufs") || res.Paths.Has("/x/.wh..wh.plnk") {
		t.Error("whiteout markers recorded as entries")
	}
	if !res.Paths.Has("/.wh..wh.plnk/123") || !res.Paths.Has("/x/.wh..wh.plnk/var/lib/dpkg/status") {
		t.Error("content under a .wh..wh. directory not recorded")
	}
	if len(res.Files) != 1 || res.Files[0].As != "/var/lib/dpkg/status" || len(res.Files[0].Packages) != 1 {
		t.Errorf("the status file under .wh..wh.plnk was not read as a candidate database: %+v", res.Files)
	}
	if res.Incomplete {
		t.Errorf("incomplete: %s", res.IncompleteReason)
	}
	// ".wh." names no file: containerd removes the directory (or fails).
	if res := analyze(t, tarLayer(t, file("srv/.wh.", nil)), layer.DefaultLimits()); !res.Incomplete || res.IncompleteReason != "whiteout /srv/.wh. names no file" {
		t.Errorf("got incomplete %v %q", res.Incomplete, res.IncompleteReason)
	}
}

func TestAnalyzeDigestMismatch(t *testing.T) {
	blob := gzipLayer(t, file("a", []byte("a")))
	other := sha256Digest([]byte("something else"))
	_, err := layer.Analyze(context.Background(), bytes.NewReader(blob), other, layer.DefaultLimits())
	if !errors.Is(err, layer.ErrDigestMismatch) {
		t.Errorf("got %v, want ErrDigestMismatch", err)
	}
	// Without an expected digest, the digest read is reported.
	res, err := layer.Analyze(context.Background(), bytes.NewReader(blob), "", layer.DefaultLimits())
	if err != nil || res.Digest != sha256Digest(blob) {
		t.Errorf("got %q, %v", res.Digest, err)
	}
	// sha512 digests are checked too.
	res, err = layer.Analyze(context.Background(), bytes.NewReader(blob), "sha512:00", layer.DefaultLimits())
	if !errors.Is(err, layer.ErrDigestMismatch) || !strings.Contains(err.Error(), "read sha512:") {
		t.Errorf("got %v", err)
	}
	for _, bad := range []string{"md5:00", "sha256", "sha256:"} {
		if _, err := layer.Analyze(context.Background(), bytes.NewReader(blob), bad, layer.DefaultLimits()); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestAnalyzeCorrupt(t *testing.T) {
	good := gzipLayer(t, file("var/lib/dpkg/status", machineFile(t, "/var/lib/dpkg/status")))
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 0xff
	crc := bytes.Clone(good)
	crc[len(crc)-6] ^= 0xff // in the gzip trailer's CRC-32
	for name, blob := range map[string][]byte{
		"truncated gzip":  good[:len(good)/2],
		"flipped byte":    flipped,
		"bad crc":         crc,
		"not a tar":       bytes.Repeat([]byte("not a tar "), 100),
		"gzip of garbage": gzipBytes(t, bytes.Repeat([]byte{1, 2, 3}, 1000)),
		"truncated zstd":  zstdBytes(t, tarLayer(t, file("a", bytes.Repeat([]byte("abc"), 1000))))[:40],
	} {
		_, err := layer.Analyze(context.Background(), bytes.NewReader(blob), "", layer.DefaultLimits(), layer.DefaultExtractors(layer.DefaultLimits())...)
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestAnalyzeCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := layer.Analyze(ctx, bytes.NewReader(tarLayer(t, file("a", nil))), "", layer.DefaultLimits())
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

func TestAnalyzeEmptyLayer(t *testing.T) {
	// The empty layer: a gzip of an empty tar (two zero blocks).
	blob := gzipLayer(t)
	res := analyze(t, blob, layer.DefaultLimits())
	if res.Incomplete || res.Entries != 0 || res.DiffID != sha256Digest(make([]byte, 1024)) {
		t.Errorf("got %+v", res)
	}
}
