package records_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/records"
)

// TestConcurrentOpens starts several stores on one empty database at once, as replicas
// starting together do: each migration is applied once and every store works.
func TestConcurrentOpens(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			open := b.fresh(t)
			stores := make([]*records.Store, 6)
			var wg sync.WaitGroup
			for i := range stores {
				wg.Go(func() { stores[i] = open(t) }) // open calls t.Fatal on error
			}
			wg.Wait()
			for i, s := range stores {
				if s == nil {
					t.Fatalf("store %d did not open", i)
				}
				if _, err := s.RecordTag(context.Background(), "app", "v1", dA, day0); err != nil {
					t.Fatalf("store %d: %v", i, err)
				}
			}
			// Reopening applies nothing twice.
			s := open(t)
			var buf bytes.Buffer
			if n, err := s.Export(context.Background(), &buf); err != nil || n != 1 {
				t.Fatalf("after concurrent opens: %d records, %v", n, err)
			}
		})
	}
}

// TestExportImport moves every kind of record from one backend to the other and back,
// and merges an import into a store that has records of its own.
func TestExportImport(t *testing.T) {
	ctx := context.Background()
	src := backends[0].fresh(t)(t)
	fill(t, src)
	var dump bytes.Buffer
	n, err := src.Export(ctx, &dump)
	if err != nil || n != 8 {
		t.Fatalf("export: %d %v\n%s", n, err, dump.String())
	}
	dst := backends[1].fresh(t)(t)
	// dst already knows an earlier sighting and another first digest for the tag.
	if _, err := dst.RecordTag(ctx, "app", "v1", dB, day0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Sight(ctx, "app", "GO-1", day0.Add(-24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	for range 2 { // importing twice changes nothing
		if got, err := dst.Import(ctx, bytes.NewReader(dump.Bytes())); err != nil || got != 8 {
			t.Fatalf("import: %d %v", got, err)
		}
	}
	if d, _, _ := dst.FirstDigest(ctx, "app", "v1"); d != dB {
		t.Fatalf("import moved a tag's first digest to %s", d)
	}
	if sg, _, _ := dst.Sighting(ctx, "app", "GO-1"); !sg.First.Equal(day0.Add(-24*time.Hour)) || !sg.LastSeen.Equal(day0.Add(time.Hour)) {
		t.Fatalf("merged sighting: %+v", sg)
	}
	if ds, _ := dst.Decisions(ctx, records.Query{}); len(ds) != 1 || string(ds[0].Results) != `[{"rule":"r"}]` {
		t.Fatalf("decisions after two imports: %+v", ds)
	}
	var back bytes.Buffer
	if _, err := dst.Export(ctx, &back); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"baseline":{"repository":"app"`, `"manifest":"eyJhIjoxfQ=="`, `"reminder":{"exceptionId":"EXC-1","day":"2026-03-01"`, `"layers":{"layersHash":"sha256:l"`, `"previous":{"repository":"app"`} {
		if !strings.Contains(back.String(), want) {
			t.Errorf("round trip lost %s:\n%s", want, back.String())
		}
	}
}

func TestImportRefusesBadLines(t *testing.T) {
	s := backends[0].fresh(t)(t)
	for _, tc := range []struct{ in, want string }{
		{`{"tag":{"repository":"a","tag":"v1","digest":"` + dA + `","at":"2026-01-01T00:00:00Z"}}` + "\n{not json}\n", "line 2"},
		{`{"tag":{"repository":"a","tag":"v1","digest":"` + dA + `","at":"2026-01-01T00:00:00Z"},"previous":{"repository":"a","digest":"` + dA + `","at":"2026-01-01T00:00:00Z"}}`, "holds 2"},
		{`{}`, "holds 0"},
		{`{"tag":{"repository":"","tag":"v1","digest":"x","at":"2026-01-01T00:00:00Z"}}`, "repository is empty"},
		{`{"sighting":{"repository":"a","advisory":"X","first":"2026-02-01T00:00:00Z","lastSeen":"2026-01-01T00:00:00Z"}}`, "before it was first seen"},
		{`{"tag":{"repository":"a","tag":"v1","digest":"x","at":"2026-01-01T00:00:00Z","extra":1}}`, "unknown field"},
		{`{"decision":{"time":"2026-01-01T00:00:00Z","repository":"a","action":"pull","verdict":"allow","results":"x"}}`, "not a JSON array"},
	} {
		_, err := s.Import(context.Background(), strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("import %s: %v, want an error with %q", tc.in, err, tc.want)
		}
	}
}

func fill(t *testing.T, s *records.Store) {
	ctx := context.Background()
	must(t, second(s.RecordTag(ctx, "app", "v1", dA, day0)))
	must(t, second(s.Sight(ctx, "app", "GO-1", day0)))
	must(t, second(s.Sight(ctx, "app", "GO-1", day0.Add(time.Hour))))
	must(t, s.SetPrevious(ctx, "app", dA, day0))
	must(t, s.SetBaseline(ctx, records.Baseline{Repository: "app", Digest: dA, How: "base-annotation", BaseRepository: "base", BaseDigest: dB, Manifest: []byte(`{"a":1}`), At: day0}))
	must(t, s.SetBaseline(ctx, records.Baseline{Repository: "app", Digest: dB, At: day0}))
	must(t, s.SetLayers(ctx, "sha256:l", records.Image{Repository: "app", Digest: dA}, day0))
	must(t, second(s.MarkReminder(ctx, "EXC-1", "2026-03-01", day0)))
	must(t, s.AddDecision(ctx, records.Decision{Time: day0, Repository: "app", Digest: dA, Action: "push", Verdict: "allow", Results: json.RawMessage(`[{"rule":"r"}]`)}))
}
