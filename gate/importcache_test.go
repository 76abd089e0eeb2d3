package gate_test

import (
	"context"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/records"
)

// FuzzImportCachedRecord feeds arbitrary keys and values, as a Redis shared with anything
// may hold, to ImportCachedRecord: it never panics, and skips what it cannot read.
func FuzzImportCachedRecord(f *testing.F) {
	sighting, _ := cache.Encode(cache.KindFirstSeen, 1, map[string]time.Time{"first": time.Unix(1e9, 0)})
	image, _ := cache.Encode(cache.KindLayers, 1, map[string]string{"repository": "a", "digest": "sha256:1"})
	for _, seed := range []struct {
		key string
		val []byte
	}{
		{cache.LedgerKey("a%3Ab", "v1"), []byte("sha256:1")},
		{cache.FirstSeenKey("a", "CVE-1"), sighting},
		{cache.LayersKey("sha256:2"), image},
		{cache.BaselineKey("a", "sha256:3"), image},
		{"portcullis:v1:ledger:", nil},
		{"portcullis:v1:baseline:a:b", []byte("x")},
		{"portcullis:v1:firstseen:%zz:x", sighting},
		{"portcullis:v1:previous:", image},
	} {
		f.Add(seed.key, seed.val)
	}
	s, err := records.OpenMemory(context.Background())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.Close() })
	f.Fuzz(func(t *testing.T, key string, val []byte) {
		_, _ = gate.ImportCachedRecord(context.Background(), s, key, val, time.Unix(1, 0))
	})
}
