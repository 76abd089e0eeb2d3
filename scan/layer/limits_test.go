package layer_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/portcullis-dev/portcullis/scan/layer"
)

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// bomb is a layer holding one file of mib MiB of zeros, as a series of
// compressed members (gzip) or frames (zstd), one per MiB, so that it is
// built in no time: a 1 GiB bomb is about 1 MiB of gzip or 40 KiB of zstd.
func bomb(t *testing.T, name string, mib int, compress func(testing.TB, []byte) []byte) []byte {
	var hdr bytes.Buffer
	tw := tar.NewWriter(&hdr)
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(mib) << 20}); err != nil {
		t.Fatal(err)
	}
	blob := compress(t, hdr.Bytes())
	mebibyte := compress(t, make([]byte, 1<<20))
	for range mib {
		blob = append(blob, mebibyte...)
	}
	return append(blob, compress(t, make([]byte, 1024))...) // the tar's end
}

func TestAnalyzeGzipBomb(t *testing.T) {
	blob := bomb(t, "bomb", 1024, gzipBytes)
	limits := layer.Limits{MaxUncompressedBytes: 64 << 20}
	var res layer.Result
	n := allocated(func() { res = analyze(t, blob, limits) })
	if !res.Incomplete || res.IncompleteReason != "uncompressed size over 64 MiB" {
		t.Fatalf("incomplete %v %q", res.Incomplete, res.IncompleteReason)
	}
	// The rest of the blob was read to check its digest; the diffID is unknown.
	if res.Digest != sha256Digest(blob) || res.DiffID != "" || res.UncompressedSize != 64<<20 {
		t.Errorf("digest %q diffID %q uncompressed %d", res.Digest, res.DiffID, res.UncompressedSize)
	}
	if n > 16<<20 {
		t.Errorf("allocated %d MiB for a 64 MiB limit", n>>20)
	}
	// A wrong digest is still an error.
	_, err := layer.Analyze(context.Background(), bytes.NewReader(blob), sha256Digest(nil), limits)
	if !errors.Is(err, layer.ErrDigestMismatch) {
		t.Errorf("got %v, want ErrDigestMismatch", err)
	}
}

// TestAnalyzeWantedFileOverLimit checks that a wanted file too large to read
// is skipped without reading it into memory, and makes the layer incomplete.
func TestAnalyzeWantedFileOverLimit(t *testing.T) {
	blob := bomb(t, "var/lib/dpkg/status", 64, gzipBytes)
	var res layer.Result
	n := allocated(func() { res = analyze(t, blob, layer.Limits{MaxFileBytes: 1 << 20}) })
	if !res.Incomplete || res.IncompleteReason != "file /var/lib/dpkg/status is 64 MiB, over 1 MiB" {
		t.Fatalf("incomplete %v %q", res.Incomplete, res.IncompleteReason)
	}
	if res.DiffID == "" || res.UncompressedSize <= 64<<20 {
		t.Errorf("the rest of the layer was not read: diffID %q, %d bytes", res.DiffID, res.UncompressedSize)
	}
	if n > 16<<20 {
		t.Errorf("allocated %d MiB", n>>20)
	}
}

// TestAnalyzeLargeGoBinaryStreamed checks that a Go binary over MaxFileBytes is
// read as a stream rather than skipped.
func TestAnalyzeLargeGoBinaryStreamed(t *testing.T) {
	exe := testExecutable(t)
	limits := layer.Limits{MaxFileBytes: int64(len(exe)) / 4}
	small := analyze(t, tarLayer(t, file("app", exe)), layer.DefaultLimits())
	large := analyze(t, tarLayer(t, file("app", exe)), limits)
	if large.Incomplete || len(large.Packages()) == 0 || len(large.Packages()) != len(small.Packages()) {
		t.Errorf("streamed %d packages (incomplete %q), read whole %d", len(large.Packages()), large.IncompleteReason, len(small.Packages()))
	}
}

func TestAnalyzeZstdBomb(t *testing.T) {
	blob := bomb(t, "bomb", 1024, zstdBytes)
	res := analyze(t, blob, layer.Limits{MaxUncompressedBytes: 64 << 20})
	if !res.Incomplete || res.IncompleteReason != "uncompressed size over 64 MiB" || res.Digest != sha256Digest(blob) {
		t.Errorf("got incomplete %v %q, digest %q", res.Incomplete, res.IncompleteReason, res.Digest)
	}
}

