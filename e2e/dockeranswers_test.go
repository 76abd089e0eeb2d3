package e2e

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/internal/scantest"
)

// keyDockerfile adds a private key to an image; it runs nothing.
const keyDockerfile = "FROM scratch\nCOPY deploy-key.pem /app/deploy-key.pem\nUSER 65532"

// keyFiles is a build context holding a fresh private key.
func keyFiles(t *testing.T) map[string][]byte {
	key, _ := scantest.PrivateKeyPEM(t)
	return map[string][]byte{"deploy-key.pem": []byte(key)}
}

// TestDockerShowsNoWarnings: a rule in warn mode lets docker push and pull an image with a
// private key in dev, and the gateway sends the Warning header on both (a relay on the
// wire between docker and the gateway records it), but docker prints none of it. This is
// why `portcullis check` exists.
func TestDockerShowsNoWarnings(t *testing.T) {
	d := requireDocker(t)
	gw, audit := dockerGateway(t)
	wire := startRelay(t, gw.url(""))
	name := "dev/" + d.run + "/keyed"
	ref := wire.addr + "/" + name + ":1.0.0"
	d.build(t, ref, "", keyDockerfile, keyFiles(t))

	// The Warning headers of the manifest responses answered 200 or 201 to methods.
	manifestWarnings := func(methods ...string) []string {
		var out []string
		for _, r := range wire.responses(func(r relayed) bool {
			return slices.Contains(methods, r.Method) && strings.HasPrefix(r.Path, "/v2/"+name+"/manifests/") && r.Status/100 == 2
		}) {
			out = append(out, r.Warnings...)
		}
		return out
	}
	// checkSilent: the gateway sent at least n warnings, each naming the rule and the file,
	// and docker printed none of them.
	checkSilent := func(action, out string, sent []string, n int) {
		t.Helper()
		t.Logf("docker %s of an image with a warning prints:\n%s", action, out)
		if len(sent) < n || slices.ContainsFunc(sent, func(w string) bool {
			return !strings.HasPrefix(w, `299 - "[dev-secrets]`) || !strings.Contains(w, "/app/deploy-key.pem")
		}) {
			t.Fatalf("the gateway sent docker's %s the Warning headers %q, want %d naming [dev-secrets] and the key file", action, sent, n)
		}
		for _, s := range []string{"dev-secrets", "deploy-key.pem", "secret", "arning"} {
			if strings.Contains(out, s) {
				t.Errorf("docker %s prints %q: docker 20.10 shows Warning headers after all, update docs/CLIENTS.md:\n%s", action, s, out)
			}
		}
		if ev := lastDecision(t, audit, action, name, "1.0.0"); ev.Verdict != "warn" {
			t.Errorf("audit of the %s: %+v, want warn", action, ev)
		}
	}

	out := d.must(t, "push", ref)
	checkSilent("push", out, manifestWarnings(http.MethodPut), 1)

	d.must(t, "rmi", ref)
	out = d.must(t, "pull", ref)
	// docker pulls with HEAD by tag, then GET by digest: both answers carry the warning.
	checkSilent("pull", out, manifestWarnings(http.MethodHead, http.MethodGet), 2)
}

