package mirror

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/portcullis-dev/portcullis/internal/regtest"
)

// BenchmarkWrite measures Write (a collect without the command around it) against the
// plain copy crane pull --format=oci does: every blob of the same image fetched from the
// same in-process registry at once, its digest checked, written to its own file, no
// fsync. Content: one image of five incompressible layers with a gzip media type (stored,
// as real layers are), $PORTCULLIS_WBENCH_MIB MiB in total (default 256). Every round runs
// both, in alternating order; "collect/copy" is the median of the per-round throughput
// ratios (1 means as fast as the copy).
func BenchmarkWrite(b *testing.B) {
	mib := int64(256)
	if s := os.Getenv("PORTCULLIS_WBENCH_MIB"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 8 {
			b.Fatalf("PORTCULLIS_WBENCH_MIB=%q: want a size in MiB, at least 8", s)
		}
		mib = n
	}
	host := strings.TrimPrefix(regtest.Registry(b), "http://")
	rng := rand.NewChaCha8([32]byte{7})
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	fracs := []float64{0.35, 0.25, 0.2, 0.15, 0.05}
	for _, f := range fracs {
		data := make([]byte, int64(f*float64(mib<<20)))
		_, _ = rng.Read(data)
		var err error
		img, err = mutate.AppendLayers(img, static.NewLayer(data, types.OCILayer))
		if err != nil {
			b.Fatal(err)
		}
	}
	ref, err := name.ParseReference(host+"/bench/write:1.0.0", name.Insecure)
	if err != nil {
		b.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		b.Fatal(err)
	}
	f, err := ParseFile(strings.NewReader("version: 1\nsources:\n  - registry: " + host + "\n    repositories:\n      - {name: bench/write, tags: [\"1.0.0\"], referrers: false}\n"))
	if err != nil {
		b.Fatal(err)
	}
	plan, err := Resolve(context.Background(), f)
	if err != nil {
		b.Fatal(err)
	}
	var blobs []v1.Hash
	var total int64
	m, _ := img.Manifest()
	for _, l := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		blobs = append(blobs, l.Digest)
		total += l.Size
	}
	key := newSigningKey(b)
	dir := b.TempDir()

	collect := func(out string) error {
		_, err := Write(context.Background(), plan, out, key.signer, WriteOptions{})
		return err
	}
	copyAll := func(out string) error {
		if err := os.MkdirAll(out, 0o755); err != nil {
			return err
		}
		var wg sync.WaitGroup
		errs := make([]error, len(blobs))
		for i, d := range blobs {
			wg.Go(func() { errs[i] = copyBlob(ref.Context().Digest(d.String()).String(), filepath.Join(out, d.Hex)) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		return nil
	}
	tools := []struct {
		name string
		run  func(string) error
	}{{"collect", collect}, {"copy", copyAll}}
	walls := map[string]time.Duration{}
	var ratios []float64
	b.ResetTimer()
	for round := 0; round < b.N; round++ {
		rate := map[string]float64{}
		for k := range tools {
			tool := tools[(round+k)%len(tools)]
			out := filepath.Join(dir, fmt.Sprintf("%s-%d", tool.name, round))
			start := time.Now()
			if err := tool.run(out); err != nil {
				b.Fatalf("%s: %v", tool.name, err)
			}
			wall := time.Since(start)
			walls[tool.name] += wall
			rate[tool.name] = float64(total) / wall.Seconds()
			b.StopTimer()
			if err := os.RemoveAll(out); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		ratios = append(ratios, rate["collect"]/rate["copy"])
	}
	b.StopTimer()
	for name, wall := range walls {
		b.ReportMetric(float64(total)*float64(b.N)/1e6/wall.Seconds(), name+"-MB/s")
	}
	slices.Sort(ratios)
	b.ReportMetric(ratios[len(ratios)/2], "collect/copy")
	b.ReportMetric(0, "ns/op")
}

// copyBlob fetches one blob, checking its digest as go-containerregistry does, into path.
func copyBlob(digestRef, path string) error {
	r, err := name.NewDigest(digestRef, name.Insecure)
	if err != nil {
		return err
	}
	l, err := remote.Layer(r)
	if err != nil {
		return err
	}
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
