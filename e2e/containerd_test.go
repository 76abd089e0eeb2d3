package e2e

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/cosigntest"
)

// requireContainerd returns ctr and the address of a containerd answering on
// $PORTCULLIS_CONTAINERD_ADDRESS. Without them the test fails on CI (CI=true) and is
// skipped, loudly, elsewhere.
func requireContainerd(t *testing.T) (ctr, addr string) {
	t.Helper()
	addr = os.Getenv("PORTCULLIS_CONTAINERD_ADDRESS")
	ctr, err := exec.LookPath("ctr")
	why := ""
	switch {
	case err != nil:
		why = "ctr (containerd's client) is not on PATH"
	case addr == "":
		why = "PORTCULLIS_CONTAINERD_ADDRESS is not set"
	default:
		if _, stderr, err := tryTool(ctr, "-a", addr, "version"); err != nil {
			why = "containerd does not answer on " + addr + ": " + strings.TrimSpace(stderr)
		}
	}
	if why == "" {
		return ctr, addr
	}
	msg := "\n" + strings.Repeat("!", 78) + "\n" +
		"!!! CONTAINERD NOT AVAILABLE: this end-to-end test needs it and is NOT RUN.\n" +
		"!!! " + why + ".\n" +
		"!!! Start it with: eval \"$(scripts/client-daemons --print-env)\"\n" +
		strings.Repeat("!", 78)
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return "", ""
}

// containerdClient is ctr in a namespace of its own, removed with its images when the
// test ends.
type containerdClient struct {
	ctr, addr, ns string
}

func newContainerdClient(t *testing.T) containerdClient {
	t.Helper()
	ctr, addr := requireContainerd(t)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-"))
	if len(name) > 40 {
		name = name[:40]
	}
	c := containerdClient{ctr: ctr, addr: addr, ns: "portcullis-e2e-" + name + "-" + hex.EncodeToString(b)}
	t.Cleanup(func() {
		out, _, _ := tryTool(ctr, "-a", addr, "-n", c.ns, "images", "ls", "-q")
		for _, ref := range strings.Fields(out) {
			if _, e, err := tryTool(ctr, "-a", addr, "-n", c.ns, "images", "rm", "--sync", ref); err != nil {
				t.Logf("cleanup: ctr images rm %s: %v %s", ref, err, e)
			}
		}
		if _, e, err := tryTool(ctr, "-a", addr, "namespaces", "rm", c.ns); err != nil {
			t.Logf("cleanup: ctr namespaces rm %s: %v %s", c.ns, err, e)
		}
	})
	return c
}

// pull runs "ctr images pull --hosts-dir hostsDir ref" and returns its error output.
func (c containerdClient) pull(hostsDir, ref string) (stderr string, err error) {
	_, stderr, err = tryTool(c.ctr, "-a", c.addr, "-n", c.ns, "images", "pull", "--hosts-dir", hostsDir, ref)
	return stderr, err
}

// deployContainerd runs "portcullis deploy containerd" and returns the directory it wrote.
func deployContainerd(t *testing.T, registry, gatewayURL, ca string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "certs.d")
	args := []string{"deploy", "containerd", "--registry", registry, "--gateway", gatewayURL, "--out", out}
	if ca != "" {
		args = append(args, "--ca", ca)
	}
	runTool(t, gatewayBin, args...)
	return out
}

// accessEntry is one access-log line of the gateway.
type accessEntry struct {
	Msg, Method, Proto, Path, Repository, RequestID string
	Status                                          int
}

