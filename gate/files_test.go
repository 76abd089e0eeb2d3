package gate_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/gate"
)

func TestFileOptionsGlobRelativeToThePolicy(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"exceptions/b.yaml", "exceptions/a.yaml", "exceptions/sub/c.yaml"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), []byte("[]"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "exceptions", "d.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	opts := gate.FileOptions(filepath.Join(dir, "policy.yaml"))
	got, err := opts.Glob("exceptions/*.yaml")
	if err != nil || strings.Join(got, " ") != "exceptions/a.yaml exceptions/b.yaml" {
		t.Errorf("relative: %v %v (directories are skipped, names stay relative)", got, err)
	}
	abs := filepath.ToSlash(filepath.Join(dir, "exceptions", "sub", "*.yaml"))
	if got, err := opts.Glob(abs); err != nil || len(got) != 1 || got[0] != filepath.Join(dir, "exceptions", "sub", "c.yaml") {
		t.Errorf("absolute: %v %v", got, err)
	}
	if data, err := opts.ReadFile("exceptions/a.yaml"); err != nil || string(data) != "[]" {
		t.Errorf("ReadFile relative to the policy: %q %v", data, err)
	}
}
