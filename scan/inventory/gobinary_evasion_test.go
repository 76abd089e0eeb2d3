package inventory

import (
	"bytes"
	"debug/buildinfo"
	"encoding/binary"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/portcullis-dev/portcullis/internal/scantest"
)

// xtextBinary builds scantest's program requiring golang.org/x/text v0.3.5
// for linux/amd64 (the host, in CI).
func xtextBinary(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(scantest.BuildGoProgram(t, scantest.AdvisoryPrograms()[0]))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("\x7fELF\x02\x01")) {
		t.Skip("host binaries are not 64-bit little-endian ELF")
	}
	return data
}

// TestGoBinaryReadsWhatGoReads alters a real binary's build information in
// ways Go's own reader (debug/buildinfo) still accepts, and in ways it does
// not, and checks both extraction paths against it: what Go reads must be
// found, whatever the header bytes Go ignores say.
func TestGoBinaryReadsWhatGoReads(t *testing.T) {
	orig := xtextBinary(t)
	at := bytes.Index(orig, buildInfoMagic)
	if at < 0 || bytes.Contains(orig[at+1:], buildInfoMagic) {
		t.Fatal("want exactly one build information marker")
	}
	mutations := []struct {
		name string
		edit func(b []byte)
		// foundAnyway: what Go's reader fails on, the extractor finds.
		foundAnyway bool
		// streamLimit: the stream sees an old layout it cannot follow.
		streamLimit bool
	}{
		{"unchanged", func([]byte) {}, false, false},
		{"pointer size zero", func(b []byte) { b[at+14] = 0 }, false, false},
		{"pointer size odd", func(b []byte) { b[at+14] = 0x7f }, false, false},
		{"other flag bits set", func(b []byte) { b[at+15] |= 0xfd }, false, false},
		{"big-endian flag", func(b []byte) { b[at+15] |= 0x1 }, false, false},
		{"header padding changed", func(b []byte) { copy(b[at+16:at+32], bytes.Repeat([]byte{0xaa}, 16)) }, false, false},
		{"version not go1", func(b []byte) { b[at+buildInfoHeaderSize+1] = 'x' }, false, false},
		{"section headers unreadable", func(b []byte) {
			// e_shnum: a count past the end of the file; the kernel
			// ignores section headers, debug/elf refuses the file.
			binary.LittleEndian.PutUint16(b[0x3c:], 0xffff)
		}, true, false},
		{"section header offset past the end", func(b []byte) {
			binary.LittleEndian.PutUint64(b[0x28:], uint64(len(b))+1<<20)
		}, true, false},
		{"marker broken", func(b []byte) { b[at+3] = 'g' }, false, false},
		// Read as the pre-1.18 pointer layout, whose pointers lead nowhere:
		// Go's reader finds no version; the stream cannot tell and says so.
		{"inline flag cleared", func(b []byte) { b[at+15] &^= buildInfoInline }, false, true},
	}
	for _, m := range mutations {
		t.Run(m.name, func(t *testing.T) {
			data := bytes.Clone(orig)
			m.edit(data)
			var want []string
			bi, goErr := buildinfo.Read(bytes.NewReader(data))
			if goErr == nil {
				want = pkgStrings(goPackages("/app/hello", bi))
			} else if m.foundAnyway {
				want = pkgStrings(goPackages("/app/hello", mustRead(t, orig)))
			}
			mem, err := GoBinary{}.Extract("/app/hello", data)
			if err != nil {
				t.Errorf("Extract: %v", err)
			}
			stream, err := GoBinary{}.ExtractStream("/app/hello", iotest.HalfReader(bytes.NewReader(data)))
			var le *LimitError
			if m.streamLimit != errors.As(err, &le) || err != nil && le == nil {
				t.Errorf("ExtractStream: error %v", err)
			}
			if got := pkgStrings(mem); !slices.Equal(got, want) {
				t.Errorf("Extract (Go's reader: %v):\n got %q\nwant %q", goErr, got, want)
			}
			if got := pkgStrings(stream); !slices.Equal(got, want) && (goErr == nil || m.foundAnyway) {
				t.Errorf("ExtractStream (Go's reader: %v):\n got %q\nwant %q", goErr, got, want)
			}
			if goErr == nil && m.name != "unchanged" && !strings.Contains(strings.Join(want, ""), "golang.org/x/text") {
				t.Errorf("mutation lost the modules: %q", want)
			}
		})
	}
}

