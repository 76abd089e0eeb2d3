package proxy_test

import (
	"io"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"
)

const (
	// memoryBlobSize is the blob TestBlobStreamingMemoryIsFlat pushes and pulls.
	memoryBlobSize = 1 << 30
	// memoryHeapBound is the most the in-use heap may grow while it does. Streaming
	// costs a few copy buffers per request; buffering a blob would cost the blob.
	memoryHeapBound = 64 << 20
)

// perfRepeatingReader yields size bytes by repeating block: as incompressible as block and
// as fast as memmove, so gigabytes cost no generation time.
type perfRepeatingReader struct {
	block []byte
	off   int
	left  int64
}

func newPerfRepeatingReader(seed uint64, blockSize int, size int64) *perfRepeatingReader {
	block := make([]byte, blockSize)
	_, _ = io.ReadFull(perfRandom(seed, int64(blockSize)), block)
	return &perfRepeatingReader{block: block, left: size}
}

func (r *perfRepeatingReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.block[r.off:])
		n += c
		r.off = (r.off + c) % len(r.block)
	}
	r.left -= int64(n)
	return n, nil
}

// perfHeapSampler records the peak of the in-use heap (what runtime.MemStats.HeapInuse
// reports, read through runtime/metrics so that sampling does not stop the world).
type perfHeapSampler struct {
	samples []metrics.Sample
	stop    chan struct{}
	done    sync.WaitGroup

	base, peak uint64 // in-use heap bytes
	reads      int
	allocs     uint64 // bytes allocated while sampling
	gcs        uint64 // GC cycles while sampling
}

const (
	perfHeapObjects = "/memory/classes/heap/objects:bytes"
	perfHeapUnused  = "/memory/classes/heap/unused:bytes"
	perfAllocs      = "/gc/heap/allocs:bytes"
	perfGCs         = "/gc/cycles/total:gc-cycles"
)

// startPerfHeapSampler collects garbage, takes the baseline and samples every interval
// until stopped.
func startPerfHeapSampler(interval time.Duration) *perfHeapSampler {
	s := &perfHeapSampler{
		samples: []metrics.Sample{{Name: perfHeapObjects}, {Name: perfHeapUnused}, {Name: perfAllocs}, {Name: perfGCs}},
		stop:    make(chan struct{}),
	}
	runtime.GC()
	s.base = s.read()
	s.peak = s.base
	s.allocs, s.gcs = s.samples[2].Value.Uint64(), s.samples[3].Value.Uint64()
	s.done.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				s.peak = max(s.peak, s.read())
			}
		}
	})
	return s
}

// read returns the in-use heap now.
func (s *perfHeapSampler) read() uint64 {
	metrics.Read(s.samples)
	s.reads++
	return s.samples[0].Value.Uint64() + s.samples[1].Value.Uint64()
}

// finish stops sampling, takes a last sample and returns the peak growth over the
// baseline.
func (s *perfHeapSampler) finish() uint64 {
	close(s.stop)
	s.done.Wait()
	s.peak = max(s.peak, s.read())
	s.allocs = s.samples[2].Value.Uint64() - s.allocs
	s.gcs = s.samples[3].Value.Uint64() - s.gcs
	return s.peak - s.base
}

// TestBlobStreamingMemoryIsFlat pushes a 1 GiB blob through the gateway as one streamed
// PATCH and pulls it back through the gateway, checking its digest, while sampling the
// process's in-use heap, and fails if the heap grew by more than memoryHeapBound: the
// gateway must stream blobs, never hold one. The registry runs in the same process, so
// the bound covers it too. There is no timing assertion; the durations are logged.
func TestBlobStreamingMemoryIsFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 2 GiB through the gateway; skipped with -short")
	}
	env := newPerfEnv(t)
	const repo = "memory/blob"
	body := newPerfRepeatingReader(2, 1<<20, memoryBlobSize)

	s := startPerfHeapSampler(2 * time.Millisecond)
	start := time.Now()
	d, size, err := perfPushBlobStreamed(env.client, env.gateway, repo, body)
	if err != nil {
		s.finish()
		t.Fatal(err)
	}
	pushed := time.Since(start)
	if size != memoryBlobSize {
		t.Fatalf("pushed %d bytes, want %d", size, memoryBlobSize)
	}
	start = time.Now()
	err = perfPullBlob(env.client, env.gateway, repo, d, size, true)
	pulled := time.Since(start)
	growth := s.finish()
	if err != nil {
		t.Fatal(err)
	}

	const mib = 1 << 20
	t.Logf("push %v (%.0f MB/s), pull with digest check %v (%.0f MB/s)",
		pushed.Round(time.Millisecond), float64(size)/1e6/pushed.Seconds(),
		pulled.Round(time.Millisecond), float64(size)/1e6/pulled.Seconds())
	t.Logf("in-use heap: baseline %.1f MiB, peak %.1f MiB, growth %.1f MiB (bound %d MiB); %d samples; %.0f MiB allocated, %d GC cycles",
		float64(s.base)/mib, float64(s.peak)/mib, float64(growth)/mib, memoryHeapBound/mib, s.reads, float64(s.allocs)/mib, s.gcs)
	if growth > memoryHeapBound {
		t.Errorf("in-use heap grew by %.1f MiB while streaming a %d MiB blob through the gateway; want at most %d MiB",
			float64(growth)/mib, size/mib, memoryHeapBound/mib)
	}
}