// TestAnalyzeZstdWindow checks that a zstd frame asking for a window over
// MaxZstdWindow is not decoded, and the layer is incomplete.
func TestAnalyzeZstdWindow(t *testing.T) {
	random := make([]byte, 12<<20)
	for i := range random {
		random[i] = byte(i*7919>>3) ^ byte(i>>13)
	}
	var buf bytes.Buffer
	zw, _ := zstd.NewWriter(&buf, zstd.WithWindowSize(8<<20))
	writeTar(t, zw, file("data", random))
	zw.Close()
	blob := buf.Bytes()
	res := analyze(t, blob, layer.Limits{MaxZstdWindow: 1 << 20})
	if !res.Incomplete || res.IncompleteReason != "zstd window over 1 MiB" || res.Digest != sha256Digest(blob) {
		t.Errorf("got incomplete %v %q, digest %q", res.Incomplete, res.IncompleteReason, res.Digest)
	}
	if res := analyze(t, blob, layer.Limits{MaxZstdWindow: 8 << 20}); res.Incomplete {
		t.Errorf("8 MiB window refused with an 8 MiB limit: %q", res.IncompleteReason)
	}
	// A single-segment frame's window is its content size.
	single := zstdEncodeAll(t, tarLayer(t, file("data", random)))
	if res := analyze(t, single, layer.Limits{MaxZstdWindow: 1 << 20}); !res.Incomplete {
		t.Error("single-segment frame of 12 MiB accepted with a 1 MiB window limit")
	}
}

func zstdEncodeAll(t *testing.T, b []byte) []byte {
	enc, err := zstd.NewWriter(nil, zstd.WithSingleSegment(true))
	if err != nil {
		t.Fatal(err)
	}
	return enc.EncodeAll(b, nil)
}

func TestAnalyzeTooManyEntries(t *testing.T) {
	entries := make([]entry, 1001)
	for i := range entries {
		entries[i] = file("f/"+strings.Repeat("x", i%50)+string(rune('a'+i%26))+"-"+time.Duration(i).String(), nil)
	}
	res := analyze(t, gzipLayer(t, entries...), layer.Limits{MaxEntries: 1000})
	if !res.Incomplete || res.IncompleteReason != "over 1,000 entries" || res.Entries != 1000 {
		t.Errorf("got incomplete %v %q after %d entries", res.Incomplete, res.IncompleteReason, res.Entries)
	}
	if res := analyze(t, gzipLayer(t, entries[:1000]...), layer.Limits{MaxEntries: 1000}); res.Incomplete {
		t.Errorf("1,000 entries refused: %q", res.IncompleteReason)
	}
}

// TestAnalyzeNestedArchiveDepth checks that Limits.MaxDepth reaches the jar extractor.
func TestAnalyzeNestedArchiveDepth(t *testing.T) {
	jar := machineFile(t, "/usr/share/java/commons-io-2.11.0.jar")
	for range 3 {
		jar = zipOf(t, "lib/inner.jar", jar)
	}
	res := analyze(t, tarLayer(t, file("app.jar", jar)), layer.Limits{MaxDepth: 2})
	if !res.Incomplete || res.IncompleteReason != "nested archive depth over 2 in /app.jar!/lib/inner.jar!/lib/inner.jar" {
		t.Errorf("got incomplete %v %q", res.Incomplete, res.IncompleteReason)
	}
	if res := analyze(t, tarLayer(t, file("app.jar", jar)), layer.Limits{MaxDepth: 3}); res.Incomplete || len(res.Packages()) != 1 {
		t.Errorf("depth 3: incomplete %q, %d packages", res.IncompleteReason, len(res.Packages()))
	}
}

// TestAnalyzeHardlinkToUnreadFile is the pnpm store layout: a package.json
// first stored under a content hash, then hard-linked into node_modules.
func TestAnalyzeHardlinkToUnreadFile(t *testing.T) {
	res := analyze(t, tarLayer(t,
		file("root/.pnpm-store/v3/files/ab/cdef", []byte(`{"name":"left-pad","version":"1.3.0"}`)),
		hardlink("app/node_modules/left-pad/package.json", "root/.pnpm-store/v3/files/ab/cdef"),
	), layer.DefaultLimits())
	if !res.Incomplete || !strings.HasPrefix(res.IncompleteReason, "hard link /app/node_modules/left-pad/package.json to /root/.pnpm-store") {
		t.Errorf("got incomplete %v %q", res.Incomplete, res.IncompleteReason)
	}
}

// TestAnalyzeTimeout runs in a synctest bubble, whose clock only moves when
// every goroutine waits: a reader that trickles one byte a second outlasts a
// one-minute timeout at the same point every time.
func TestAnalyzeTimeout(t *testing.T) {
	blob := gzipLayer(t, file("var/lib/dpkg/status", bytes.Repeat([]byte("Package: x\n"), 1000)))
	synctest.Test(t, func(t *testing.T) {
		res, err := layer.Analyze(context.Background(), &trickle{r: bytes.NewReader(blob)}, sha256Digest(blob),
			layer.Limits{Timeout: time.Minute}, layer.DefaultExtractors(layer.DefaultLimits())...)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Incomplete || res.IncompleteReason != "not finished within 1m0s" || res.Digest != "" {
			t.Errorf("got incomplete %v %q, digest %q", res.Incomplete, res.IncompleteReason, res.Digest)
		}
	})
}

// trickle returns one byte a second.
type trickle struct{ r io.Reader }

func (t *trickle) Read(p []byte) (int, error) {
	time.Sleep(time.Second)
	return t.r.Read(p[:min(len(p), 1)])
}
