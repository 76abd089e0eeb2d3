package layer_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/scan/inventory"
	"github.com/portcullis-dev/portcullis/scan/layer"
	h "github.com/portcullis-dev/portcullis/scan/layer/internal/hostile"
)

// hostileCase is a hand-built layer (or image) an attacker with push rights
// could push, and what the analysis must make of it.
type hostileCase struct {
	name   string
	layers func() [][]byte // blobs, lowest first
	limits layer.Limits
	// incomplete is a reason (a substring of it) the layers or the image
	// must give; empty means the analysis must be complete.
	incomplete string
	// check looks at the outcome further (the finding).
	check func(t *testing.T, results []layer.Result, img layer.Image)
}

// maxHeap bounds the heap one hostile case may use over what the test held
// before it, whatever its input: the limits in the cases are small, so this
// is far above what they allow and far below what the attacks used.
const maxHeap = 64 << 20

var elfHead = []byte("\x7fELF\x02\x01\x01")

func dpkg(names ...string) []byte {
	var b strings.Builder
	for _, n := range names {
		b.WriteString("Package: " + n + "\nStatus: install ok installed\nVersion: 1.0\n\n")
	}
	return []byte(b.String())
}

const debianOSRelease = "ID=debian\nVERSION_ID=\"12\"\n"

