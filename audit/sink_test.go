package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestFileSinkWritesOneJSONLinePerEventUnderConcurrency(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "audit.log")
	s, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			e := Event{Time: time.Unix(int64(i), 0).UTC(), Type: TypeDecision, Repository: "team/app", Verdict: "allow",
				Results: []Result{{Rule: "no-latest", Type: "tag", Mode: "block", Outcome: "pass"}}}
			if err := s.Record(context.Background(), e); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[int64]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q is not one JSON event: %v", sc.Text(), err)
		}
		if e.Repository != "team/app" || len(e.Results) != 1 || e.Results[0].Rule != "no-latest" {
			t.Fatalf("event lost fields: %+v", e)
		}
		seen[e.Time.Unix()] = true
	}
	if len(seen) != n {
		t.Fatalf("got %d distinct events, want %d", len(seen), n)
	}
}
