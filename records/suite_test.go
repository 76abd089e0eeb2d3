package records_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/records"
)

var day0 = time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.UTC)

const (
	dA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	dB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// concurrency is how many writers race in the first-writer-wins tests.
const concurrency = 16

func TestLedger(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(*testing.T) *records.Store) {
		ctx, s := context.Background(), open(t)
		if _, ok, err := s.FirstDigest(ctx, "app", "v1"); ok || err != nil {
			t.Fatalf("empty ledger: ok=%v err=%v", ok, err)
		}
		first, err := s.RecordTag(ctx, "app", "v1", dA, day0)
		if err != nil || first != dA {
			t.Fatalf("first record: %q, %v", first, err)
		}
		first, err = s.RecordTag(ctx, "app", "v1", dB, day0.Add(time.Hour))
		if err != nil || first != dA {
			t.Fatalf("a second digest moved the tag: %q, %v", first, err)
		}
		// Names are data, never SQL; case and other repositories are distinct.
		hostile := `x'); DROP TABLE tag_ledger; --`
		if first, err := s.RecordTag(ctx, hostile, "V1", dB, day0); err != nil || first != dB {
			t.Fatalf("hostile name: %q, %v", first, err)
		}
		if d, ok, err := s.FirstDigest(ctx, "app", "v1"); !ok || err != nil || d != dA {
			t.Fatalf("after hostile name: %q %v %v", d, ok, err)
		}
		// The store survives reopening.
		s2 := open(t)
		if d, ok, err := s2.FirstDigest(ctx, hostile, "V1"); !ok || err != nil || d != dB {
			t.Fatalf("reopened: %q %v %v", d, ok, err)
		}
	})
}

func TestLedgerConcurrentWriters(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(*testing.T) *records.Store) {
		// Several stores (as replicas would) race to record different digests.
		stores := []*records.Store{open(t), open(t), open(t)}
		firsts := make([]string, concurrency)
		errs := make([]error, concurrency)
		var wg sync.WaitGroup
		for i := range concurrency {
			wg.Go(func() {
				d := fmt.Sprintf("sha256:%064x", i)
				firsts[i], errs[i] = stores[i%len(stores)].RecordTag(context.Background(), "race", "v1", d, day0)
			})
		}
		wg.Wait()
		for i := range concurrency {
			if errs[i] != nil {
				t.Fatalf("writer %d: %v", i, errs[i])
			}
			if firsts[i] != firsts[0] {
				t.Fatalf("writers disagree on the first digest: %q vs %q", firsts[i], firsts[0])
			}
		}
	})
}

func TestSightings(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(*testing.T) *records.Store) {
		ctx, s := context.Background(), open(t)
		if _, ok, err := s.Sighting(ctx, "app", "GO-1"); ok || err != nil {
			t.Fatalf("none yet: %v %v", ok, err)
		}
		got, err := s.Sight(ctx, "app", "GO-1", day0)
		if err != nil || !got.First.Equal(day0) || !got.LastSeen.Equal(day0) {
			t.Fatalf("first sighting: %+v %v", got, err)
		}
		later := day0.Add(40 * 24 * time.Hour)
		got, err = s.Sight(ctx, "app", "GO-1", later)
		if err != nil || !got.First.Equal(day0) || !got.LastSeen.Equal(later) {
			t.Fatalf("later sighting moved the first or kept the last: %+v %v", got, err)
		}
		// A sighting from a replica with a late clock never moves the last-seen date back.
		got, err = s.Sight(ctx, "app", "GO-1", day0.Add(time.Hour))
		if err != nil || !got.First.Equal(day0) || !got.LastSeen.Equal(later) {
			t.Fatalf("earlier sighting: %+v %v", got, err)
		}
		if got, _ := s.Sight(ctx, "other", "GO-1", later); !got.First.Equal(later) {
			t.Fatalf("repositories share sightings: %+v", got)
		}
	})
}

