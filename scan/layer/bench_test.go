//go:build unix

package layer_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	kgzip "github.com/klauspost/compress/gzip"

	"github.com/portcullis-dev/portcullis/scan/layer"
)

// benchLayer builds a realistic layer from this machine's files: about 120 MB
// of small text files (Python, Node.js, C headers, docs) and 80 MB of
// executables and jars, plus the dpkg database; gzip at the default level, as
// image builders write layers. It returns the blob and the tar's size.
func benchLayer(b *testing.B) ([]byte, int64) {
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	add := func(root string, budget int64, maxFile int64) int64 {
		var used int64
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || used >= budget {
				return nil
			}
			if !d.Type().IsRegular() {
				return nil
			}
			info, err := d.Info()
			if err != nil || info.Size() > maxFile {
				return nil
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return nil
			}
			hdr, _ := tar.FileInfoHeader(info, "")
			hdr.Name = p[1:]
			if tw.WriteHeader(hdr) != nil || must(tw.Write(data)) != nil {
				b.Fatal("writing tar")
			}
			used += int64(len(data))
			return nil
		})
		return used
	}
	var text, binary int64
	for _, root := range []string{"/var/lib/dpkg/status", "/usr/lib/python3", "/usr/lib/node_modules", "/usr/share/doc", "/usr/include"} {
		text += add(root, 120<<20-text, 1<<20)
	}
	for _, root := range []string{"/usr/share/java", "/usr/bin"} {
		binary += add(root, 80<<20-binary, 64<<20)
	}
	tw.Close()
	if text+binary < 50<<20 {
		b.Skipf("only %d MB of files found", (text+binary)>>20)
	}
	var blob bytes.Buffer
	zw := gzip.NewWriter(&blob)
	zw.Write(tarBuf.Bytes())
	zw.Close()
	b.Logf("layer: %d MB text, %d MB executables and jars; tar %d MB, gzip %d MB",
		text>>20, binary>>20, tarBuf.Len()>>20, blob.Len()>>20)
	return blob.Bytes(), int64(tarBuf.Len())
}

func must(_ int, err error) error { return err }

// BenchmarkAnalyzeVsGunzip runs the analyzer (default limits and extractors,
// without and with the secret search) and a plain gunzip to io.Discard
// (klauspost gzip) over the same blob, alternating, and reports the analyzer's
// throughput as a fraction of gunzip's ("analyze/gunzip": 1 means as fast as
// decompressing alone) by wall clock, and by CPU time ("cpu-analyze/gunzip":
// the analyzer decompresses on one core while it hashes and walks the tar on
// another). The gate analyses with secrets=on.
func BenchmarkAnalyzeVsGunzip(b *testing.B) {
	blob, tarSize := benchLayer(b)
	for _, secrets := range []bool{false, true} {
		name := "secrets=off"
		if secrets {
			name = "secrets=on"
		}
		b.Run(name, func(b *testing.B) {
			limits := layer.DefaultLimits()
			limits.Secrets = secrets
			benchAnalyzeVsGunzip(b, blob, tarSize, limits)
		})
	}
}

func benchAnalyzeVsGunzip(b *testing.B, blob []byte, tarSize int64, limits layer.Limits) {
	extractors := layer.DefaultExtractors(limits)
	digest := sha256Digest(blob)
	var analyzeTime, gunzipTime, analyzeCPU, gunzipCPU time.Duration
	analyzeOnce := func() {
		start, cpu := time.Now(), cpuTime()
		defer func() { analyzeCPU += cpuTime() - cpu }()
		res, err := layer.Analyze(context.Background(), bytes.NewReader(blob), digest, limits, extractors...)
		if err != nil || res.Incomplete {
			b.Fatalf("analyze: %v %q", err, res.IncompleteReason)
		}
		analyzeTime += time.Since(start)
	}
	gunzipOnce := func() {
		start, cpu := time.Now(), cpuTime()
		defer func() { gunzipCPU += cpuTime() - cpu }()
		zr, err := kgzip.NewReader(bytes.NewReader(blob))
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, zr); err != nil || n != tarSize {
			b.Fatalf("gunzip: %d bytes, %v", n, err)
		}
		gunzipTime += time.Since(start)
	}
	b.SetBytes(2 * tarSize)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i%2 == 0 {
			analyzeOnce()
			gunzipOnce()
		} else {
			gunzipOnce()
			analyzeOnce()
		}
		i++
	}
	b.ReportMetric(float64(gunzipTime)/float64(analyzeTime), "analyze/gunzip")
	b.ReportMetric(float64(gunzipCPU)/float64(analyzeCPU), "cpu-analyze/gunzip")
	b.ReportMetric(float64(tarSize)*float64(i)/analyzeTime.Seconds()/1e6, "analyze-MB/s")
	b.ReportMetric(float64(tarSize)*float64(i)/gunzipTime.Seconds()/1e6, "gunzip-MB/s")
}

// cpuTime returns the CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
