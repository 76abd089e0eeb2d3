package inventory

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// TestExtractorsBoundedMemory gives every extractor hostile input ten times
// (or more) past its bounds and checks that it stops with a LimitError, and
// that the memory it allocated in all (an upper bound on its peak) and still
// holds stays under fixed bounds, whatever the input's size: memory follows
// the limits, not the input.
func TestExtractorsBoundedMemory(t *testing.T) {
	const (
		maxAllocated = 192 << 20 // all allocations of one call
		maxRetained  = 64 << 20  // heap still held, packages included
	)
	var dpkg, apk bytes.Buffer
	for i := range 10 * MaxPackagesPerFile {
		fmt.Fprintf(&dpkg, "Package: p%d\nVersion: 1\n\n", i)
		fmt.Fprintf(&apk, "P:p%d\nV:1\n\n", i)
	}
	zeros := func(n int) []byte {
		var raw bytes.Buffer
		zw := newDeflated(t, &raw)
		chunk := make([]byte, 1<<20)
		for range n >> 20 {
			zw.Write(chunk)
		}
		zw.Close()
		return raw.Bytes()
	}
	bomb := zeros(256 << 20)
	// Ten stored copies of a 256 MiB deflate bomb named as jars.
	var entries []zipEntry
	for i := range 10 {
		entries = append(entries, zipEntry{name: fmt.Sprintf("lib/%d.jar", i), data: deflatedJar(t, bomb), stored: true})
	}
	cases := []struct {
		name string
		run  func() ([]Package, error)
	}{
		{"dpkg: a million packages", func() ([]Package, error) { return Dpkg{}.Extract(dpkgStatusDir+"/x", dpkg.Bytes()) }},
		{"apk: a million packages", func() ([]Package, error) { return APK{}.Extract("/lib/apk/db/installed", apk.Bytes()) }},
		{"dpkg: a 64 MiB version", func() ([]Package, error) {
			return Dpkg{}.Extract(dpkgStatus, []byte("Package: a\nStatus: install ok installed\nVersion: 1\n"+strings.Repeat(" 1\n", 16<<20)))
		}},
		{"package.json: nested 16 million deep", func() ([]Package, error) {
			return NPM{}.Extract("/n/node_modules/x/package.json", []byte(`{"a":`+strings.Repeat("[", MaxManifestBytes-6)))
		}},
		{"METADATA: a 16 MiB Name over continuation lines", func() ([]Package, error) {
			return Python{}.Extract("/x.dist-info/METADATA", []byte("Name: x\n"+strings.Repeat(" y\n", 5<<20)+"Version: 1\n"))
		}},
		// The content read is bounded by MaxBytes; the buffer it is read
		// into may transiently take twice that while growing.
		{"jar: ten 256 MiB bombs", func() ([]Package, error) {
			return Java{MaxBytes: 32 << 20}.Extract("/b.jar", buildZip(t, entries...))
		}},
		{"Go: markers claiming 16 MiB each", func() ([]Package, error) {
			c := inlineBuildInfo("go1.", "")
			c = c[:buildInfoHeaderSize+5]
			c = append(c, 0xc0, 0xff, 0xff, 0x07) // 16 MiB - 64
			c = append(c, make([]byte, 4096-len(c))...)
			return GoBinary{}.ExtractStream("/x", bytes.NewReader(bytes.Repeat(c, 10_000)))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var before, after, held runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			pkgs, err := c.run()
			runtime.ReadMemStats(&after)
			runtime.GC()
			runtime.ReadMemStats(&held)
			runtime.KeepAlive(pkgs)
			var le *LimitError
			if !errors.As(err, &le) && !strings.HasPrefix(c.name, "Go:") {
				t.Errorf("error %v, want a LimitError", err)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > maxAllocated {
				t.Errorf("allocated %d MiB", n>>20)
			}
			if n := int64(held.HeapAlloc) - int64(before.HeapAlloc); n > maxRetained {
				t.Errorf("still holds %d MiB", n>>20)
			}
		})
	}
}

// newDeflated returns a best-compression deflate writer on w.
func newDeflated(t *testing.T, w *bytes.Buffer) *flateWriter {
	t.Helper()
	fw, err := flate.NewWriter(w, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	return fw
}

type flateWriter = flate.Writer

// deflatedJar returns a zip holding one entry, lib/inner.jar, whose raw
// deflate stream is raw (its declared sizes are those of the stream).
func deflatedJar(t *testing.T, raw []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateRaw(&zip.FileHeader{Name: "lib/inner.jar", Method: zip.Deflate,
		CompressedSize64: uint64(len(raw)), UncompressedSize64: 256 << 20})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(raw)
	zw.Close()
	return buf.Bytes()
}
