package secrets

import (
	"context"
	"runtime"
	"testing"
)

// maxAllocPerSearch is what one Search of a file at the size limit may
// allocate in all, whatever the file holds: a bound on its peak heap too,
// well inside the 256 MiB one layer analysis may use.
const maxAllocPerSearch = 96 << 20

// TestSearchMemoryIsBounded searches each adversarial input at the size
// limit and measures what the search allocates (runtime.MemStats, not a
// clock).
func TestSearchMemoryIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates hundreds of MiB in all")
	}
	for _, in := range adversarial {
		data := in.make(t, MaxFileBytes)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		Search(context.Background(), "/f", data, Options{})
		runtime.ReadMemStats(&after)
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("%s: %.1f MiB allocated", in.name, float64(alloc)/(1<<20))
		if alloc > maxAllocPerSearch {
			t.Errorf("%s: searching %d bytes allocated %d, over %d", in.name, len(data), alloc, maxAllocPerSearch)
		}
	}
}
