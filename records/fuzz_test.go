package records_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/portcullis-dev/portcullis/records"
)

// FuzzImport feeds arbitrary lines to Import: it returns an error or imports, never
// panics, and what it imported exports again as lines that import cleanly.
func FuzzImport(f *testing.F) {
	f.Add([]byte(`{"tag":{"repository":"a","tag":"v1","digest":"sha256:1","at":"2026-01-01T00:00:00Z"}}`))
	f.Add([]byte(`{"sighting":{"repository":"a","advisory":"X","first":"2026-01-01T00:00:00Z","lastSeen":"2026-02-01T00:00:00Z"}}`))
	f.Add([]byte(`{"decision":{"time":"2026-01-01T00:00:00Z","repository":"a","action":"pull","verdict":"allow","results":[{"rule":"r"}]}}`))
	f.Add([]byte(`{"baseline":{"repository":"a","digest":"d","how":"x","baseRepository":"b","baseDigest":"e","manifest":"AA==","at":"2026-01-01T00:00:00Z"}}`))
	f.Add([]byte("{\"reminder\":{\"exceptionId\":\"E\",\"day\":\"2026-01-01\",\"at\":\"2026-01-01T00:00:00Z\"}}\n{}"))
	s, err := records.OpenMemory(context.Background())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.Close() })
	f.Fuzz(func(t *testing.T, in []byte) {
		ctx := context.Background()
		_, _ = s.Import(ctx, bytes.NewReader(in))
		var out bytes.Buffer
		if _, err := s.Export(ctx, &out); err != nil {
			t.Fatalf("export after importing %q: %v", in, err)
		}
		if _, err := s.Import(ctx, &out); err != nil {
			t.Fatalf("re-importing the export after %q: %v", in, err)
		}
	})
}
