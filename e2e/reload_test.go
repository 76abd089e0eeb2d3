package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func readyInfo(t *testing.T, gw *gateway) map[string]string {
	t.Helper()
	resp, err := http.Get(gw.adminURL("/readyz"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Info map[string]string `json:"info"`
	}
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("/readyz: %v: %s", err, body)
	}
	return st.Info
}

// pushStatus PUTs a tiny manifest (whose config blob is not needed for the decision) and
// returns the status; a denial comes before the upstream sees the manifest.
func pushStatus(t *testing.T, gw *gateway, repo, tag string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, gw.url("/v2/"+repo+"/manifests/"+tag),
		strings.NewReader(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`))
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestPolicyReloadOnChangeAndSIGHUP(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	base := "version: 1\nenvironments:\n  - name: dev\n    repositories: [\"**\"]\nrules:\n  - id: no-latest\n    type: tag\n    mode: block\n    forbidden: [latest]\n"
	writeFile(t, path, []byte(base))
	gw := startGateway(t, "--policy", path)
	if got := pushStatus(t, gw, "team/app", "nightly"); got == http.StatusForbidden {
		t.Fatal("nightly denied before any rule forbids it")
	}

	// A changed file is picked up by the watcher on its own.
	writeFile(t, path, []byte(strings.Replace(base, "forbidden: [latest]", "forbidden: [latest, nightly]", 1)))
	if !poll(20*time.Second, func() bool { return pushStatus(t, gw, "team/app", "nightly") == http.StatusForbidden }) {
		t.Fatalf("the changed policy was not applied:\n%s", gw.log.tail(20))
	}

	// A broken file is refused: the last good policy stays, and /readyz says why.
	writeFile(t, path, []byte(base+"  - id: broken\n    type: tag\n    mode: sometimes\n"))
	if err := gw.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if !poll(20*time.Second, func() bool { return strings.Contains(readyInfo(t, gw)["policy"], "refused") }) {
		t.Fatalf("/readyz does not report the refused reload: %v", readyInfo(t, gw))
	}
	if info := readyInfo(t, gw)["policy"]; !strings.Contains(info, "rules[1].mode") {
		t.Fatalf("/readyz policy detail %q lacks the problem's field path", info)
	}
	if got := pushStatus(t, gw, "team/app", "nightly"); got != http.StatusForbidden {
		t.Fatalf("after a refused reload nightly is %d; the previous policy (forbidding it) must stay in force", got)
	}

	// SIGHUP with a good file again: back to the base policy.
	writeFile(t, path, []byte(base))
	if err := gw.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if !poll(20*time.Second, func() bool { return pushStatus(t, gw, "team/app", "nightly") != http.StatusForbidden }) {
		t.Fatal("SIGHUP did not load the fixed policy")
	}
}
