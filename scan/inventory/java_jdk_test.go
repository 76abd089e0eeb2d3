package inventory

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// jdkReads runs the JDK's zip reader (testdata/JarPackages.java) over each
// archive and returns what it finds in each: "g:a v" entries sorted and
// joined by ";", or "ERROR".
func jdkReads(t *testing.T, archives [][]byte) []string {
	t.Helper()
	java, err := exec.LookPath("java")
	if err != nil {
		t.Skip("java not installed")
	}
	src, err := filepath.Abs("testdata/JarPackages.java")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	args := []string{src}
	for i, a := range archives {
		p := filepath.Join(dir, "a"+strings.Repeat("x", i)+".bin")
		if err := os.WriteFile(p, a, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, p)
	}
	out, err := exec.Command(java, args...).Output()
	if err != nil {
		t.Fatalf("java: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(archives) {
		t.Fatalf("java printed %d lines for %d archives: %q", len(lines), len(archives), out)
	}
	return lines
}

// pom is a pom.properties entry for group:artifact at version.
func pom(group, artifact, version string) zipEntry {
	return zipEntry{
		name: "META-INF/maven/" + group + "/" + artifact + "/pom.properties",
		data: []byte("groupId=" + group + "\nartifactId=" + artifact + "\nversion=" + version + "\n"),
	}
}

// zipEnd returns the offset of a plain (non-zip64, comment-less) zip's end
// record and the offset and length of its central directory.
func zipEnd(t testing.TB, z []byte) (end, cenoff, cenlen int) {
	t.Helper()
	end = len(z) - zipEOCDLen
	if string(z[end:end+4]) != zipSigEOCD {
		t.Fatal("no end record at the end")
	}
	return end, int(binary.LittleEndian.Uint32(z[end+16:])), int(binary.LittleEndian.Uint32(z[end+12:]))
}

// prefixDecoy hides real behind a prefix carrying a decoy archive's entry and
// central directory, placed where real's recorded directory offset points.
// The JDK finds the directory cenlen bytes before the end record (real's);
// Go's archive/zip, seeing a valid directory header at the recorded offset,
// reads the decoy's instead.
func prefixDecoy(t testing.TB, real, decoy []byte) []byte {
	_, rcenoff, _ := zipEnd(t, real)
	_, dcenoff, dcenlen := zipEnd(t, decoy)
	at := max(rcenoff, dcenoff)
	prefix := make([]byte, at+dcenlen+64)
	copy(prefix, decoy[:dcenoff])
	copy(prefix[at:], decoy[dcenoff:dcenoff+dcenlen])
	// The decoy entries' local header offsets are from the start: unchanged.
	// real's recorded offset must point at the decoy directory: move it.
	out := append(prefix, real...)
	end := len(out) - zipEOCDLen
	_, _, rcenlen := zipEnd(t, real)
	// JDK: locpos = cenpos - cenoff must be where real starts (len(prefix)).
	cenpos := end - rcenlen
	binary.LittleEndian.PutUint32(out[end+16:], uint32(cenpos-len(prefix)))
	return out
}

// understated deflates inner into an archive entry whose headers declare an
// uncompressed size of 100 bytes.
func understated(t testing.TB, name string, inner []byte) []byte {
	var raw bytes.Buffer
	fw, _ := flate.NewWriter(&raw, flate.BestCompression)
	fw.Write(inner)
	fw.Close()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateRaw(&zip.FileHeader{Name: name, Method: zip.Deflate,
		CompressedSize64: uint64(raw.Len()), UncompressedSize64: 100, CRC32: crc32.ChecksumIEEE(inner)})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(raw.Bytes())
	zw.Close()
	return buf.Bytes()
}

// TestJavaReadsWhatTheJDKReads builds archives that Go's archive/zip and the
// JDK read differently, or that hide a jar from a name-based reader, and
// checks, archive by archive, that the extractor finds what the JDK finds.
func TestJavaReadsWhatTheJDKReads(t *testing.T) {
	vuln := buildZip(t, pom("org.apache.logging.log4j", "log4j-core", "2.14.1"))
	decoy := buildZip(t, pom("org.example", "harmless", "1.0"))
	// A stray end record after the real one whose comment runs past the end
	// of the file: Go's reader gives up, the JDK skips it.
	strayEnd := append(bytes.Clone(vuln), []byte("PK\x05\x06\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff")...)
	// A second end record as the archive comment: the last one wins, for
	// the JDK as for the extractor (here: an empty archive).
	commentEnd := bytes.Clone(vuln)
	binary.LittleEndian.PutUint16(commentEnd[len(commentEnd)-2:], zipEOCDLen)
	commentEnd = append(commentEnd, []byte("PK\x05\x06\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")...)
	// Trailing junk after a good archive: the JDK checks the directory.
	trailing := append(bytes.Clone(vuln), make([]byte, 100)...)

	cases := []struct {
		name string
		data []byte
	}{
		{"plain", vuln},
		{"stray end record", strayEnd},
		{"stray end record, nested", buildZip(t, zipEntry{name: "lib/a.jar", data: strayEnd, stored: true})},
		{"end record in the comment", commentEnd},
		{"trailing junk", trailing},
		{"prefix decoy directory", prefixDecoy(t, vuln, decoy)},
		{"prefix decoy directory, nested", buildZip(t, zipEntry{name: "WEB-INF/lib/x.jar", data: prefixDecoy(t, vuln, decoy)})},
		{"understated nested size", understated(t, "BOOT-INF/lib/log4j-core.jar", vuln)},
		{"nested jar without a jar name", buildZip(t, zipEntry{name: "lib/log4j.dat", data: vuln})},
		{"nested jar named .class", buildZip(t, zipEntry{name: "x/Y.class", data: vuln, stored: true})},
		{"nested .jar that is not a zip", buildZip(t, pom("g", "a", "1"), zipEntry{name: "lib/x.jar", data: []byte("nope")})},
		{"not a zip", []byte("PK\x03\x04 and nothing more")},
		{"empty archive", buildZip(t)},
		{"directory past the end record", func() []byte {
			b := bytes.Clone(vuln)
			binary.LittleEndian.PutUint32(b[len(b)-zipEOCDLen+12:], uint32(len(b)))
			return b
		}()},
	}
	archives := make([][]byte, len(cases))
	for i, c := range cases {
		archives[i] = c.data
	}
	jdk := jdkReads(t, archives)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pkgs, err := Java{}.Extract("/app/a.jar", c.data)
			var got []string
			for _, p := range pkgs {
				got = append(got, p.Name+" "+p.Version)
			}
			slices.Sort(got)
			var pe *ParseError
			switch {
			case jdk[i] == "ERROR" && !errors.As(err, &pe):
				t.Errorf("the JDK refuses it; got %q, error %v, want a ParseError", got, err)
			case jdk[i] != "ERROR" && err != nil:
				t.Errorf("the JDK reads %q; got %q and error %v", jdk[i], got, err)
			case jdk[i] != "ERROR" && strings.Join(got, ";") != jdk[i]:
				t.Errorf("got %q, the JDK reads %q", strings.Join(got, ";"), jdk[i])
			}
		})
	}
}