func hostileCases() []hostileCase {
	one := func(b []byte) func() [][]byte { return func() [][]byte { return [][]byte{b} } }
	small := layer.Limits{MaxUncompressedBytes: 16 << 20, MaxFileBytes: 1 << 20, MaxEntries: 10_000}
	return []hostileCase{
		{
			name: "sparse file declaring 2^62 bytes",
			layers: func() [][]byte {
				return [][]byte{h.Gzip(append(h.SparsePAX("usr/local/bin/app", 1<<62, elfHead), h.End()...))}
			},
			incomplete: "sparse file /usr/local/bin/app declares 4 EiB, over 128 MiB",
		},
		{
			name: "sparse holes count against the expanded-bytes budget",
			layers: func() [][]byte {
				var tb []byte
				for i := range 32 {
					tb = append(tb, h.SparsePAX(fmt.Sprintf("bin/app%d", i), 1<<20, elfHead)...)
				}
				return [][]byte{h.Gzip(append(tb, h.End()...))}
			},
			limits:     small,
			incomplete: "uncompressed size over 16 MiB (sparse file holes included)",
		},
		{name: "gzip bomb", layers: func() [][]byte { return [][]byte{h.GzipBomb("bomb", 64)} }, limits: small, incomplete: "uncompressed size over 16 MiB"},
		{name: "zstd bomb", layers: func() [][]byte { return [][]byte{h.ZstdBomb("bomb", 64)} }, limits: small, incomplete: "uncompressed size over 16 MiB"},
		{
			name:       "zstd frame declaring a 256 MiB window",
			layers:     one(h.ZstdFrame(h.Tar(h.File("var/lib/dpkg/status", dpkg("curl"))), 28)),
			incomplete: "zstd window over 128 MiB",
		},
		{
			name:   "zstd stream starting with a skippable frame",
			layers: one(append(h.ZstdSkippable(3, []byte("not tar")), h.ZstdFrame(h.Tar(h.File("var/lib/dpkg/status", dpkg("curl"))), 20)...)),
			check: func(t *testing.T, results []layer.Result, img layer.Image) {
				if results[0].Compression != layer.Zstd || len(img.Packages) != 1 {
					t.Errorf("compression %s, packages %+v", results[0].Compression, img.Packages)
				}
			},
		},
		{
			name: "gzip of several members",
			layers: one(h.GzipMembers(
				h.Entries(h.File("var/lib/dpkg/status", dpkg("curl"))),
				h.Entries(h.File("app/node_modules/a/package.json", []byte(`{"name":"a","version":"1.0.0"}`))),
				h.End())),
			check: func(t *testing.T, _ []layer.Result, img layer.Image) {
				if len(img.Packages) != 2 {
					t.Errorf("packages %+v", img.Packages)
				}
			},
		},
		{
			name: "symlinks with 1 MiB targets",
			layers: func() [][]byte {
				var es []h.Entry
				for i := range 4 {
					es = append(es, h.Symlink(fmt.Sprintf("l%d", i), strings.Repeat("x", 1<<20-512)))
				}
				return [][]byte{h.Gzip(h.Tar(es...))}
			},
			incomplete: "link /l0 has a target of 1023.5 KiB, over 4 KiB",
		},
		{
			name: "links with 4 KiB targets filling the records",
			layers: func() [][]byte {
				var es []h.Entry
				for i := range 200 {
					es = append(es, h.Symlink(fmt.Sprintf("l%d", i), strings.Repeat("y/", 2000)))
				}
				return [][]byte{h.Gzip(h.Tar(es...))}
			},
			limits:     layer.Limits{MaxRecordBytes: 512 << 10},
			incomplete: "records kept over 512 KiB",
		},
		{
			name:       "path over 4 KiB",
			layers:     one(h.Gzip(h.Tar(h.File(strings.Repeat("d/", 2100)+"status", dpkg("curl"))))),
			incomplete: "an entry's path is 4.1 KiB, over 4 KiB",
		},
		{
			name: "entries over MaxEntries",
			layers: func() [][]byte {
				es := make([]h.Entry, 2_001)
				for i := range es {
					es[i] = h.File(fmt.Sprintf("f%d", i), nil)
				}
				return [][]byte{h.Gzip(h.Tar(es...))}
			},
			limits:     layer.Limits{MaxEntries: 2_000},
			incomplete: "over 2,000 entries",
		},
		{
			name:       "packages over MaxPackages",
			layers:     one(h.Gzip(h.Tar(h.File("var/lib/dpkg/status.d/flood", dpkgStanzas(0, 1001))))),
			limits:     layer.Limits{MaxPackages: 1000},
			incomplete: "over 1,000 packages",
		},
		{
			name:       "os-release over the bytes kept",
			layers:     one(h.Gzip(h.Tar(h.File("etc/os-release", append([]byte(debianOSRelease), bytes.Repeat([]byte("#\n"), 40<<10)...))))),
			incomplete: "file /etc/os-release is 80.0 KiB, over 64 KiB",
		},
		{
			name:       "extractor parse error",
			layers:     one(h.Gzip(h.Tar(h.File("app/node_modules/a/package.json", []byte(`{"name":"a","version":`))))),
			incomplete: "/app/node_modules/a/package.json could not be parsed: package.json: unexpected end of JSON",
			check: func(t *testing.T, results []layer.Result, _ layer.Image) {
				if len(results[0].Errors) != 1 {
					t.Errorf("errors %+v", results[0].Errors)
				}
			},
		},
		{
			name:   "content under .wh..wh. directories",
			layers: one(h.Gzip(h.Tar(h.Dir(".wh..wh.plnk/"), h.File(".wh..wh.plnk/app/node_modules/a/package.json", []byte(`{"name":"a","version":"1.0.0"}`)), h.File("usr/.wh..wh.aufs", nil)))),
			check: func(t *testing.T, _ []layer.Result, img layer.Image) {
				if len(img.Packages) != 1 || img.Packages[0].Path != "/.wh..wh.plnk/app/node_modules/a/package.json" {
					t.Errorf("packages %+v", img.Packages)
				}
			},
		},
		{
			name:       "whiteout naming no file",
			layers:     one(h.Gzip(h.Tar(h.File("var/lib/dpkg/.wh.", nil)))),
			incomplete: "whiteout /var/lib/dpkg/.wh. names no file",
		},
		{
			name: "hard link to a database file of a lower layer",
			layers: func() [][]byte {
				return [][]byte{
					h.Gzip(h.Tar(h.File("etc/os-release", []byte(debianOSRelease)), h.File("opt/db/status", dpkg("curl")))),
					h.Gzip(h.Tar(h.Hardlink("var/lib/dpkg/status", "opt/db/status"))),
				}
			},
			check: wantPackages("/var/lib/dpkg/status curl"),
		},
		{
			name: "hard link to a file of a lower layer not read",
			layers: func() [][]byte {
				return [][]byte{
					h.Gzip(h.Tar(h.File("etc/os-release", []byte(debianOSRelease)), h.File("opt/db/pkgs", dpkg("curl")))),
					h.Gzip(h.Tar(h.Hardlink("var/lib/dpkg/status", "opt/db/pkgs"))),
				}
			},
			incomplete: "hard link /var/lib/dpkg/status (layer 1) to /opt/db/pkgs of layer 0, which was not read",
		},
		{
			name: "symlinked dpkg directory",
			layers: func() [][]byte {
				return [][]byte{
					h.Gzip(h.Tar(h.File("etc/os-release", []byte(debianOSRelease)), h.File("var/lib/dpkg/status", dpkg("decoy")))),
					h.Gzip(h.Tar(h.File("opt/dpkg/status", dpkg("curl", "openssl")), h.Symlink("var/lib/dpkg", "../../opt/dpkg"))),
				}
			},
			check: wantPackages("/var/lib/dpkg/status curl", "/var/lib/dpkg/status openssl"),
		},
		{
			name: "symlinked dpkg status to a file not read",
			layers: func() [][]byte {
				return [][]byte{h.Gzip(h.Tar(
					h.File("etc/os-release", []byte(debianOSRelease)),
					h.File("opt/pkgs.db", dpkg("curl")),
					h.Symlink("var/lib/dpkg/status", "/opt/pkgs.db")))}
			},
			incomplete: "/var/lib/dpkg/status leads through symbolic links to /opt/pkgs.db, which was not read as a package database",
		},
		{
			name: "symlinked dpkg directory holding status.d",
			layers: one(h.Gzip(h.Tar(
				h.File("etc/os-release", []byte(debianOSRelease)),
				h.File("opt/dpkg/status.d/curl", []byte("Package: curl\nVersion: 1.0\n")),
				h.Symlink("var/lib/dpkg", "/opt/dpkg")))),
			check: wantPackages("/var/lib/dpkg/status.d/curl curl"),
		},
		{
			name: "symlinked status.d to a directory of another name",
			layers: one(h.Gzip(h.Tar(
				h.File("etc/os-release", []byte(debianOSRelease)),
				h.File("opt/pkgs/curl", []byte("Package: curl\nVersion: 1.0\n")),
				h.Symlink("var/lib/dpkg/status.d", "/opt/pkgs")))),
			incomplete: "/var/lib/dpkg/status.d leads through symbolic links to /opt/pkgs, which was not read",
		},
		{
			name: "symlink loop at the database path",
			layers: one(h.Gzip(h.Tar(
				h.File("etc/os-release", []byte(debianOSRelease)),
				h.Symlink("var/lib/dpkg/status", "/a"), h.Symlink("a", "/b"), h.Symlink("b", "/a")))),
			incomplete: "/var/lib/dpkg/status: too many levels of symbolic links, or a path too long",
		},
		{
			name: "chained symlinks growing the path",
			layers: func() [][]byte {
				es := []h.Entry{h.File("etc/os-release", []byte(debianOSRelease)), h.Symlink("var/lib/dpkg/status", "/c/0")}
				for i := range 64 {
					es = append(es, h.Symlink(fmt.Sprintf("c/%d", i), fmt.Sprintf("/c/%d/%s", i+1, strings.Repeat("d/", 1900))))
				}
				return [][]byte{h.Gzip(h.Tar(es...))}
			},
			incomplete: "/var/lib/dpkg/status: too many levels of symbolic links, or a path too long",
		},
		{
			name: "os-release linked to a file of another name",
			layers: one(h.Gzip(h.Tar(
				h.File("opt/osr", []byte(debianOSRelease)),
				h.Symlink("etc/os-release", "/opt/osr"),
				h.File("var/lib/dpkg/status", dpkg("curl"))))),
			check: func(t *testing.T, _ []layer.Result, img layer.Image) {
				if !img.DistroUnknown {
					t.Errorf("distro %+v known", img.Distro)
				}
			},
		},
		{
			name: "a Go executable named like a database",
			layers: func() [][]byte {
				exe := goExecutable()
				return [][]byte{h.Tar(h.File("etc/os-release", []byte(debianOSRelease)), h.File("usr/bin/status", exe))}
			},
			check: func(t *testing.T, _ []layer.Result, img layer.Image) {
				if len(img.Packages) == 0 || img.Packages[0].Path != "/usr/bin/status" || img.Packages[0].Ecosystem != "Go" {
					t.Errorf("packages %+v", img.Packages)
				}
			},
		},
		{
			name: "removed os-release",
			layers: func() [][]byte {
				return [][]byte{
					h.Gzip(h.Tar(h.File("usr/lib/os-release", []byte(debianOSRelease)), h.Symlink("etc/os-release", "../usr/lib/os-release"), h.File("var/lib/dpkg/status", dpkg("curl")))),
					h.Gzip(h.Tar(h.File("etc/.wh.os-release", nil), h.File("usr/lib/.wh.os-release", nil))),
				}
			},
			check: func(t *testing.T, _ []layer.Result, img layer.Image) {
				if !img.DistroUnknown || img.Distro.ID != "" || len(img.Packages) != 1 {
					t.Errorf("distro unknown %v %+v, packages %+v", img.DistroUnknown, img.Distro, img.Packages)
				}
			},
		},
		{
			name: "deep paths",
			layers: func() [][]byte {
				deep := strings.Repeat("d/", 2000)
				var es []h.Entry
				for i := range 100 {
					es = append(es, h.File(fmt.Sprintf("%s%d/node_modules/a/package.json", deep, i), []byte(`{"name":"a","version":"1.0.0"}`)))
				}
				return [][]byte{h.Gzip(h.Tar(es...)), h.Gzip(h.Tar(h.File(deep+"7/.wh.node_modules", nil)))}
			},
			check: func(t *testing.T, _ []layer.Result, img layer.Image) {
				if len(img.Packages) != 99 {
					t.Errorf("%d packages", len(img.Packages))
				}
			},
		},
		{
			// The only case about time: a deadline already passed.
			name:       "deadline",
			layers:     func() [][]byte { return [][]byte{h.ZstdBomb("bomb", 4)} },
			limits:     layer.Limits{Timeout: time.Nanosecond},
			incomplete: "not finished within 1ns",
		},
	}
}

