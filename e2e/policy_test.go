package e2e

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// policyE2E blocks latest and tag moves everywhere, and warns about non-semver tags.
const policyE2E = `version: 1
exceptionProcess: "open a SEC ticket at https://tickets.example/SEC"
environments:
  - name: prod
    repositories: ["prod/**"]
  - name: dev
    repositories: ["**"]
    failMode: open
rules:
  - id: no-latest
    type: tag
    mode: block
    forbidden: [latest]
  - id: immutable-tags
    type: immutable
    mode: block
  - id: semver-tags
    type: tag
    mode: warn
    allowed: ['^\d+\.\d+\.\d+$']
`

// auditEvent is the part of an audit event the test reads.
type auditEvent struct {
	Type        string `json:"type"`
	Action      string `json:"action"`
	Repository  string `json:"repository"`
	Reference   string `json:"reference"`
	Verdict     string `json:"verdict"`
	Environment string `json:"environment"`
	Results     []struct {
		Rule    string `json:"rule"`
		Outcome string `json:"outcome"`
	} `json:"results"`
}

func readAudit(t *testing.T, path string) []auditEvent {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []auditEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e auditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

func TestPolicyWithCrane(t *testing.T) {
	crane := requireTool(t, "crane")
	dir := t.TempDir()
	policyPath := filepath.Join(dir, "policy.yaml")
	writeFile(t, policyPath, []byte(policyE2E))
	data := filepath.Join(dir, "data")
	gw := startGateway(t, "--policy", policyPath, "--data-dir", data)
	repo := gw.addr + "/team/app"

	first, second := newImage(t), newImage(t)
	firstTar, secondTar := filepath.Join(dir, "first.tar"), filepath.Join(dir, "second.tar")
	writeFile(t, firstTar, first.layerTar)
	writeFile(t, secondTar, second.layerTar)
	push := func(tarPath, tag string) (string, error) {
		_, stderr, err := tryTool(crane, "append", "--insecure", "--oci-empty-base", "-f", tarPath, "-t", repo+":"+tag)
		return stderr, err
	}

	// latest: denied with the rule, the fix and the exception process.
	stderr, err := push(firstTar, "latest")
	if err == nil {
		t.Fatal("pushing :latest succeeded")
	}
	for _, want := range []string{"DENIED", "[no-latest]", "push an immutable tag", "tickets.example/SEC"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("crane's error for :latest lacks %q:\n%s", want, stderr)
		}
	}
	// 1.0.0: accepted.
	if stderr, err := push(firstTar, "1.0.0"); err != nil {
		t.Fatalf("pushing :1.0.0: %v\n%s", err, stderr)
	}
	// Another image to 1.0.0: a tag move, denied.
	stderr, err = push(secondTar, "1.0.0")
	if err == nil || !strings.Contains(stderr, "[immutable-tags]") || !strings.Contains(stderr, "already points at") {
		t.Fatalf("moving :1.0.0 to another image: err %v, stderr:\n%s", err, stderr)
	}
	// The same image to 1.0.0 again: accepted (an idempotent re-push). crane sees the
	// digest is already there and skips the PUT, so also PUT the very bytes by hand.
	if stderr, err := push(firstTar, "1.0.0"); err != nil {
		t.Fatalf("re-pushing the same image to :1.0.0: %v\n%s", err, stderr)
	}
	manifest, _ := runTool(t, crane, "manifest", "--insecure", repo+":1.0.0")
	put, _ := http.NewRequest(http.MethodPut, gw.url("/v2/team/app/manifests/1.0.0"), strings.NewReader(manifest))
	put.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	if resp, err := http.DefaultClient.Do(put); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT of the same manifest to :1.0.0: %v %v, want 201", err, resp)
	} else {
		resp.Body.Close()
	}
	// A warn rule: accepted, and the pull carries a Warning header.
	if stderr, err := push(firstTar, "nightly"); err != nil {
		t.Fatalf("pushing :nightly (warn rule): %v\n%s", err, stderr)
	}
	req, _ := http.NewRequest(http.MethodGet, gw.url("/v2/team/app/manifests/nightly"), nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if w := resp.Header.Values("Warning"); resp.StatusCode != http.StatusOK || len(w) != 1 || !strings.HasPrefix(w[0], `299 - "`) || !strings.Contains(w[0], "[semver-tags]") {
		t.Fatalf("pull of :nightly: %s, Warning %q; want 200 with one 299 warning from semver-tags", resp.Status, w)
	}

	// One audit event per decision: every manifest PUT and every manifest GET/HEAD the
	// gateway judged shows up exactly once.
	puts := gw.log.awaitRequests(5, func(e logEntry) bool { return e.Route == "manifest" && e.Method == http.MethodPut })
	events := readAudit(t, filepath.Join(data, "audit.log"))
	var pushes, denied []auditEvent
	for _, e := range events {
		if e.Type == "decision" && e.Action == "push" {
			pushes = append(pushes, e)
			if e.Verdict == "deny" {
				denied = append(denied, e)
			}
		}
	}
	if len(pushes) != len(puts) || len(pushes) != 5 {
		t.Fatalf("%d push events for %d manifest PUTs, want 5 each", len(pushes), len(puts))
	}
	if len(denied) != 2 || denied[0].Reference != "latest" || denied[1].Reference != "1.0.0" {
		t.Fatalf("denied push events %+v, want latest then the 1.0.0 move", denied)
	}
	pulls := 0
	for _, e := range events {
		if e.Action == "pull" {
			pulls++
		}
	}
	// The access log travels through a pipe; wait for it to catch up with the audit log.
	gets := gw.log.awaitRequests(pulls, func(e logEntry) bool {
		return e.Route == "manifest" && (e.Method == http.MethodGet || e.Method == http.MethodHead) && e.Status == http.StatusOK
	})
	if pulls != len(gets) {
		t.Fatalf("%d pull events for %d served manifest GET/HEADs", pulls, len(gets))
	}
}