// TestDockerLastingRefusal: the starter policy with no vulnerability database imported.
// Scanning cannot run until the platform team acts, and prod fails closed: a prod push and
// a prod pull (of an image pushed around the gateway) are answered DENIED, which docker
// prints, saying what is missing and who must act, with no server path.
func TestDockerLastingRefusal(t *testing.T) {
	d := requireDocker(t)
	reg := regtest.Registry(t)
	dir := t.TempDir()
	gw := startGateway(t, "--policy", "starter", "--upstream", reg, "--data-dir", filepath.Join(dir, "data"))
	name := "prod/" + d.run + "/api"
	ref := gw.addr + "/" + name + ":1.0.0"
	d.importImage(t, ref, map[string][]byte{"etc/hello.txt": []byte("hello from " + d.run + "\n")})
	wants := []string{"denied: Vulnerability scanning cannot run; the platform team must act: ", "no vulnerability database is imported",
		"portcullis db import", "retrying will not help",
		// the image is named as the client addressed it, host included
		"could not scan " + gw.addr + "/" + name + "@sha256:"}

	out := d.refuses(t, "push", ref)
	wantPrinted(t, "prod push without a database", out, wants...)
	if strings.Contains(out, dir) {
		t.Errorf("docker prints a server path:\n%s", out)
	}

	around := strings.TrimPrefix(reg, "http://") + "/" + name + ":1.0.0"
	d.must(t, "tag", ref, around)
	d.must(t, "push", around)
	d.must(t, "rmi", ref, around)
	out = d.refuses(t, "pull", ref)
	wantPrinted(t, "prod pull without a database", out, append([]string{
		// docker's pull wraps every DENIED in this misleading sentence, then prints the message.
		"Error response from daemon: pull access denied for " + gw.addr + "/" + name + ", repository does not exist or may require 'docker login': denied: "}, wants...)...)
	if strings.Contains(out, dir) {
		t.Errorf("docker prints a server path:\n%s", out)
	}
	// docker resolves with HEAD, which has no body, then GETs the same tag for the message:
	// one docker pull, two refusals in the access log.
	for _, method := range []string{http.MethodHead, http.MethodGet} {
		if len(gw.log.awaitRequests(1, func(e logEntry) bool {
			return e.Method == method && e.Path == "/v2/"+name+"/manifests/1.0.0" && e.Status == http.StatusForbidden
		})) == 0 {
			t.Errorf("no %s %s/manifests/1.0.0 answered 403 in the gateway's log", method, name)
		}
	}
	denies := 0
	for _, e := range decisions(t, filepath.Join(dir, "data", "audit.log")) {
		if e.Action == "pull" && e.Repository == name && e.Verdict == "deny" {
			denies++
		}
	}
	if denies != 2 {
		t.Errorf("%d pull denials of %s audited for one docker pull, want 2 (HEAD and GET)", denies, name)
	}
	if gw.log.contains("upstream error") {
		t.Errorf("the gateway logged its own refusal as an upstream error:\n%s", gw.log.tail(20))
	}
}