// goExecutable is this test binary: a real Go executable.
func goExecutable() []byte {
	exe, err := os.Executable()
	if err != nil {
		panic(err)
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		panic(err)
	}
	return b
}

func wantPackages(want ...string) func(*testing.T, []layer.Result, layer.Image) {
	return func(t *testing.T, _ []layer.Result, img layer.Image) {
		t.Helper()
		var got []string
		for _, p := range img.Packages {
			got = append(got, p.Path+" "+p.Name)
		}
		if !slices.Equal(got, want) || img.Incomplete {
			t.Errorf("got %q (incomplete %q), want %q", got, img.IncompleteReasons, want)
		}
	}
}

// TestHostileLayers runs the hostile-layer corpus: each case must return,
// with the outcome it expects, within maxHeap of heap.
func TestHostileLayers(t *testing.T) {
	for _, c := range hostileCases() {
		t.Run(c.name, func(t *testing.T) {
			blobs := c.layers()
			var results []layer.Result
			var img layer.Image
			peak := peakHeap(func() {
				for _, b := range blobs {
					res, err := layer.Analyze(context.Background(), bytes.NewReader(b), sha256Digest(b), c.limits, layer.DefaultExtractors(c.limits)...)
					if err != nil {
						t.Fatalf("Analyze: %v", err)
					}
					if res.DiffID == "" {
						res.DiffID = fmt.Sprintf("unknown-%d", len(results)) // as the caller sets it from the config
					}
					results = append(results, res)
				}
				img = layer.Squash(results)
			})
			if peak > maxHeap {
				t.Errorf("peak heap %d MiB, over %d MiB", peak>>20, maxHeap>>20)
			}
			reasons := strings.Join(img.IncompleteReasons, "\n")
			switch {
			case c.incomplete == "" && img.Incomplete:
				t.Errorf("incomplete: %s", reasons)
			case c.incomplete != "" && !strings.Contains(reasons, c.incomplete):
				t.Errorf("incomplete %v %q, want %q", img.Incomplete, reasons, c.incomplete)
			}
			if c.check != nil {
				c.check(t, results, img)
			}
		})
	}
}

