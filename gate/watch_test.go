package gate_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/gate"
)

func TestWatcherKeepsLastGoodPolicy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte(testPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := gate.LoadPolicy(path)
	if err != nil {
		t.Fatal(err)
	}
	g := gate.New(p, nil, &memSink{})
	w := gate.NewWatcher(g, path, slog.New(slog.NewTextHandler(io.Discard, nil)))
	first := g.Policy().Revision()
	reloads := 0
	w.OnReload(func() { reloads++ })

	changed := strings.Replace(testPolicy, "file a SEC ticket", "file a PSEC ticket", 1)
	if err := os.WriteFile(path, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := w.Reload(); err != nil {
		t.Fatalf("valid policy refused: %v", err)
	}
	second := g.Policy().Revision()
	if second == first {
		t.Fatal("reload of a changed file kept the old revision")
	}
	if reloads != 1 {
		t.Fatalf("OnReload hooks ran %d times after one reload, want 1", reloads)
	}

	broken := testPolicy + "  - id: bad\n    type: tag\n    mode: sometimes\n    enforceFrom: someday\n"
	if err := os.WriteFile(path, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	err = w.Reload()
	if err == nil {
		t.Fatal("broken policy accepted")
	}
	for _, want := range []string{"rules[3].mode", "rules[3].enforceFrom"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("reload error %q lacks field path %s", err, want)
		}
	}
	if g.Policy().Revision() != second {
		t.Fatal("a refused reload replaced the policy in force")
	}
	if reloads != 1 {
		t.Fatalf("OnReload hooks ran after a refused reload (%d runs)", reloads)
	}
	if st := w.Status(); !strings.Contains(st, "refused") || !strings.Contains(st, second) {
		t.Fatalf("status %q does not report the refusal and the revision still in force", st)
	}
}

// An exception file added to, or changed in, a directory that exceptionFiles names is
// picked up without touching the policy file or sending SIGHUP.
func TestWatcherFollowsExceptionFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	doc := "version: 1\nexceptionFiles: [\"exceptions/*.yaml\"]\nrules:\n  - {id: no-latest, type: tag, mode: block, forbidden: [latest]}\n"
	if err := os.MkdirAll(filepath.Join(dir, "exceptions"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := gate.LoadPolicy(path)
	if err != nil {
		t.Fatal(err)
	}
	g := gate.New(p, nil, &memSink{})
	w := gate.NewWatcher(g, path, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx, 10*time.Millisecond, nil)
	awaitRevisionChange := func(what, from string) string {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for g.Policy().Revision() == from {
			if time.Now().After(deadline) {
				t.Fatalf("%s was not picked up (status %q)", what, w.Status())
			}
			time.Sleep(5 * time.Millisecond)
		}
		return g.Policy().Revision()
	}
	exc := `- id: EXC-1
  scope: {repository: team/app, rules: [no-latest]}
  reason: r
  owner: team@example.com
  approvedBy: security@example.com
  created: 2026-11-20
  expires: 2026-12-01
  closure: c
`
	rev := g.Policy().Revision()
	if err := os.WriteFile(filepath.Join(dir, "exceptions", "a.yaml"), []byte(exc), 0o600); err != nil {
		t.Fatal(err)
	}
	rev = awaitRevisionChange("a new exception file", rev)
	if n := len(g.Policy().Exceptions()); n != 1 {
		t.Fatalf("%d exceptions after adding a file, want 1", n)
	}
	if err := os.WriteFile(filepath.Join(dir, "exceptions", "a.yaml"), []byte(strings.Replace(exc, "2026-12-01", "2026-12-02", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	awaitRevisionChange("a changed exception file", rev)
	if e := g.Policy().Exceptions(); len(e) != 1 || e[0].Expires.Day() != 2 {
		t.Fatalf("exceptions after the change: %+v", e)
	}
}