// accessLog returns the gateway's access-log lines.
func accessLog(gw *gateway) []accessEntry {
	var out []accessEntry
	for _, line := range gw.log.snapshot() {
		var e struct {
			accessEntry
			RequestID string `json:"request_id"`
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Msg == "request" {
			e.accessEntry.RequestID = e.RequestID
			out = append(out, e.accessEntry)
		}
	}
	return out
}

// manifestRequests returns the manifest requests for repo the gateway has answered so far:
// it first sends a request of its own and waits for its log line, so that every answer
// given before is in the log.
func manifestRequests(t *testing.T, gw *gateway, repo string) []accessEntry {
	t.Helper()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	sentinel := "/v2/e2e/sentinel/blobs/sha256:" + strings.Repeat(hex.EncodeToString(b), 4)
	if resp, err := http.Get(gw.url(sentinel)); err == nil {
		resp.Body.Close()
	}
	var got []accessEntry
	poll(startTimeout, func() bool {
		got = got[:0]
		seen := false
		for _, e := range accessLog(gw) {
			seen = seen || e.Path == sentinel
			if e.Repository == repo && strings.Contains(e.Path, "/manifests/") {
				got = append(got, e)
			}
		}
		return seen
	})
	return got
}

// containerdPolicy: prod/** needs a release signature; scanned/** a vulnerability scan,
// which cannot run (no database is imported); every repository refuses images that run as
// root (a rule on the image's content, which a pull by digest meets too).
func containerdPolicy(t *testing.T, dir string) string {
	t.Helper()
	release := cosigntest.NewKey(t)
	path := filepath.Join(dir, "policy.yaml")
	writeFile(t, path, []byte(`version: 1
authorities:
`+release.AuthorityYAML(t, "release")+`environments:
  - name: prod
    repositories: ["prod/**"]
  - name: scanned
    repositories: ["scanned/**"]
    failMode: closed
  - name: dev
    repositories: ["**"]
    failMode: open
rules:
  - id: prod-signatures
    type: signature
    mode: block
    environments: [prod]
    authorities: [release]
  - id: no-root
    type: config
    mode: block
    check: root
  - id: no-criticals
    type: vulnerability
    mode: block
    severity: critical
    environments: [scanned]
`))
	return path
}

// rootImage is newImage run as root.
func rootImage(t *testing.T) image {
	t.Helper()
	img := newImage(t)
	var cfg map[string]any
	if err := json.Unmarshal(img.config, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["config"] = map[string]any{"User": "0", "Cmd": []string{"/bin/true"}}
	img.config = mustJSON(t, cfg)
	img.manifest = mustJSON(t, manifestDoc{
		SchemaVersion: 2,
		MediaType:     mediaManifest,
		Config:        descriptor{MediaType: mediaConfig, Digest: sha256Digest(img.config), Size: int64(len(img.config))},
		Layers:        []descriptor{{MediaType: mediaLayer, Digest: sha256Digest(img.layer), Size: int64(len(img.layer))}},
	})
	return img
}

// containerdSetup is an upstream registry holding three images, and a gateway in front of
// it: dev/app:1.0.0 (allowed), prod/app:1.0.0 (unsigned) and dev/root (runs as root, no
// tag: pulled by digest), scanned/app:1.0.0 (cannot be decided: no vulnerability database).
type containerdSetup struct {
	up            *upstream
	gw            *gateway
	root          image
	allowedDigest string
}

func newContainerdSetup(t *testing.T, extra ...string) containerdSetup {
	t.Helper()
	dir := t.TempDir()
	up := startUpstream(t, filepath.Join(dir, "upstream"), "127.0.0.1:0")
	gw := startGateway(t, append([]string{"--upstream", "http://" + up.addr, "--policy", containerdPolicy(t, dir)}, extra...)...)
	base := "http://" + up.addr
	allowed, unsigned, root := newImage(t), newImage(t), rootImage(t)
	pushImage(t, base, "dev/app", "1.0.0", allowed, nil)
	pushImage(t, base, "prod/app", "1.0.0", unsigned, nil)
	pushImage(t, base, "dev/root", root.digest(), root, nil)
	pushImage(t, base, "scanned/app", "1.0.0", newImage(t), nil)
	return containerdSetup{up: up, gw: gw, root: root, allowedDigest: allowed.digest()}
}

// wantOneRefusal checks that the gateway answered exactly one manifest request of repo
// since the first `before` ones, with status, over proto.
func wantOneRefusal(t *testing.T, gw *gateway, repo string, before, status int, proto string) {
	t.Helper()
	got := manifestRequests(t, gw, repo)
	if len(got)-before != 1 {
		t.Errorf("the gateway answered %d manifest requests of %s for one pull, want 1: %+v", len(got)-before, repo, got[before:])
		return
	}
	if e := got[before]; e.Status != status || e.Method != http.MethodHead || e.Proto != proto {
		t.Errorf("manifest request %+v: want HEAD over %s answered %d", e, proto, status)
	}
}

// TestContainerdPullsThroughTheGateway: containerd 1.6 with the hosts.toml that
// "portcullis deploy containerd" writes pulls an allowed image through the gateway; a pull
// denied by a signature rule, a pull by digest denied by a rule on the image's content and
// a pull the gateway cannot decide (no vulnerability database) fail with the reason phrase
// in ctr's error, each asked once.
func TestContainerdPullsThroughTheGateway(t *testing.T) {
	c := newContainerdClient(t)
	s := newContainerdSetup(t)
	hosts := deployContainerd(t, s.up.addr, s.gw.url(""), "")

	if stderr, err := c.pull(hosts, s.up.addr+"/dev/app:1.0.0"); err != nil {
		t.Fatalf("allowed pull: %v\n%s", err, stderr)
	}
	if got := manifestRequests(t, s.gw, "dev/app"); len(got) == 0 || got[0].Status != http.StatusOK {
		t.Errorf("the allowed pull did not go through the gateway: %+v", got)
	}
	out, _, _ := tryTool(c.ctr, "-a", c.addr, "-n", c.ns, "images", "ls", "-q")
	if !strings.Contains(out, s.up.addr+"/dev/app:1.0.0") {
		t.Errorf("ctr images ls after the pull: %q", out)
	}

	cases := []struct {
		name, repo, ref, want string
	}{
		{"unsigned in prod", "prod/app", ":1.0.0", "403 denied by policy: [prod-signatures] "},
		{"runs as root, by digest", "dev/root", "@" + s.root.digest(), "403 denied by policy: [no-root] the image runs as root"},
		{"no vulnerability database", "scanned/app", ":1.0.0", "403 could not decide: Vulnerability scanning cannot run; the platform team must act"},
	}
	for _, tc := range cases {
		before := len(manifestRequests(t, s.gw, tc.repo))
		stderr, err := c.pull(hosts, s.up.addr+"/"+tc.repo+tc.ref)
		t.Logf("ctr pull %s (%s): %s", tc.repo+tc.ref, tc.name, strings.TrimSpace(stderr))
		if err == nil || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: ctr pull: %v\n%s\nwant a failure showing %q", tc.name, err, stderr, tc.want)
		}
		wantOneRefusal(t, s.gw, tc.repo, before, http.StatusForbidden, "HTTP/1.1")
	}
}

// writeHosts writes a hand-written hosts.toml for registry under a new certs.d directory.
func writeHosts(t *testing.T, registry, content string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "certs.d")
	if err := os.MkdirAll(filepath.Join(dir, registry), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, registry, "hosts.toml"), []byte(content))
	return dir
}

