package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/records"
)

func runCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

const testDigest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"

// TestRecordsExportImportAndDecisions backs up one data directory's records, restores
// them into another, and lists the decisions of the copy.
func TestRecordsExportImportAndDecisions(t *testing.T) {
	t.Setenv("PORTCULLIS_RECORDS_POSTGRES_URL", "")
	t.Setenv("PORTCULLIS_CONFIG", "")
	src, dst := t.TempDir(), t.TempDir()
	s, err := records.OpenSQLite(context.Background(), filepath.Join(src, records.FileName))
	if err != nil {
		t.Fatal(err)
	}
	ctx, now := context.Background(), time.Now().UTC()
	if _, err := s.RecordTag(ctx, "team/app", "1.0.0", testDigest, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sight(ctx, "team/app", "GO-2024-1", now.Add(-10*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	for i, d := range []records.Decision{
		{Time: now.Add(-30 * 24 * time.Hour), Repository: "team/app", Digest: testDigest, Reference: "0.9.0", Action: "push", Verdict: "allow", Environment: "prod"},
		{Time: now.Add(-time.Hour), Repository: "team/app", Digest: testDigest, Reference: "1.0.0", Action: "push", Verdict: "deny", Environment: "prod",
			Results: json.RawMessage(`[{"rule":"no-critical","outcome":"fail"},{"rule":"signed","outcome":"pass"}]`), RequestID: "req-1"},
		{Time: now.Add(-time.Minute), Repository: "other/app", Digest: testDigest, Action: "pull", Verdict: "allow"},
	} {
		if err := s.AddDecision(ctx, d); err != nil {
			t.Fatalf("decision %d: %v", i, err)
		}
	}
	_ = s.Close()

	backup := filepath.Join(t.TempDir(), "records.jsonl")
	if code, _, errOut := runCmd("records", "export", "--data-dir", src, "--out", backup); code != 0 || !strings.Contains(errOut, "5 records") {
		t.Fatalf("export: %d %s", code, errOut)
	}
	for range 2 {
		if code, out, errOut := runCmd("records", "import", "--data-dir", dst, backup); code != 0 || !strings.Contains(out, "imported 5 lines") {
			t.Fatalf("import: %d %s %s", code, out, errOut)
		}
	}
	code, out, errOut := runCmd("decisions", "list", "--data-dir", dst, "--repository", "team/app", "--since", "7d", "--output", "json")
	if code != 0 {
		t.Fatalf("decisions list: %d %s", code, errOut)
	}
	var ds []records.Decision
	if err := json.Unmarshal([]byte(out), &ds); err != nil || len(ds) != 1 || ds[0].RequestID != "req-1" || ds[0].Verdict != "deny" {
		t.Fatalf("decisions list --since 7d after two imports: %v %s", err, out)
	}
	code, out, _ = runCmd("decisions", "list", "--data-dir", dst, "--digest", testDigest)
	if code != 0 || strings.Count(out, "\n") != 4 || !strings.Contains(out, "no-critical=fail") || strings.Contains(out, "signed=") {
		t.Fatalf("decisions table: %d\n%s", code, out)
	}

	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	if err := os.WriteFile(bad, []byte("{\"tag\":{\"repository\":\"a\",\"tag\":\"v\",\"digest\":\"d:1\",\"at\":\"2026-01-01T00:00:00Z\"}}\n{\"bogus\":1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCmd("records", "import", "--data-dir", dst, bad); code != 1 || !strings.Contains(errOut, "line 2") {
		t.Fatalf("bad import: %d %s", code, errOut)
	}
	for _, args := range [][]string{
		{"decisions", "list", "--since", "soon"},
		{"decisions", "list", "--output", "xml"},
		{"records", "import"},
		{"records", "bogus"},
	} {
		if code, _, _ := runCmd(args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	if code, out, _ := runCmd("records", "export", "-h"); code != 0 || !strings.Contains(out, "Example:") {
		t.Errorf("records export -h: %d %s", code, out)
	}
}

// TestRecordsImportFromRedis writes records the way gateways before the records store
// kept them in Redis and copies them into a fresh store.
func TestRecordsImportFromRedis(t *testing.T) {
	t.Setenv("PORTCULLIS_RECORDS_POSTGRES_URL", "")
	t.Setenv("PORTCULLIS_CONFIG", "")
	run := make([]byte, 4)
	_, _ = rand.Read(run)
	id := hex.EncodeToString(run)
	rdb := regtest.Redis(t, "portcullis:v1:*"+id+"*")
	ctx := context.Background()
	repo := "team:" + id + "/app%x" // separators and escapes in names survive
	first := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	enc := func(kind string, v any) []byte {
		b, err := cache.Encode(kind, 1, v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	layersHash := cache.LayersHash([]string{"sha256:" + id})
	for key, val := range map[string][]byte{
		cache.LedgerKey(repo, "1.0.0"):          []byte(testDigest),
		cache.FirstSeenKey(repo, "CVE-2024-1"):  enc(cache.KindFirstSeen, map[string]time.Time{"first": first, "renewed": first.Add(24 * time.Hour)}),
		cache.PreviousKey(repo):                 enc(cache.KindPrevious, map[string]string{"repository": repo, "digest": testDigest}),
		cache.BaselineKey(repo, testDigest):     enc(cache.KindBaseline, map[string]string{"how": "layer-prefix", "repository": "base/" + id, "digest": testDigest}),
		cache.LayersKey(layersHash):             enc(cache.KindLayers, map[string]string{"repository": repo, "digest": testDigest}),
		cache.FirstSeenKey(repo, "CVE-garbage"): []byte("not a record"),
	} {
		if err := rdb.Set(ctx, key, val, time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	code, out, errOut := runCmd("records", "import-from-redis", "--data-dir", dir, "--redis-addr", regtest.RedisAddr())
	if code != 0 {
		t.Fatalf("import-from-redis: %d %s %s", code, out, errOut)
	}
	s, err := records.OpenSQLite(ctx, filepath.Join(dir, records.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if d, ok, _ := s.FirstDigest(ctx, repo, "1.0.0"); !ok || d != testDigest {
		t.Errorf("ledger: %q %v", d, ok)
	}
	if sg, ok, _ := s.Sighting(ctx, repo, "CVE-2024-1"); !ok || !sg.First.Equal(first) || !sg.LastSeen.Equal(first.Add(24*time.Hour)) {
		t.Errorf("sighting: %+v %v", sg, ok)
	}
	if _, ok, _ := s.Sighting(ctx, repo, "CVE-garbage"); ok {
		t.Error("an unreadable value was imported")
	}
	if d, ok, _ := s.Previous(ctx, repo); !ok || d != testDigest {
		t.Errorf("previous: %q %v", d, ok)
	}
	if b, ok, _ := s.Baseline(ctx, repo, testDigest); !ok || b.How != "layer-prefix" || b.BaseRepository != "base/"+id || b.BaseDigest != testDigest {
		t.Errorf("baseline: %+v %v", b, ok)
	}
	if img, ok, _ := s.Layers(ctx, layersHash); !ok || img.Repository != repo {
		t.Errorf("layers: %+v %v", img, ok)
	}
}
