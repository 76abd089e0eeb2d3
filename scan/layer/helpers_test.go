package layer_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/portcullis-dev/portcullis/scan/layer"
)

// entry is one tar entry of a layer built in memory.
type entry struct {
	name string
	typ  byte   // tar.TypeReg when zero
	body []byte // content of a regular file
	link string // target of a symlink or hard link
}

func file(name string, body []byte) entry { return entry{name: name, body: body} }
func dir(name string) entry               { return entry{name: name, typ: tar.TypeDir} }
func symlink(name, target string) entry   { return entry{name: name, typ: tar.TypeSymlink, link: target} }
func hardlink(name, target string) entry  { return entry{name: name, typ: tar.TypeLink, link: target} }

// writeTar writes entries as a tar stream to w.
func writeTar(t testing.TB, w io.Writer, entries ...entry) {
	t.Helper()
	tw := tar.NewWriter(w)
	mtime := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: 0o644, ModTime: mtime, Format: tar.FormatPAX}
		var body io.Reader
		switch {
		case e.typ == tar.TypeDir:
			h.Mode = 0o755
		case e.typ == 0 || e.typ == tar.TypeReg:
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.body))
			body = bytes.NewReader(e.body)
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if body != nil {
			if _, err := io.Copy(tw, body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

func tarLayer(t testing.TB, entries ...entry) []byte {
	var buf bytes.Buffer
	writeTar(t, &buf, entries...)
	return buf.Bytes()
}

// gzipLayer compresses with the standard library's gzip, not the one Analyze uses.
func gzipLayer(t testing.TB, entries ...entry) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	writeTar(t, zw, entries...)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// zstdBytes compresses with the zstd command when there is one, else with
// klauspost's encoder.
func zstdBytes(t testing.TB, b []byte) []byte {
	if _, err := exec.LookPath("zstd"); err == nil {
		cmd := exec.Command("zstd", "-q", "-c", "-3")
		cmd.Stdin = bytes.NewReader(b)
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	enc, _ := zstd.NewWriter(nil)
	return enc.EncodeAll(b, nil)
}

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// analyze runs Analyze with the default extractors and expects no error.
func analyze(t testing.TB, blob []byte, limits layer.Limits) layer.Result {
	t.Helper()
	res, err := layer.Analyze(context.Background(), bytes.NewReader(blob), sha256Digest(blob), limits, layer.DefaultExtractors(limits)...)
	if err != nil {
		t.Fatalf("Analyze: %v", err)
	}
	return res
}

// machineFile reads a file of this machine, skipping the test without it.
func machineFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Skipf("needs %s: %v", p, err)
	}
	return b
}

// testExecutable is this test binary: a real Go executable.
func testExecutable(t testing.TB) []byte {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return machineFile(t, exe)
}

func gzipBytes(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// zipOf returns a zip holding one stored file.
func zipOf(t testing.TB, name string, data []byte) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