// TestDockerRetryableRefusal: the first pull of an image that never came through the
// gateway, in prod (unscanned: {wait: 0s, then: retry}), while its scan cannot finish (a
// relay between the gateway and its upstream holds the layer): 503 "being scanned" with
// Retry-After, of which docker prints only the status. Once the scan can run, the next
// pull is denied for the key the image holds, which docker prints. Then the upstream goes
// away: docker's pull and push get the gateway's 503 UNAVAILABLE.
func TestDockerRetryableRefusal(t *testing.T) {
	d := requireDocker(t)
	reg := regtest.Registry(t)
	up := startRelay(t, reg)
	gw, audit := dockerGateway(t, "--upstream", "http://"+up.addr)
	name := "prod/" + d.run + "/api"
	around := strings.TrimPrefix(reg, "http://") + "/" + name + ":1.0.0"
	d.build(t, around, "", keyDockerfile, keyFiles(t))
	d.must(t, "push", around)
	d.must(t, "rmi", around)

	// Hold the layer (not the configuration, which the gateway reads before it waits).
	_, raw, _ := rawDo(t, http.MethodGet, reg+"/v2/"+name+"/manifests/1.0.0", nil, map[string]string{"Accept": manifestAccept})
	var m manifestDoc
	if err := json.Unmarshal([]byte(raw), &m); err != nil || len(m.Layers) != 1 {
		t.Fatalf("the image's manifest in the registry: %v\n%s", err, raw)
	}
	up.holdBlob(m.Layers[0].Digest)
	ref := gw.addr + "/" + name + ":1.0.0"
	out := d.refuses(t, "pull", ref)
	// docker prints the status line, and with it the gateway's reason phrase.
	wantPrinted(t, "pull while the scan runs", out, "received unexpected HTTP status: 503 could not decide: Image inspection is still running; retry in 30s")
	code, body, h := rawDo(t, http.MethodGet, gw.url("/v2/"+name+"/manifests/1.0.0"), nil, map[string]string{"Accept": manifestAccept})
	if code != http.StatusServiceUnavailable || h.Get("Retry-After") != "30" || !strings.Contains(body, "being scanned") {
		t.Errorf("the same pull over HTTP: %d, Retry-After %q, body %s; want 503 being scanned with Retry-After: 30", code, h.Get("Retry-After"), body)
	}
	t.Logf("what docker does not print: Retry-After %s, %s", h.Get("Retry-After"), body)
	if strings.Contains(out, "being scanned") {
		t.Errorf("docker prints the 503's message after all, update docs/CLIENTS.md:\n%s", out)
	}
	var undecided bool
	for _, e := range readUndecided(t, audit) {
		undecided = undecided || e.Repository == name && e.Action == "pull" && e.FailMode == "closed" && strings.Contains(e.Undecided, "being scanned")
	}
	if !undecided {
		t.Error("no audit event of the pull saying the image is being scanned and prod fails closed")
	}
	if !gw.log.contains("could not decide; refused until the check can run") || gw.log.contains("upstream error") {
		t.Errorf("the gateway does not log the 503 as could-not-decide, or logs it as an upstream error:\n%s", gw.log.tail(20))
	}

	if up.release() == 0 {
		t.Fatal("the relay held no layer read: the scan did not wait on it")
	}
	if !poll(time.Minute, func() bool { c, _ := served(t, gw, name, "1.0.0"); return c != http.StatusServiceUnavailable }) {
		t.Fatal("the pull still answers 503 a minute after the layer could be read")
	}
	out = d.refuses(t, "pull", ref)
	wantPrinted(t, "pull after the scan", out, "Error response from daemon: pull access denied for "+gw.addr+"/"+name+", repository does not exist or may require 'docker login': denied: denied by policy (environment prod): [prod-secrets] 1 secret(s): private-key in /app/deploy-key.pem")

	up.down()
	out = d.refuses(t, "pull", ref)
	wantPrinted(t, "pull with the upstream down", out, "received unexpected HTTP status: 503 upstream registry unreachable; retry later")
	d.importImage(t, gw.addr+"/"+name+":1.0.1", map[string][]byte{"etc/hello.txt": []byte("hello from " + d.run + "\n")})
	out = d.refuses(t, "push", gw.addr+"/"+name+":1.0.1")
	wantPrinted(t, "push with the upstream down", out, "503 upstream registry unreachable; retry later")
}

// TestDockerManifestListAcrossRepositories: `docker manifest push` of a list whose entries
// live in another repository copies them, by digest, into the list's repository. An image
// with a private key, accepted in dev with a warning, cannot reach prod that way: the copy
// of the entry is judged as a prod push and denied, docker prints it, and prod serves
// neither the list nor the entry.
func TestDockerManifestListAcrossRepositories(t *testing.T) {
	d := requireDocker(t)
	gw, audit := dockerGateway(t)
	devName, prodName := "dev/"+d.run+"/keyed", "prod/"+d.run+"/keyed"
	dev := gw.addr + "/" + devName + ":1.0.0"
	d.build(t, dev, "", keyDockerfile, keyFiles(t))
	entry := digestOf(d.must(t, "push", dev))

	d.must(t, "manifest", "create", "--insecure", gw.addr+"/"+prodName+":1.0.0", dev)
	out := d.refuses(t, "manifest", "push", "--purge", "--insecure", gw.addr+"/"+prodName+":1.0.0")
	wantPrinted(t, "list with a dev entry pushed to prod", out,
		"failed to put manifest "+gw.addr+"/"+prodName+"@"+entry+": denied: denied by policy (environment prod): [prod-secrets]")
	if ev := lastDecision(t, audit, "push", prodName, entry); ev.Verdict != "deny" {
		t.Errorf("audit of the entry's copy into prod: %+v, want deny", ev)
	}
	for _, ref := range []string{"1.0.0", entry} {
		if code, _ := served(t, gw, prodName, ref); code == http.StatusOK {
			t.Errorf("prod serves %s:%s", prodName, ref)
		}
	}
}