// TestContainerdHostsFileForms proves what the deploy docs say about containerd 1.6, with
// the gateway refusing prod/app:1.0.0 (unsigned):
//   - the gateway as a mirror [host] with the registry itself as server: containerd takes
//     the 403 as "try the next host" and pulls the refused image from the registry (the
//     gateway refuses the HEAD by tag, then the GET by digest: both fall through);
//   - the gateway as server alone: containerd ignores the file and pulls from the registry;
//   - the gateway as server and as [host] (the old example): refused, but asked twice;
//   - the generated file: refused, asked once.
func TestContainerdHostsFileForms(t *testing.T) {
	c := newContainerdClient(t)
	s := newContainerdSetup(t)
	ref := s.up.addr + "/prod/app:1.0.0"
	gw, up := s.gw.url(""), "http://"+s.up.addr
	forms := []struct {
		name     string
		hosts    string
		pulled   bool
		requests int
	}{
		{"gateway as mirror host", writeHosts(t, s.up.addr, "server = \""+up+"\"\n\n[host.\""+gw+"\"]\n  capabilities = [\"pull\", \"resolve\"]\n"), true, 2},
		{"gateway as server only", writeHosts(t, s.up.addr, "server = \""+gw+"\"\n"), true, 0},
		{"gateway as server and host", writeHosts(t, s.up.addr, "server = \""+gw+"\"\n\n[host.\""+gw+"\"]\n  capabilities = [\"pull\", \"resolve\"]\n"), false, 2},
		{"generated", deployContainerd(t, s.up.addr, gw, ""), false, 1},
	}
	for _, f := range forms {
		before := len(manifestRequests(t, s.gw, "prod/app"))
		stderr, err := c.pull(f.hosts, ref)
		t.Logf("%s: ctr pull: %v %s", f.name, err, strings.TrimSpace(stderr))
		if pulled := err == nil; pulled != f.pulled {
			t.Errorf("%s: pulled %v, want %v (containerd 1.6 behaves differently from what the docs say):\n%s", f.name, pulled, f.pulled, stderr)
		}
		if !f.pulled && !strings.Contains(stderr, "403 denied by policy: [prod-signatures]") {
			t.Errorf("%s: ctr's error does not show the reason phrase:\n%s", f.name, stderr)
		}
		got := manifestRequests(t, s.gw, "prod/app")[before:]
		if len(got) != f.requests {
			t.Errorf("%s: the gateway answered %d manifest requests for one pull, want %d: %+v", f.name, len(got), f.requests, got)
		}
		for _, e := range got {
			if e.Status != http.StatusForbidden {
				t.Errorf("%s: gateway answered %+v, want 403", f.name, e)
			}
		}
		if f.pulled {
			_, _, _ = tryTool(c.ctr, "-a", c.addr, "-n", c.ns, "images", "rm", "--sync", ref)
		}
	}
}

