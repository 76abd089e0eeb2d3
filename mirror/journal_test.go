package mirror

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestJournalDropsACutLastLineAndRefusesGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.jsonl")
	j, err := openJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	e := JournalEntry{Gateway: "gw:5000", Step: "blob", Repository: "mirror/a", Digest: "sha256:" + strings.Repeat("a", 64)}
	if err := j.record(e); err != nil {
		t.Fatal(err)
	}
	j.close()
	// A crash while the next line was written.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"gateway":"gw:5000","step":"ta`)
	f.Close()
	j, err = openJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	if !j.has(e) {
		t.Fatal("the recorded step was lost")
	}
	other := e
	other.Gateway = "elsewhere:5000"
	if j.has(other) {
		t.Fatal("a step done on one gateway counts on another")
	}
	tag := JournalEntry{Gateway: "gw:5000", Step: "tag", Repository: "mirror/a", Digest: e.Digest, Tag: "1.0"}
	if err := j.record(tag); err != nil {
		t.Fatal(err)
	}
	j.close()
	data, _ := os.ReadFile(path)
	if strings.Count(string(data), "\n") != 2 || strings.Contains(string(data), `"ta{`) {
		t.Fatalf("journal after a cut line and a new entry:\n%s", data)
	}
	for _, bad := range []string{"not json\n" + string(data), `{"step":"delete","gateway":"g"}` + "\n", `{"step":"blob","extra":1}` + "\n"} {
		if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := openJournal(path); err == nil {
			t.Errorf("journal %q accepted", bad)
		}
	}
}
