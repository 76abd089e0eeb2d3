package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/regtest"
)

// TestRecordsStoreDown stops the gateway's PostgreSQL in the middle of a scenario: a push
// to a fail-closed environment is refused with a clear 503 and nothing of it is stored,
// a fail-open environment warns, pulls keep working, and once PostgreSQL is back pushes
// are accepted again without a restart.
func TestRecordsStoreDown(t *testing.T) {
	pg := startPrivatePostgres(t)
	reg := regtest.Registry(t)
	dir := t.TempDir()
	policyPath := filepath.Join(dir, "policy.yaml")
	writeFile(t, policyPath, []byte(`version: 1
environments:
  - {name: prod, repositories: ["prod/**"], failMode: closed}
  - {name: dev, repositories: ["dev/**"], failMode: open}
rules:
  - {id: immutable-tags, type: immutable, mode: block}
`))
	cfg := filepath.Join(dir, "portcullis.yaml")
	writeFile(t, cfg, []byte(fmt.Sprintf("records:\n  postgres:\n    url: %q\n", pg.url())))
	gw := startGateway(t, "--config", cfg, "--policy", policyPath, "--upstream", reg)
	base := "http://" + gw.addr

	push := func(repo, tag string, img image) (int, string) {
		uploadBlob(t, base, repo, img.layer)
		uploadBlob(t, base, repo, img.config)
		return putManifest(t, base, repo, tag, mediaManifest, img.manifest)
	}
	pull := func(repo, ref string) int {
		code, _, _ := rawDo(t, http.MethodGet, base+"/v2/"+repo+"/manifests/"+ref, nil, map[string]string{"Accept": mediaManifest})
		return code
	}
	first := newImage(t)
	if code, body := push("prod/app", "1.0.0", first); code != http.StatusCreated {
		t.Fatalf("push with PostgreSQL up: %d %s", code, body)
	}
	if code := pull("prod/app", "1.0.0"); code != http.StatusOK {
		t.Fatalf("pull with PostgreSQL up: %d", code)
	}

	pg.stop(t)
	second := newImage(t)
	code, body := push("prod/app", "1.0.1", second)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "the records store (tag ledger, first sightings, baselines, decisions) is unavailable") || !strings.Contains(body, "environment prod fails closed") {
		t.Fatalf("push to a fail-closed environment with PostgreSQL down: %d %s, want 503 saying the records store is unavailable", code, body)
	}
	// By digest, no tag to check: the decision itself cannot be recorded.
	code, body = push("prod/app", sha256Digest(second.manifest), second)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "this push cannot be recorded") || !strings.Contains(body, "nothing was stored") {
		t.Fatalf("push by digest to a fail-closed environment with PostgreSQL down: %d %s, want 503", code, body)
	}
	if d, code := headDigest(t, reg, "prod/app", sha256Digest(second.manifest)); code != http.StatusNotFound {
		t.Fatalf("the refused push by digest was stored upstream: %d %s", code, d)
	}
	if d, code := headDigest(t, reg, "prod/app", "1.0.1"); code != http.StatusNotFound {
		t.Fatalf("the refused push was stored upstream: %d %s", code, d)
	}
	if code, body := push("dev/app", "1.0.0", newImage(t)); code != http.StatusCreated {
		t.Fatalf("push to a fail-open environment with PostgreSQL down: %d %s, want 201 with a warning", code, body)
	}
	for _, ref := range []string{"1.0.0", sha256Digest(first.manifest)} {
		if code := pull("prod/app", ref); code != http.StatusOK {
			t.Fatalf("pull of prod/app:%s with PostgreSQL down: %d, want 200", ref, code)
		}
	}
	if code := httpStatus(gw.url("/readyz")); code != http.StatusOK {
		t.Fatalf("readyz with PostgreSQL down: %d; pulls still work, the replica must stay in service", code)
	}

	pg.start(t)
	var last string
	if !poll(30*time.Second, func() bool {
		code, body := push("prod/app", "1.0.1", second)
		last = fmt.Sprint(code, " ", body)
		return code == http.StatusCreated
	}) {
		t.Fatalf("push after PostgreSQL came back: %s", last)
	}
	out, _ := runTool(t, gatewayBin, "decisions", "list", "--postgres-url", pg.url(), "--repository", "prod/app", "--output", "json")
	var ds []struct{ Reference, Action, Verdict string }
	if err := json.Unmarshal([]byte(out), &ds); err != nil {
		t.Fatal(err)
	}
	var pushes []string
	for _, d := range ds {
		if d.Action == "push" {
			pushes = append(pushes, d.Reference+"="+d.Verdict)
		}
	}
	// Newest first: the refused push could not be recorded (the store was down).
	if strings.Join(pushes, ",") != "1.0.1=allow,1.0.0=allow" {
		t.Fatalf("recorded pushes %v, want 1.0.1=allow,1.0.0=allow", pushes)
	}
}
