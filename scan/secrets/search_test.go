package secrets

import (
	"archive/zip"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// resolvePairwise is what resolve computes, the obvious quadratic way.
func resolvePairwise(hits []hit) []hit {
	sorted := slices.Clone(hits)
	slices.SortStableFunc(sorted, func(x, y hit) int {
		return cmp.Or(cmp.Compare(y.priority, x.priority), cmp.Compare(y.end-y.start, x.end-x.start))
	})
	var kept []hit
	for _, h := range sorted {
		if !slices.ContainsFunc(kept, func(k hit) bool { return h.start < k.end && k.start < h.end }) {
			kept = append(kept, h)
		}
	}
	slices.SortFunc(kept, func(x, y hit) int { return cmp.Compare(x.start, y.start) })
	return kept
}

func TestResolveKeepsWhatPairwiseComparisonKeeps(t *testing.T) {
	for trial := range 2000 {
		n := 1 + rng.IntN(60)
		span := 1 + rng.IntN(200)
		hits := make([]hit, n)
		for i := range hits {
			start := rng.IntN(span)
			hits[i] = hit{start: start, end: start + 1 + rng.IntN(30), priority: int32(10 * rng.IntN(3)), index: int32(i)}
		}
		want := resolvePairwise(hits)
		got, err := resolve(nil, slices.Clone(hits))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("trial %d, hits %v:\n got %v\nwant %v", trial, hits, got, want)
		}
	}
}

// countdown is a context that ends after its Err has been asked n times:
// a deadline reached mid-search, without a clock.
type countdown struct {
	context.Context
	n atomic.Int64
}

var errBudget = errors.New("analysis budget spent")

func (c *countdown) Err() error {
	if c.n.Add(-1) < 0 {
		return context.Canceled
	}
	return nil
}

func (c *countdown) Value(key any) any { return nil }

func (c *countdown) Deadline() (time.Time, bool) { return time.Time{}, false }

func (c *countdown) Done() <-chan struct{} { return nil }

func TestSearchStopsWhenItsContextEnds(t *testing.T) {
	key := rsaPEM(t)
	// A zip of many members, each with a key.
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := range 200 {
		w, _ := zw.Create(fmt.Sprintf("k%03d.pem", i))
		w.Write([]byte(key))
	}
	zw.Close()

	ended, cancel := context.WithCancelCause(context.Background())
	cancel(errBudget)
	rep, err := Search(ended, "/app/keys.zip", buf.Bytes(), Options{})
	if !errors.Is(err, errBudget) || len(rep.Secrets) != 0 {
		t.Fatalf("an ended context: error %v, %d secrets; want %v and none", err, len(rep.Secrets), errBudget)
	}
	if rep.NotSearchedCount != 1 || rep.NotSearched[0].Path != "/app/keys.zip" || rep.NotSearched[0].Member != "" ||
		rep.NotSearched[0].Reason != "search stopped: "+errBudget.Error() {
		t.Errorf("not searched %+v, want the file itself", rep.NotSearched)
	}

	// Ending part way: the search stops within a few members, with what it found.
	cd := &countdown{Context: context.Background()}
	cd.n.Store(50)
	rep, err = Search(cd, "/app/keys.zip", buf.Bytes(), Options{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if len(rep.Secrets) == 0 || len(rep.Secrets) >= 50 {
		t.Errorf("%d secrets found before the end, want some and far from 200", len(rep.Secrets))
	}

	full, err := Search(context.Background(), "/app/keys.zip", buf.Bytes(), Options{})
	if err != nil || full.NotSearchedCount != 0 {
		t.Fatalf("error %v, not searched %+v", err, full.NotSearched)
	}
	var n Counts
	for _, s := range full.Secrets {
		n.Add(s.Confidence, 1)
	}
	// The parse budget checks the first keys; the rest are reported unparsed,
	// medium: every key is there, each level capped at MaxFindings.
	if n.Total()+full.Omitted.Total() != 200 || n.High == 0 || n.High > MaxFindings || n.Medium > MaxFindings {
		t.Errorf("kept %+v omitted %+v, want 200 keys in all", n, full.Omitted)
	}
}

func TestSearchBoundsDecompression(t *testing.T) {
	key := rsaPEM(t)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := range 10 {
		w, _ := zw.Create(fmt.Sprintf("zeros%d", i))
		w.Write(make([]byte, MaxFileBytes))
	}
	w, _ := zw.CreateHeader(&zip.FileHeader{Name: "last.pem", Method: zip.Store})
	w.Write([]byte(key))
	zw.Close()
	rep, err := Search(context.Background(), "/a.zip", buf.Bytes(), Options{MaxExpandedBytes: 3 * MaxFileBytes})
	if err != nil {
		t.Fatal(err)
	}
	if rep.ExpandedBytes > 3*MaxFileBytes+1 {
		t.Errorf("decompressed %d bytes, bound %d", rep.ExpandedBytes, 3*MaxFileBytes)
	}
	over := 0
	for _, n := range rep.NotSearched {
		if strings.Contains(n.Reason, "over 3 MiB decompressed") {
			over++
		}
	}
	if over == 0 || rep.NotSearchedCount != len(rep.NotSearched) {
		t.Errorf("not searched %+v, want the members past 3 MiB", rep.NotSearched)
	}
	// Stored members are in the zip's own bytes: the key is still found there.
	if len(rep.Secrets) != 1 || rep.Secrets[0].Type != TypePrivateKey {
		t.Errorf("secrets %+v", rep.Secrets)
	}
}

func TestSearchCapsEachLevelOnItsOwn(t *testing.T) {
	var b strings.Builder
	for range 3 * MaxFindings {
		b.WriteString("postgres://app:" + randFrom(base62Alphabet, 20) + "@localhost/db\n")
	}
	b.WriteString(rsaPEM(t))
	rep, err := Search(context.Background(), "/x", []byte(b.String()), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var n Counts
	for _, s := range rep.Secrets {
		n.Add(s.Confidence, 1)
	}
	if n.High != 1 || n.Low != MaxFindings || rep.Omitted != (Counts{Low: 2 * MaxFindings}) {
		t.Fatalf("kept %+v, omitted %+v; want the key, %d low, %d low omitted", n, rep.Omitted, MaxFindings, 2*MaxFindings)
	}
}

func TestArchiveKind(t *testing.T) {
	var zipped bytes.Buffer
	zw := zip.NewWriter(&zipped)
	zw.SetComment("a comment")
	zw.Close()
	for _, tt := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, ""},
		{"text", []byte("hello"), ""},
		{"zip", zipped.Bytes(), "zip"},
		{"zip after a script", append([]byte("#!/bin/sh\nexec java -jar $0\n"), zipped.Bytes()...), "zip"},
		{"zip end with a wrong comment length", append([]byte("xx"), zipped.Bytes()[:zipped.Len()-1]...), ""},
		{"gzip", []byte{0x1f, 0x8b, 8, 0}, "gzip"},
		{"bzip2", []byte("BZh9"), "bzip2"},
		{"not bzip2", []byte("BZhx"), ""},
		{"zstd", []byte("\x28\xb5\x2f\xfd"), "zstd"},
		{"xz", []byte("\xfd7zXZ\x00\x00"), "xz"},
		{"tar", append(make([]byte, 257), append([]byte("ustar\x0000"), make([]byte, 250)...)...), "tar"},
	} {
		if got := archiveKind(tt.data); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
