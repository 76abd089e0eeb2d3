package mirror

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
)

// BenchmarkCheckChunks hashes eight 32 MiB chunks the way import checks a bundle before it
// writes anything, with one worker (the sequential check as it was) and with one per CPU
// (as it is): compare the two sub-benchmarks' MB/s from the same run.
func BenchmarkCheckChunks(b *testing.B) {
	dir := b.TempDir()
	m := &BundleManifest{}
	buf := make([]byte, 32<<20)
	for i := range 8 {
		_, _ = rand.Read(buf)
		name := ChunkName(i)
		if err := os.WriteFile(filepath.Join(dir, name), buf, 0o644); err != nil {
			b.Fatal(err)
		}
		sum := sha256.Sum256(buf)
		m.Chunks = append(m.Chunks, Chunk{Name: name, Size: int64(len(buf)), SHA256: hex.EncodeToString(sum[:])})
	}
	for _, workers := range []int{1, runtime.NumCPU()} {
		b.Run("workers="+strconv.Itoa(workers), func(b *testing.B) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(workers))
			b.SetBytes(int64(len(m.Chunks)) * int64(len(buf)))
			for b.Loop() {
				if err := checkChunks(dir, m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
