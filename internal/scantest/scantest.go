package scantest

import (
	"archive/tar"
	"bytes"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/portcullis-dev/portcullis/scan/vulndb"
	"github.com/portcullis-dev/portcullis/scan/vulndb/vulndbtest"
)

// VulnerableGoBinary builds a Go program that uses golang.org/x/text v0.3.5, which has real
// advisories (GO-2021-0113 fixed in 0.3.7, GO-2022-1059 fixed in 0.3.8). The module comes
// from the Go module proxy (or the module cache).
func VulnerableGoBinary(tb testing.TB) []byte {
	tb.Helper()
	dir := tb.TempDir()
	files := map[string]string{
		"go.mod":  "module example.com/vuln\n\ngo 1.22\n\nrequire golang.org/x/text v0.3.5\n",
		"main.go": "package main\n\nimport (\n\t\"fmt\"\n\n\t\"golang.org/x/text/language\"\n)\n\nfunc main() { fmt.Println(language.English) }\n",
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	cmd := exec.Command("go", "build", "-trimpath", "-o", "app", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod", "GOWORK=off", "GOTOOLCHAIN=local", "GOSUMDB=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("building the vulnerable program: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "app"))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// FileLayer is a layer (gzip'd tar) holding one executable file at path.
func FileLayer(tb testing.TB, path string, content []byte) v1.Layer {
	tb.Helper()
	return layerOf(tb, map[string]string{path: string(content)}, 0o755)
}

// FilesLayer is a layer (gzip'd tar) holding the files, path to content (mode 0644),
// written in path order.
func FilesLayer(tb testing.TB, files map[string]string) v1.Layer {
	tb.Helper()
	return layerOf(tb, files, 0o644)
}

// layerOf is a layer holding files, each with mode, in path order.
func layerOf(tb testing.TB, files map[string]string, mode int64) v1.Layer {
	tb.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range slices.Sorted(maps.Keys(files)) {
		if err := tw.WriteHeader(&tar.Header{Name: p, Mode: mode, Size: int64(len(files[p])), Typeflag: tar.TypeReg}); err != nil {
			tb.Fatal(err)
		}
		if _, err := io.WriteString(tw, files[p]); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// GoDB imports the real Go advisories (golang.org/x/vulndb) into a new database directory
// and returns it; see vulndbtest.GoOSVDir for when the data cannot be had.
func GoDB(tb testing.TB) string {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "vulndb")
	if _, err := vulndb.Import(dir, vulndbtest.GoOSVDir(tb)); err != nil {
		tb.Fatal(err)
	}
	return dir
}