// peakHeap runs f and returns the most heap (live objects) it held over
// what was held before, sampled as it runs.
func peakHeap(f func()) uint64 {
	// Garbage counts too: keep it to a quarter of what is live, so the peak measures
	// what the analysis holds rather than when the collector last ran.
	defer debug.SetGCPercent(debug.SetGCPercent(25))
	runtime.GC()
	base := heapObjects()
	var peak atomic.Uint64
	record := func() {
		if n := heapObjects(); n > base && n-base > peak.Load() {
			peak.Store(n - base)
		}
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				record()
			}
		}
	}()
	f()
	close(stop)
	<-done
	record()
	return peak.Load()
}

func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestHostileDefaultLimitsHeap pushes the limits on what an analysis keeps,
// at their default values, and checks the heap stays under the stated bound
// of 256 MiB per analysis (about 120 MiB is used, garbage included). Under
// the race detector (a minute and more) TestHostileLayers checks the same
// classes at smaller limits.
func TestHostileDefaultLimitsHeap(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("reads about 100 MB of tar")
	}
	limits := layer.DefaultLimits()
	var links []h.Entry
	target := strings.Repeat("t/", limits.MaxPathBytes/2-1)
	for i := range int(limits.MaxRecordBytes)/len(target) + 1 {
		links = append(links, h.Symlink(fmt.Sprintf("l/%d", i), target))
	}
	// dpkg keeps one package per name, and a file holds at most
	// inventory.MaxPackagesPerFile: distinct names over several files.
	var files []h.Entry
	for n := 0; n <= limits.MaxPackages; n += inventory.MaxPackagesPerFile / 2 {
		files = append(files, h.File(fmt.Sprintf("var/lib/dpkg/status.d/flood%d", n), dpkgStanzas(n, min(inventory.MaxPackagesPerFile/2, limits.MaxPackages+1-n))))
	}
	for _, c := range []struct {
		name, reason string
		blob         []byte
	}{
		{"records", "records kept over 64 MiB", h.Tar(links...)},
		{"packages", "over 200,000 packages", h.Tar(files...)},
	} {
		t.Run(c.name, func(t *testing.T) {
			var res layer.Result
			peak := peakHeap(func() { res = analyze(t, c.blob, limits) })
			if !res.Incomplete || res.IncompleteReason != c.reason {
				t.Errorf("incomplete %v %q, want %q", res.Incomplete, res.IncompleteReason, c.reason)
			}
			if peak > 256<<20 {
				t.Errorf("peak heap %d MiB, over 256 MiB", peak>>20)
			}
			t.Logf("peak heap %d MiB", peak>>20)
		})
	}
}

// dpkgStanzas is n installed dpkg packages with distinct names, from p<first>.
func dpkgStanzas(first, n int) []byte {
	var b bytes.Buffer
	for i := first; i < first+n; i++ {
		fmt.Fprintf(&b, "Package: p%d\nStatus: install ok installed\nVersion: 1\n\n", i)
	}
	return b.Bytes()
}
