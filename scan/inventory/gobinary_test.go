package inventory

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// helloFiles is a program that needs golang.org/x/text (required at v0.44.0,
// replaced by v0.42.0, both in the module cache) and a local module replaced
// by a directory.
var helloFiles = map[string]string{
	"go.mod": `module example.com/hello

go 1.24

require (
	example.com/dep v0.0.0
	golang.org/x/text v0.44.0
)

replace golang.org/x/text => golang.org/x/text v0.42.0

replace example.com/dep => ./dep
`,
	"main.go": `package main

import (
	"fmt"

	"example.com/dep"
	"golang.org/x/text/language"
)

func main() { fmt.Println(language.English, dep.Name) }
`,
	"dep/go.mod": "module example.com/dep\n\ngo 1.24\n",
	"dep/dep.go": "package dep\n\n// Name is a name.\nconst Name = \"dep\"\n",
}

// buildHello builds helloFiles for goos/goarch with the go command, offline.
func buildHello(t *testing.T, goos, goarch string) []byte {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	dir := t.TempDir()
	for name, content := range helloFiles {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(goCmd, "build", "-trimpath", "-o", "hello.bin", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0",
		"GOFLAGS=-mod=mod", "GOPROXY=off", "GOSUMDB=off", "GOWORK=off", "GOTOOLCHAIN=local")
	if out, err := cmd.CombinedOutput(); err != nil {
		if bytes.Contains(out, []byte("module lookup disabled")) {
			t.Skipf("golang.org/x/text v0.42.0/v0.44.0 not in the module cache:\n%s", out)
		}
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(dir, "hello.bin"))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func goVersion(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(strings.TrimSpace(string(out)), "go")
}

func pkgStrings(pkgs []Package) []string {
	var s []string
	for _, p := range pkgs {
		line := p.Ecosystem + " " + p.Name + " " + p.Version + " " + p.Path
		if p.GOOS != "" || p.GOARCH != "" {
			line += " " + p.GOOS + "/" + p.GOARCH
		}
		s = append(s, line)
	}
	slices.Sort(s)
	return s
}

// TestGoBinaryFormats builds the same program as ELF, PE and Mach-O and reads
// its modules, and the platform it was built for, back, from memory and as a
// stream.
func TestGoBinaryFormats(t *testing.T) {
	stdlib := goVersion(t)
	const p = "/app/hello"
	for _, target := range [][2]string{{"linux", "amd64"}, {"windows", "amd64"}, {"darwin", "arm64"}, {"linux", "arm64"}} {
		t.Run(target[0]+"_"+target[1], func(t *testing.T) {
			t.Parallel()
			goos, goarch := target[0], target[1]
			want := pkgStrings([]Package{
				{Ecosystem: "Go", Name: "stdlib", Version: stdlib, Path: p, GOOS: goos, GOARCH: goarch},
				{Ecosystem: "Go", Name: "example.com/hello", Version: "(devel)", Path: p, GOOS: goos, GOARCH: goarch},
				{Ecosystem: "Go", Name: "example.com/dep", Version: "(devel)", Path: p, GOOS: goos, GOARCH: goarch},
				{Ecosystem: "Go", Name: "golang.org/x/text", Version: "v0.42.0", Path: p, GOOS: goos, GOARCH: goarch},
			})
			data := buildHello(t, target[0], target[1])
			g := GoBinary{}
			if !g.Wants(p) || !g.WantsContent(p, int64(len(data)), data[:SniffLen]) {
				t.Fatalf("%s binary not wanted", target[0])
			}
			pkgs, err := g.Extract(p, data)
			if err != nil {
				t.Fatal(err)
			}
			if got := pkgStrings(pkgs); !slices.Equal(got, want) {
				t.Errorf("Extract:\n got %q\nwant %q", got, want)
			}
			// Read in odd-sized pieces so the build information straddles refills.
			pkgs, err = g.ExtractStream(p, iotest.HalfReader(bytes.NewReader(data)))
			if err != nil {
				t.Fatal(err)
			}
			if got := pkgStrings(pkgs); !slices.Equal(got, want) {
				t.Errorf("ExtractStream:\n got %q\nwant %q", got, want)
			}
		})
	}
}

// TestGoBinaryTestExecutable reads this test binary and compares with the
// build information the running program reports about itself.
func TestGoBinaryTestExecutable(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		t.Fatal("no build info")
	}
	// The test binary is built for the platform it runs on.
	platform := runtime.GOOS + "/" + runtime.GOARCH
	want := []string{"Go stdlib " + goToolchainVersion(bi.GoVersion) + " /x " + platform}
	if bi.Main.Path != "" {
		want = append(want, "Go "+bi.Main.Path+" "+bi.Main.Version+" /x "+platform)
	}
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		want = append(want, "Go "+d.Path+" "+d.Version+" /x "+platform)
	}
	slices.Sort(want)
	pkgs, err := GoBinary{}.Extract("/x", data)
	if err != nil {
		t.Fatal(err)
	}
	if got := pkgStrings(pkgs); !slices.Equal(got, want) {
		t.Errorf("Extract:\n got %q\nwant %q", got, want)
	}
	pkgs, err = GoBinary{}.ExtractStream("/x", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if got := pkgStrings(pkgs); !slices.Equal(got, want) {
		t.Errorf("ExtractStream:\n got %q\nwant %q", got, want)
	}
}

// TestGoBinaryNotGo checks that executables of other languages and other files
// yield nothing and no error.
func TestGoBinaryNotGo(t *testing.T) {
	for _, p := range []string{"/bin/ls", "/usr/bin/python3", "/bin/sh"} {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if !isExecutable(data) {
			t.Errorf("%s: not recognised as an executable", p)
		}
		if pkgs, err := (GoBinary{}).Extract(p, data); len(pkgs) != 0 || err != nil {
			t.Errorf("%s: Extract = %v, %v", p, pkgs, err)
		}
		if pkgs, err := (GoBinary{}).ExtractStream(p, bytes.NewReader(data)); len(pkgs) != 0 || err != nil {
			t.Errorf("%s: ExtractStream = %v, %v", p, pkgs, err)
		}
	}
	for name, head := range map[string][]byte{
		"script":     []byte("#!/bin/sh\necho hi\n"),
		"java class": {0xca, 0xfe, 0xba, 0xbe, 0x00, 0x00, 0x00, 0x41},
		"empty":      nil,
		"text":       []byte("MZ is also how this line starts? no: M"),
	} {
		if name != "text" && isExecutable(head) {
			t.Errorf("%s recognised as an executable", name)
		}
	}
	if !isExecutable([]byte{0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 2}) {
		t.Error("universal Mach-O not recognised")
	}
}

// TestScanBuildInfoReadError checks that a stream's read error is returned.
func TestScanBuildInfoReadError(t *testing.T) {
	r := io.MultiReader(bytes.NewReader(make([]byte, 3<<20)), iotest.ErrReader(io.ErrClosedPipe))
	if _, err := (GoBinary{}).ExtractStream("/x", r); err != io.ErrClosedPipe {
		t.Errorf("got %v, want %v", err, io.ErrClosedPipe)
	}
}

// FuzzGoBinaryStream checks that the streamed search, reading in odd-sized
// pieces, finds exactly what the search over the same bytes in memory finds,
// and only well-formed packages.
func FuzzGoBinaryStream(f *testing.F) {
	f.Add([]byte("\xff Go buildinf:\x08\x02" + strings.Repeat("\x00", 16) + "\x08go1.22.0\x00"))
	f.Add(append(append(make([]byte, 16), buildInfoMagic...), "\x08\x02"+strings.Repeat("\x00", 16)+"\x09go1.21.13\x41"+
		"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6path\tx\nmod\tx\t(devel)\t\n\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2"...))
	f.Add(inlineBuildInfo("go1.22.1", "path\tx\nmod\tx\tv1.0.0\t\ndep\ty\tv0.1.0\t\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := GoBinary{}.ExtractStream("/x", iotest.HalfReader(bytes.NewReader(data)))
		checkExtractResult(t, pkgs, err)
		for _, p := range pkgs {
			if p.Ecosystem != EcosystemGo || p.Name == "" {
				t.Fatalf("bad package %+v", p)
			}
		}
		s, err := scanBuildInfo(iotest.OneByteReader(bytes.NewReader(data)))
		if err != nil {
			t.Fatal(err)
		}
		m := scanBuildInfoBytes(data)
		if s.limit == nil && m.limit == nil && !slices.Equal(pkgStrings(s.packages("/x", nil)), pkgStrings(m.packages("/x", nil))) {
			t.Fatalf("stream found %q, memory %q", pkgStrings(s.packages("/x", nil)), pkgStrings(m.packages("/x", nil)))
		}
	})
}

// FuzzGoBinary checks the in-memory extractor on mutated executables.
func FuzzGoBinary(f *testing.F) {
	if exe, err := os.Executable(); err == nil {
		if data, err := os.ReadFile(exe); err == nil {
			f.Add(data[:min(len(data), 64<<10)])
		}
	}
	f.Add(append([]byte("\x7fELF\x02\x01\x01"), inlineBuildInfo("go1.22.1", "path\tx\nmod\tx\tv1.0.0\t\n")...))
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := GoBinary{}.Extract("/x", data)
		checkExtractResult(t, pkgs, err)
		for _, p := range pkgs {
			if p.Ecosystem != EcosystemGo || p.Name == "" {
				t.Fatalf("bad package %+v", p)
			}
		}
	})
}
