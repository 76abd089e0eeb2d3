package gate

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/scantest"
)

// TestInspectConfigStopsAtItsBudget: a configuration whose search is cut short by the
// caller's budget is an error (not checked), never evidence with no secrets.
func TestInspectConfigStopsAtItsBudget(t *testing.T) {
	key, _ := scantest.PrivateKeyPEM(t)
	blob, err := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Labels": map[string]string{"key": key, "x": strings.Repeat("AKIA", 20000)}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{}}})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := inspectConfig(context.Background(), blob)
	if err != nil || len(ev.Secrets) == 0 {
		t.Fatalf("inspectConfig found %d secrets (error %v); want the private key", len(ev.Secrets), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if ev, err := inspectConfig(ctx, blob); err == nil {
		t.Fatalf("inspectConfig with its budget spent found %d secrets and no error, want an error", len(ev.Secrets))
	}
}