// without64 rewrites the end of a zip that zip.Writer gave zip64 end records
// (it does from 65,535 entries) into a plain end record whose 16-bit entry
// count has wrapped, as a hand-made archive may declare it.
func without64(t testing.TB, z []byte) []byte {
	t.Helper()
	end := len(z) - zipEOCDLen
	loc := end - zip64LocatorLen
	if string(z[loc:loc+4]) != zipSig64Locator {
		t.Fatal("no zip64 locator")
	}
	e64 := int(binary.LittleEndian.Uint64(z[loc+8:]))
	total := binary.LittleEndian.Uint64(z[e64+32:])
	cenlen := binary.LittleEndian.Uint64(z[e64+40:])
	cenoff := binary.LittleEndian.Uint64(z[e64+48:])
	out := bytes.Clone(z[:e64])
	eocd := make([]byte, zipEOCDLen)
	copy(eocd, zipSigEOCD)
	binary.LittleEndian.PutUint16(eocd[8:], uint16(total))
	binary.LittleEndian.PutUint16(eocd[10:], uint16(total))
	binary.LittleEndian.PutUint32(eocd[12:], uint32(cenlen))
	binary.LittleEndian.PutUint32(eocd[16:], uint32(cenoff))
	return append(out, eocd...)
}

// TestJavaEntryCountDoesNotWrap declares a few entries in a 16-bit count that
// wrapped: the JDK reads every header, so the bound counts every header.
func TestJavaEntryCountDoesNotWrap(t *testing.T) {
	entries := make([]zipEntry, maxZipEntries+1+65536-maxZipEntries%65536)
	for i := range entries {
		entries[i] = zipEntry{name: "f", stored: true}
	}
	entries[len(entries)-1] = pom("g", "a", "1")
	jar := without64(t, buildZip(t, entries...))
	if declared := binary.LittleEndian.Uint16(jar[len(jar)-zipEOCDLen+10:]); declared > 10 {
		t.Fatalf("declared count %d did not wrap", declared)
	}
	_, err := Java{}.Extract("/wrap.jar", jar)
	var le *LimitError
	if !errors.As(err, &le) || !strings.Contains(le.Reason, "over 200000 entries") {
		t.Errorf("error %v, want a LimitError about entries", err)
	}
	// Under the bound, every header counts, whatever the declared count.
	entries = entries[len(entries)-70000:]
	jar = without64(t, buildZip(t, entries...))
	pkgs, err := Java{}.Extract("/wrap.jar", jar)
	if err != nil || len(pkgs) != 1 {
		t.Errorf("70,000 entries declared as %d: got %v, %v", binary.LittleEndian.Uint16(jar[len(jar)-zipEOCDLen+10:]), pkgs, err)
	}
}

// TestJavaManifestAnyCase reads a manifest whose entry and attribute names
// are in lower case, as the JDK does.
func TestJavaManifestAnyCase(t *testing.T) {
	jar := buildZip(t, zipEntry{name: "meta-inf/manifest.mf", data: []byte("manifest-version: 1.0\rimplementation-title: lib\rIMPLEMENTATION-VERSION: 0.9\rImplementation-Version: 1.2\r\r")})
	pkgs, err := Java{}.Extract("/lib.jar", jar)
	if err != nil || len(pkgs) != 1 || pkgs[0].Name != "lib" || pkgs[0].Version != "1.2" {
		t.Errorf("got %+v, %v", pkgs, err)
	}
}
