package gate_test

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	if st := w.Status(); !strings.Contains(st, "refused") || !strings.Contains(st, second) {
		t.Fatalf("status %q does not report the refusal and the revision still in force", st)
	}
}