func TestSightingsConcurrentWriters(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(*testing.T) *records.Store) {
		stores := []*records.Store{open(t), open(t)}
		firsts := make([]time.Time, concurrency)
		errs := make([]error, concurrency)
		var wg sync.WaitGroup
		for i := range concurrency {
			wg.Go(func() {
				got, err := stores[i%len(stores)].Sight(context.Background(), "race", "CVE-1", day0.Add(time.Duration(i)*time.Minute))
				firsts[i], errs[i] = got.First, err
			})
		}
		wg.Wait()
		for i := range concurrency {
			if errs[i] != nil {
				t.Fatalf("writer %d: %v", i, errs[i])
			}
			if !firsts[i].Equal(firsts[0]) {
				t.Fatalf("writers disagree on the first sighting: %v vs %v", firsts[i], firsts[0])
			}
		}
	})
}

func TestBaselines(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(*testing.T) *records.Store) {
		ctx, s := context.Background(), open(t)
		if _, ok, err := s.Previous(ctx, "app"); ok || err != nil {
			t.Fatalf("no previous yet: %v %v", ok, err)
		}
		must(t, s.SetPrevious(ctx, "app", dA, day0))
		must(t, s.SetPrevious(ctx, "app", dB, day0.Add(time.Hour)))
		must(t, s.SetPrevious(ctx, "app", dA, day0.Add(time.Minute))) // older: ignored
		if d, ok, err := s.Previous(ctx, "app"); !ok || err != nil || d != dB {
			t.Fatalf("previous: %q %v %v", d, ok, err)
		}
		manifest := []byte(`{"schemaVersion":2}`)
		must(t, s.SetBaseline(ctx, records.Baseline{Repository: "app", Digest: dB, How: "layer-prefix", BaseRepository: "base", BaseDigest: dA, Manifest: manifest, At: day0}))
		must(t, s.SetBaseline(ctx, records.Baseline{Repository: "app", Digest: dA, At: day0})) // found none
		b, ok, err := s.Baseline(ctx, "app", dB)
		if !ok || err != nil || b.How != "layer-prefix" || b.BaseRepository != "base" || b.BaseDigest != dA || !bytes.Equal(b.Manifest, manifest) || !b.At.Equal(day0) {
			t.Fatalf("baseline: %+v %v %v", b, ok, err)
		}
		if b, ok, err := s.Baseline(ctx, "app", dA); !ok || err != nil || b.How != "" || b.Manifest != nil {
			t.Fatalf("baseline found none: %+v %v %v", b, ok, err)
		}
		if _, ok, err := s.Baseline(ctx, "app", "sha256:none"); ok || err != nil {
			t.Fatalf("missing baseline: %v %v", ok, err)
		}
		if err := s.SetBaseline(ctx, records.Baseline{Repository: "app", Digest: dA, How: "layer-prefix", At: day0}); !errors.Is(err, records.ErrInvalid) {
			t.Fatalf("baseline with a way but no image: %v", err)
		}
		must(t, s.SetLayers(ctx, "sha256:layers", records.Image{Repository: "base", Digest: dA}, day0))
		must(t, s.SetLayers(ctx, "sha256:layers", records.Image{Repository: "app", Digest: dB}, day0.Add(time.Second)))
		if img, ok, err := s.Layers(ctx, "sha256:layers"); !ok || err != nil || img != (records.Image{Repository: "app", Digest: dB}) {
			t.Fatalf("layers: %+v %v %v", img, ok, err)
		}
		if _, ok, err := s.Layers(ctx, "sha256:other"); ok || err != nil {
			t.Fatalf("missing layers: %v %v", ok, err)
		}
	})
}