func mustRead(t *testing.T, data []byte) *buildinfo.BuildInfo {
	t.Helper()
	bi, err := buildinfo.Read(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return bi
}

// TestGoBinaryDecoyFirst puts a decoy build information (a harmless module)
// before the real one: neither path may stop at the decoy.
func TestGoBinaryDecoyFirst(t *testing.T) {
	orig := xtextBinary(t)
	decoy := inlineBuildInfo("go1.99.0", "path\texample.com/decoy\nmod\texample.com/decoy\tv1.0.0\t\n")
	// The decoy in front of the ELF header: not an executable to Go's
	// reader, still one to the search.
	for name, data := range map[string][]byte{
		"decoy in the file's tail": append(bytes.Clone(orig), decoy...),
		"decoy before the data":    append(append(bytes.Clone(orig[:4096]), decoy...), orig[4096:]...),
	} {
		for path, read := range map[string]func() ([]Package, error){
			"Extract":       func() ([]Package, error) { return GoBinary{}.Extract("/x", data) },
			"ExtractStream": func() ([]Package, error) { return GoBinary{}.ExtractStream("/x", bytes.NewReader(data)) },
		} {
			pkgs, err := read()
			if err != nil {
				t.Fatalf("%s, %s: %v", name, path, err)
			}
			got := strings.Join(pkgStrings(pkgs), "\n")
			if !strings.Contains(got, "golang.org/x/text v0.3.5") || !strings.Contains(got, "example.com/decoy") {
				t.Errorf("%s, %s: got\n%s", name, path, got)
			}
		}
	}
}

// inlineBuildInfo returns a build information block in the Go 1.18 layout.
func inlineBuildInfo(vers, mod string) []byte {
	b := append([]byte{}, buildInfoMagic...)
	b = append(b, 8, buildInfoInline)
	b = append(b, make([]byte, 16)...)
	b = binary.AppendUvarint(b, uint64(len(vers)))
	b = append(b, vers...)
	framed := strings.Repeat("0", 16) + mod + strings.Repeat("1", 16)
	b = binary.AppendUvarint(b, uint64(len(framed)))
	b = append(b, framed...)
	for len(b)%buildInfoAlign != 0 {
		b = append(b, 0)
	}
	return b
}

// TestGoBinaryStreamLinear feeds the streamed search inputs built to make a
// naive search rescan: markers whose strings claim to run on far past the
// end of the buffer, densely packed markers, and partial markers. The work,
// counted in bytes searched and candidate decodes, must stay linear; memory
// is bounded by the limits, and too many waiting markers is a LimitError.
func TestGoBinaryStreamLinear(t *testing.T) {
	claim := func(vers string, modLen uint64, spacing int) []byte {
		c := append([]byte{}, buildInfoMagic...)
		c = append(c, 8, buildInfoInline)
		c = append(c, make([]byte, 16)...)
		c = append(c, byte(len(vers)))
		c = append(c, vers...)
		c = binary.AppendUvarint(c, modLen)
		return append(c, make([]byte, spacing-len(c))...)
	}
	cases := []struct {
		name    string
		data    []byte
		limited bool
	}{
		// Each claims ~16 MiB of module information: a search that went
		// back to each to wait for its bytes would move 16 MiB per marker.
		// (The file ends before any claim is met.)
		{"long claims, sparse", bytes.Repeat(claim("go1.", maxModInfo-64, 8192), 1000), false},
		// Too many at once to wait for: a LimitError, at once.
		{"long claims, dense", bytes.Repeat(claim("go1.", maxModInfo-64, 64), 100_000), true},
		{"short candidates, dense", bytes.Repeat(claim("xx1.", 3, 48), 200_000), false},
		{"partial markers", bytes.Repeat(buildInfoMagic[:13], 1_000_000), false},
		// Claims Go's reader might accept but this search does not wait
		// for: when nothing else is found, a LimitError says so.
		{"claims over the bound", bytes.Repeat(claim("go1.", maxModInfo+1, 64), 100_000), true},
		// Complete, acceptable (a Go version, no modules): too many to keep.
		{"many small build informations", bytes.Repeat(claim("go1.", 3, 48), 200_000), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := scanBuildInfo(iotest.HalfReader(bytes.NewReader(c.data)))
			if err != nil {
				t.Fatal(err)
			}
			markers := int64(bytes.Count(c.data, buildInfoMagic))
			n := int64(len(c.data))
			if s.searched > n+n/streamChunk*int64(len(buildInfoMagic))+int64(len(buildInfoMagic)) {
				t.Errorf("searched %d bytes of %d", s.searched, n)
			}
			// A waiting marker is decoded again once per chunk read while
			// it waits: at most its span over the chunk size, plus one.
			if maxDecodes := markers * (maxModInfo/streamChunk + 2); s.decodes > maxDecodes {
				t.Errorf("%d decodes for %d markers", s.decodes, markers)
			}
			var le *LimitError
			if got := errors.As(s.err(true), &le); got != c.limited {
				t.Errorf("limit error %v, want one: %v", s.err(true), c.limited)
			}
		})
	}
}
