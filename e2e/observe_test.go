package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// undecidedEvent is the part of an audit event that says what could not be checked.
type undecidedEvent struct {
	Type       string `json:"type"`
	Action     string `json:"action"`
	Repository string `json:"repository"`
	Reference  string `json:"reference"`
	Verdict    string `json:"verdict"`
	Undecided  string `json:"undecided"`
	FailMode   string `json:"failMode"`
}

// readUndecided reads the decision events of the audit log at path.
func readUndecided(t *testing.T, path string) []undecidedEvent {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []undecidedEvent
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var e undecidedEvent
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if e.Type == "decision" {
			out = append(out, e)
		}
	}
	return out
}

// TestObservePolicyWithoutADatabaseChangesNothing: week 1 of docs/POLICY.md#a-rollout-over-four-weeks. The gateway runs
// the built-in observe policy and no vulnerability database was ever imported: prod pushes
// and pulls go through untouched (no refusal, no warning), and each audit event says what
// could not be checked. With the starter policy the same prod push is denied, and the
// denial says first what is missing and who must act; crane prints it.
func TestObservePolicyWithoutADatabaseChangesNothing(t *testing.T) {
	crane := requireTool(t, "crane")
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	layerTar := filepath.Join(dir, "layer.tar")
	writeFile(t, layerTar, newImage(t).layerTar)

	gw := startGateway(t, "--policy", "observe", "--data-dir", data)
	ref := gw.addr + "/prod/payments/api:1.4.2"
	if _, stderr, err := tryTool(crane, "append", "--insecure", "--oci-empty-base", "-f", layerTar, "-t", ref); err != nil {
		t.Fatalf("observe policy, no database: prod push refused: %v\n%s", err, stderr)
	}
	if _, stderr, err := tryTool(crane, "pull", "--insecure", ref, filepath.Join(dir, "pulled.tar")); err != nil {
		t.Fatalf("observe policy, no database: prod pull refused: %v\n%s", err, stderr)
	}
	req, _ := http.NewRequest(http.MethodGet, gw.url("/v2/prod/payments/api/manifests/1.4.2"), nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(resp.Header.Values("Warning")) != 0 {
		t.Fatalf("observe policy: pull %s with warnings %q, want 200 and nothing shown", resp.Status, resp.Header.Values("Warning"))
	}
	var push, pull bool
	for _, e := range readUndecided(t, filepath.Join(data, "audit.log")) {
		if e.Repository != "prod/payments/api" {
			continue
		}
		if e.Verdict != "allow" || !strings.Contains(e.Undecided, "no vulnerability database is imported") || e.FailMode != "" {
			t.Errorf("audit event %+v: want allow, naming the missing database, no fail mode applied", e)
		}
		push = push || e.Action == "push"
		pull = pull || e.Action == "pull"
	}
	if !push || !pull {
		t.Fatalf("no audit events for both the push (%v) and the pull (%v)", push, pull)
	}
	if gw.log.contains("upstream error") {
		t.Errorf("the gateway logged an upstream error:\n%s", gw.log.tail(20))
	}

	// The starter policy blocks critical fixable vulnerabilities in prod: without a database
	// that cannot be checked, and prod fails closed. A 403 that says why; no 503 to retry.
	starter := startGateway(t, "--policy", "starter", "--data-dir", filepath.Join(dir, "starter"))
	_, stderr, err := tryTool(crane, "append", "--insecure", "--oci-empty-base", "-f", layerTar, "-t", starter.addr+"/prod/payments/api:1.4.2")
	if err == nil {
		t.Fatal("starter policy, no database: prod push accepted")
	}
	t.Logf("crane prints for a prod push without a database:\n%s", stderr)
	for _, want := range []string{"DENIED", "Vulnerability scanning cannot run; the platform team must act", "portcullis db import"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("crane's error lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, data) || strings.Contains(stderr, dir) {
		t.Errorf("crane's error shows a server path:\n%s", stderr)
	}
}