func TestReminders(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(*testing.T) *records.Store) {
		stores := []*records.Store{open(t), open(t)}
		wins := make(chan bool, concurrency)
		var wg sync.WaitGroup
		for i := range concurrency {
			wg.Go(func() {
				first, err := stores[i%2].MarkReminder(context.Background(), "EXC-1", "2026-03-01", day0)
				if err != nil {
					t.Error(err)
				}
				wins <- first
			})
		}
		wg.Wait()
		close(wins)
		n := 0
		for w := range wins {
			if w {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d writers marked the reminder first, want 1", n)
		}
		ctx, s := context.Background(), stores[0]
		if first, err := s.MarkReminder(ctx, "EXC-1", "2026-03-02", day0); !first || err != nil {
			t.Fatalf("next day: %v %v", first, err)
		}
		must(t, s.UnmarkReminder(ctx, "EXC-1", "2026-03-02"))
		if first, err := s.MarkReminder(ctx, "EXC-1", "2026-03-02", day0); !first || err != nil {
			t.Fatalf("after unmark: %v %v", first, err)
		}
		if _, err := s.MarkReminder(ctx, "EXC-1", "tomorrow", day0); !errors.Is(err, records.ErrInvalid) {
			t.Fatalf("bad day: %v", err)
		}
	})
}

func TestDecisions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(*testing.T) *records.Store) {
		ctx, s := context.Background(), open(t)
		results := json.RawMessage(`[{"rule":"no-critical","outcome":"fail"}]`)
		for i, d := range []records.Decision{
			{Time: day0, Repository: "app", Digest: dA, Reference: "v1", Action: "push", Environment: "prod", Verdict: "allow", RequestID: "r1", PolicyRevision: "p1"},
			{Time: day0.Add(24 * time.Hour), Repository: "app", Digest: dB, Reference: "v2", Action: "push", Environment: "prod", Verdict: "deny", Results: results, RequestID: "r2"},
			{Time: day0.Add(48 * time.Hour), Repository: "app", Digest: dA, Reference: dA, Action: "pull", Environment: "prod", Verdict: "allow", RequestID: "r3"},
			{Time: day0.Add(48 * time.Hour), Repository: "other", Digest: dA, Action: "pull", Verdict: "warn", RequestID: "r4"},
		} {
			if err := s.AddDecision(ctx, d); err != nil {
				t.Fatalf("decision %d: %v", i, err)
			}
		}
		// The same decision again (an import run twice) is kept once.
		must(t, s.AddDecision(ctx, records.Decision{Time: day0, Repository: "app", Digest: dA, Reference: "v1", Action: "push", Environment: "prod", Verdict: "allow", RequestID: "r1", PolicyRevision: "p1"}))
		check := func(q records.Query, want ...string) {
			t.Helper()
			got, err := s.Decisions(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, d := range got {
				ids = append(ids, d.RequestID)
			}
			if strings.Join(ids, ",") != strings.Join(want, ",") {
				t.Fatalf("query %+v: %v, want %v", q, ids, want)
			}
		}
		check(records.Query{}, "r4", "r3", "r2", "r1")
		check(records.Query{Repository: "app"}, "r3", "r2", "r1")
		check(records.Query{Digest: dA}, "r4", "r3", "r1")
		check(records.Query{Repository: "app", Digest: dA, Since: day0.Add(time.Hour)}, "r3")
		check(records.Query{Limit: 2}, "r4", "r3")
		check(records.Query{Repository: "app' OR '1'='1"})
		got, _ := s.Decisions(ctx, records.Query{Digest: dB})
		if len(got) != 1 || string(got[0].Results) != string(results) || !got[0].Time.Equal(day0.Add(24*time.Hour)) || got[0].Environment != "prod" {
			t.Fatalf("decision read back: %+v", got)
		}
		n, err := s.Prune(ctx, day0.Add(36*time.Hour))
		if err != nil || n != 2 {
			t.Fatalf("prune: %d %v", n, err)
		}
		check(records.Query{}, "r4", "r3")
		for _, bad := range []records.Decision{
			{Time: day0, Action: "pull", Verdict: "allow"},
			{Time: day0, Repository: "app", Action: "pull", Verdict: "allow", Results: json.RawMessage(`{not json`)},
			{Time: day0, Repository: "app", Action: "pull", Verdict: "allow", Results: json.RawMessage(`{"a":1}`)},
			{Repository: "app", Action: "pull", Verdict: "allow"},
			{Time: day0, Repository: "app\x00", Action: "pull", Verdict: "allow"},
			{Time: day0, Repository: "app", Action: "pull", Verdict: "allow", Reference: strings.Repeat("x", 2000)},
		} {
			if err := s.AddDecision(ctx, bad); !errors.Is(err, records.ErrInvalid) {
				t.Errorf("bad decision %+v: %v", bad, err)
			}
		}
	})
}

