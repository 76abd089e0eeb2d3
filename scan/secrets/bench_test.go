package secrets

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkScan measures Scan over ordinary source text: the Go standard
// library's net/http sources, which mention URLs, keys and tokens in passing
// but hold no secrets.
func BenchmarkScan(b *testing.B) {
	files, _ := filepath.Glob(filepath.Join(os.Getenv("GOROOT"), "src", "net", "http", "*.go"))
	if len(files) == 0 {
		files, _ = filepath.Glob("/usr/local/go/src/net/http/*.go")
	}
	var data [][]byte
	var size int64
	for _, f := range files {
		d, err := os.ReadFile(f)
		if err != nil || len(d) > MaxFileBytes {
			continue
		}
		data = append(data, d)
		size += int64(len(d))
	}
	if len(data) == 0 {
		b.Skip("no Go sources to read")
	}
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		for _, d := range data {
			Scan("/src/x.go", d)
		}
	}
}