// TestContainerdOverTLS: through a TLS door, with the generated hosts.toml naming the
// gateway's CA, containerd 1.6 speaks HTTP/1.1 (its transport does not attempt HTTP/2
// though the door offers h2), so the reason phrase reaches ctr. A client that negotiates
// h2 gets the standard phrase with the same body and decision id.
func TestContainerdOverTLS(t *testing.T) {
	c := newContainerdClient(t)
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	cfg := filepath.Join(dir, "portcullis.yaml")
	writeFile(t, cfg, []byte("listeners:\n  - name: nodes\n    addr: 127.0.0.1:0\n    tls:\n      certFile: "+certFile+"\n      keyFile: "+keyFile+"\n"))
	s := newContainerdSetup(t, "--config", cfg)
	door := "https://" + s.gw.waitListening(t, "portcullis listening", "nodes")
	hosts := deployContainerd(t, s.up.addr, door, certFile)

	if stderr, err := c.pull(hosts, s.up.addr+"/dev/app:1.0.0"); err != nil {
		t.Fatalf("allowed pull over TLS: %v\n%s", err, stderr)
	}
	before := len(manifestRequests(t, s.gw, "prod/app"))
	stderr, err := c.pull(hosts, s.up.addr+"/prod/app:1.0.0")
	t.Logf("ctr pull over TLS: %s", strings.TrimSpace(stderr))
	if err == nil || !strings.Contains(stderr, "403 denied by policy: [prod-signatures] ") {
		t.Errorf("denied pull over TLS: %v\n%s\nwant the reason phrase", err, stderr)
	}
	wantOneRefusal(t, s.gw, "prod/app", before, http.StatusForbidden, "HTTP/1.1")

	h2 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	req, _ := http.NewRequest(http.MethodHead, door+"/v2/prod/app/manifests/1.0.0", nil)
	req.Header.Set("Accept", mediaManifest)
	resp, err := h2.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.Status != "403 Forbidden" || resp.Header.Get("Portcullis-Decision-Id") == "" {
		t.Errorf("HEAD over h2: %s %q, decision id %q; want HTTP/2 403 Forbidden with a decision id",
			resp.Proto, resp.Status, resp.Header.Get("Portcullis-Decision-Id"))
	}
}

// TestContainerdManifestAsBlobIsNotAWayAround: containerd 1.6 resolves a reference by
// digest through /blobs/ when /manifests/ does not answer, and the gateway streams blobs
// unjudged. A pusher who uploads a refused manifest's bytes as a blob too must still not
// get containerd to pull it as an image: the gateway serves every blob as
// application/octet-stream, which containerd records but cannot unpack or run.
func TestContainerdManifestAsBlobIsNotAWayAround(t *testing.T) {
	c := newContainerdClient(t)
	s := newContainerdSetup(t)
	uploadBlob(t, "http://"+s.up.addr, "dev/root", s.root.manifest)
	hosts := deployContainerd(t, s.up.addr, s.gw.url(""), "")
	ref := s.up.addr + "/dev/root@" + s.root.digest()
	stderr, err := c.pull(hosts, ref)
	t.Logf("ctr pull %s: %v %s", ref, err, strings.TrimSpace(stderr))
	out, _, _ := tryTool(c.ctr, "-a", c.addr, "-n", c.ns, "images", "ls")
	t.Logf("ctr images ls:\n%s", out)
	for _, e := range accessLog(s.gw) {
		if e.Repository == "dev/root" {
			t.Logf("gateway: %s %s %d", e.Method, e.Path, e.Status)
		}
	}
	if err == nil || !strings.Contains(stderr, "unexpected media type application/octet-stream") {
		t.Errorf("ctr pulled the refused image %s through its bytes uploaded as a blob: %v\n%s", ref, err, stderr)
	}
}