func TestPruneSightings(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(*testing.T) *records.Store) {
		ctx, s := context.Background(), open(t)
		_, _ = s.Sight(ctx, "app", "old", day0)
		_, _ = s.Sight(ctx, "app", "kept", day0)
		_, _ = s.Sight(ctx, "app", "kept", day0.Add(300*24*time.Hour))
		if _, err := s.Prune(ctx, day0.Add(200*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := s.Sighting(ctx, "app", "old"); ok {
			t.Fatal("a sighting gone for longer than the retention was kept")
		}
		if sg, ok, _ := s.Sighting(ctx, "app", "kept"); !ok || !sg.First.Equal(day0) {
			t.Fatalf("a sighting still seen lost its first date: %+v %v", sg, ok)
		}
	})
}

func TestInvalidInput(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(*testing.T) *records.Store) {
		ctx, s := context.Background(), open(t)
		for name, err := range map[string]error{
			"empty tag":      second(s.RecordTag(ctx, "app", "", dA, day0)),
			"nul repository": second(s.RecordTag(ctx, "a\x00b", "v1", dA, day0)),
			"zero time":      second(s.RecordTag(ctx, "app", "v1", dA, time.Time{})),
			"before 1970":    second(s.Sight(ctx, "app", "X", time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC))),
			"year 3000":      second(s.RecordTag(ctx, "app", "v1", dA, time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC))),
			"long advisory":  second(s.Sight(ctx, "app", strings.Repeat("A", 5000), day0)),
			"empty previous": s.SetPrevious(ctx, "app", "", day0),
			"huge manifest":  s.SetBaseline(ctx, records.Baseline{Repository: "app", Digest: dA, At: day0, Manifest: make([]byte, records.MaxManifest+1)}),
		} {
			if !errors.Is(err, records.ErrInvalid) {
				t.Errorf("%s: %v, want ErrInvalid", name, err)
			}
		}
		if _, ok, _ := s.FirstDigest(ctx, "app", "v1"); ok {
			t.Fatal("a refused record was written")
		}
	})
}

func second[T any](_ T, err error) error { return err }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestWriteAllOrNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(*testing.T) *records.Store) {
		ctx, s := context.Background(), open(t)
		img := records.Image{Repository: "app", Digest: dA}
		w := records.Writes{
			Layers:   &records.LayerRecord{LayersHash: "sha256:l1", Image: img, At: day0},
			Baseline: &records.Baseline{Repository: "app", Digest: dA, At: day0},
			Previous: &records.Push{Repository: "app", Digest: dA, At: day0},
			Decision: &records.Decision{Time: day0, Repository: "app", Action: "push", Verdict: "allow", Results: json.RawMessage(`{"bad":1}`)},
		}
		if err := s.Write(ctx, w); !errors.Is(err, records.ErrInvalid) {
			t.Fatalf("write with a bad decision: %v", err)
		}
		if _, ok, _ := s.Layers(ctx, "sha256:l1"); ok {
			t.Fatal("a failed write left its layer record behind")
		}
		if _, ok, _ := s.Previous(ctx, "app"); ok {
			t.Fatal("a failed write left its previous push behind")
		}
		w.Decision.Results = nil
		must(t, s.Write(ctx, w))
		if _, ok, _ := s.Layers(ctx, "sha256:l1"); !ok {
			t.Fatal("layers not written")
		}
		if ds, _ := s.Decisions(ctx, records.Query{}); len(ds) != 1 {
			t.Fatalf("decisions %+v", ds)
		}
		must(t, s.Write(ctx, records.Writes{}))
	})
}
