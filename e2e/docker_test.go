package e2e

import (
	"encoding/json"
	"maps"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/scantest"
)

// The Docker engine (20.10) as a real client: each test asserts what docker prints and
// what the gateway decided. docker treats registries on 127.0.0.0/8 as insecure, so it
// talks plain HTTP to the gateway on its loopback port. docs/CLIENTS.md tabulates what
// docker prints for each answer; these tests are where those lines come from.

// dockerPolicy has tag rules everywhere, prod blocking and dev warning about secrets in
// layers, and prod answering the first pull of an image never scanned with "retry".
const dockerPolicy = `version: 1
exceptionProcess: "ask the platform team"
environments:
  - name: prod
    repositories: ["prod/**"]
    failMode: closed
    unscanned: {wait: 0s, then: retry}
  - name: dev
    repositories: ["**"]
    failMode: open
rules:
  - {id: no-latest, type: tag, mode: block, forbidden: [latest]}
  - {id: immutable-tags, type: immutable, mode: block}
  - {id: prod-secrets, type: secret, mode: block, environments: [prod]}
  - {id: dev-secrets, type: secret, mode: warn, environments: [dev]}
`

// dockerGateway starts a gateway enforcing dockerPolicy, with extra flags, and returns it
// with the path of its audit log.
func dockerGateway(t *testing.T, extra ...string) (*gateway, string) {
	t.Helper()
	dir := t.TempDir()
	policyPath := filepath.Join(dir, "policy.yaml")
	writeFile(t, policyPath, []byte(dockerPolicy))
	data := filepath.Join(dir, "data")
	gw := startGateway(t, append([]string{"--policy", policyPath, "--data-dir", data}, extra...)...)
	return gw, filepath.Join(data, "audit.log")
}

// manifestAccept is what docker 20.10 accepts for a manifest.
const manifestAccept = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, " +
	mediaManifest + ", application/vnd.oci.image.index.v1+json"

// served returns the status and the digest a GET of repo:ref through the gateway answers.
func served(t *testing.T, gw *gateway, repo, ref string) (int, string) {
	t.Helper()
	code, _, h := rawDo(t, http.MethodGet, gw.url("/v2/"+repo+"/manifests/"+ref), nil, map[string]string{"Accept": manifestAccept})
	return code, h.Get("Docker-Content-Digest")
}

// wantPrinted fails the test for each of wants that docker's output out lacks.
func wantPrinted(t *testing.T, what, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("%s: docker does not print %q:\n%s", what, w, out)
		}
	}
}

// manifestPuts counts the gateway's access-log entries of PUT repo/manifests/ref answered
// status, waiting (briefly) for n of them.
func manifestPuts(gw *gateway, n int, repo, ref string, status int) int {
	return len(gw.log.awaitRequests(n, func(e logEntry) bool {
		return e.Method == http.MethodPut && e.Path == "/v2/"+repo+"/manifests/"+ref && e.Status == status
	}))
}

// TestDockerPushVerdicts: docker push through the gateway of `latest` (denied), a version
// tag (accepted), the same image again (accepted), another image under that tag (denied),
// and an image holding a private key in prod (denied). Each denial's text is what docker
// prints; the gateway's log and audit show what it decided.
func TestDockerPushVerdicts(t *testing.T) {
	d := requireDocker(t)
	gw, audit := dockerGateway(t)
	name := "dev/" + d.run + "/app"
	repo := gw.addr + "/" + name
	d.importImage(t, repo+":latest", map[string][]byte{"etc/hello.txt": []byte("hello from " + d.run + "\n")})

	// latest: denied, docker prints the gateway's message after "denied: ".
	out := d.refuses(t, "push", repo+":latest")
	wantPrinted(t, "push of latest", out, `denied: denied by policy (environment dev): [no-latest] tag "latest" is forbidden`,
		"push an immutable tag such as 1.4.2", "To request an exception: ask the platform team")
	if manifestPuts(gw, 1, name, "latest", http.StatusForbidden) != 1 {
		t.Errorf("no PUT %s/manifests/latest answered 403 in the gateway's log", name)
	}
	if ev := lastDecision(t, audit, "push", name, "latest"); ev.Verdict != "deny" {
		t.Errorf("audit of the push of latest: %+v, want deny", ev)
	}

	// A version tag: accepted; docker prints the digest the gateway serves.
	d.must(t, "tag", repo+":latest", repo+":1.0.0")
	out = d.must(t, "push", repo+":1.0.0")
	digest := digestOf(out)
	if !strings.HasPrefix(digest, "sha256:") {
		t.Fatalf("docker push printed no digest:\n%s", out)
	}
	if code, got := served(t, gw, name, "1.0.0"); code != http.StatusOK || got != digest {
		t.Fatalf("after the push the gateway serves %s:1.0.0 as %d %s, want 200 %s", name, code, got, digest)
	}
	if ev := lastDecision(t, audit, "push", name, "1.0.0"); ev.Verdict != "allow" || ev.Digest != digest {
		t.Errorf("audit of the push of 1.0.0: %+v, want allow of %s", ev, digest)
	}

	// The identical image again: docker PUTs the manifest again, the gateway accepts it.
	out = d.must(t, "push", repo+":1.0.0")
	if got := digestOf(out); got != digest {
		t.Errorf("re-push printed digest %q, want %s:\n%s", got, digest, out)
	}
	if n := manifestPuts(gw, 2, name, "1.0.0", http.StatusCreated); n != 2 {
		t.Errorf("%d PUTs of %s/manifests/1.0.0 answered 201, want 2 (the push and the identical re-push)", n, name)
	}

	// Another image under the same tag: denied, naming the digest the tag keeps.
	d.importImage(t, repo+":1.0.0", map[string][]byte{"etc/hello.txt": []byte("another image of " + d.run + "\n")})
	out = d.refuses(t, "push", repo+":1.0.0")
	wantPrinted(t, "tag move", out, "denied: denied by policy (environment dev): [immutable-tags] tag 1.0.0 already points at "+digest,
		"re-push the same image (an identical digest is accepted)")
	if code, got := served(t, gw, name, "1.0.0"); code != http.StatusOK || got != digest {
		t.Errorf("after the refused move %s:1.0.0 is %d %s, want still %s", name, code, got, digest)
	}

	// A private key added with COPY, pushed to prod: denied naming the file, not the key.
	key, keyBody := scantest.PrivateKeyPEM(t)
	prodName := "prod/" + d.run + "/api"
	prod := gw.addr + "/" + prodName
	d.build(t, prod+":1.0.0", "", "FROM scratch\nCOPY deploy-key.pem /app/deploy-key.pem\nUSER 65532", map[string][]byte{"deploy-key.pem": []byte(key)})
	out = d.refuses(t, "push", prod+":1.0.0")
	wantPrinted(t, "push of a secret", out, "denied: denied by policy (environment prod): [prod-secrets] 1 secret(s): private-key in /app/deploy-key.pem",
		"rotate the credential")
	if strings.Contains(out, keyBody[:64]) {
		t.Error("docker prints the private key's body")
	}
	if code, _ := served(t, gw, prodName, "1.0.0"); code != http.StatusNotFound {
		t.Errorf("the refused %s:1.0.0 answers %d, want 404", prodName, code)
	}
	if ev := lastDecision(t, audit, "push", prodName, "1.0.0"); ev.Verdict != "deny" {
		t.Errorf("audit of the push of a secret: %+v, want deny", ev)
	}
}

// TestDockerPullBack pushes an image with docker, removes it from the engine and pulls it
// back through the gateway by tag, then by digest.
func TestDockerPullBack(t *testing.T) {
	d := requireDocker(t)
	gw, audit := dockerGateway(t)
	name := "dev/" + d.run + "/app"
	repo := gw.addr + "/" + name
	d.importImage(t, repo+":1.0.0", map[string][]byte{"etc/hello.txt": []byte("pull me back, " + d.run + "\n")})
	digest := digestOf(d.must(t, "push", repo+":1.0.0"))
	d.must(t, "rmi", repo+":1.0.0")

	out := d.must(t, "pull", repo+":1.0.0")
	wantPrinted(t, "pull by tag", out, "Digest: "+digest, "Status: Downloaded newer image for "+repo+":1.0.0")
	if got := d.must(t, "image", "inspect", "--format", "{{json .RepoDigests}}", repo+":1.0.0"); !strings.Contains(got, repo+"@"+digest) {
		t.Errorf("the pulled image's RepoDigests are %s, want %s@%s", got, repo, digest)
	}
	if ev := lastDecision(t, audit, "pull", name, "1.0.0"); ev.Verdict != "allow" || ev.Digest != digest {
		t.Errorf("audit of the pull by tag: %+v, want allow of %s", ev, digest)
	}

	d.must(t, "rmi", repo+":1.0.0")
	out = d.must(t, "pull", repo+"@"+digest)
	wantPrinted(t, "pull by digest", out, "Digest: "+digest, "Status: Downloaded newer image for "+repo+"@"+digest)
	if ev := lastDecision(t, audit, "pull", name, digest); ev.Verdict != "allow" {
		t.Errorf("audit of the pull by digest: %+v, want allow", ev)
	}
	gets := gw.log.awaitRequests(1, func(e logEntry) bool {
		return e.Method == http.MethodGet && e.Path == "/v2/"+name+"/manifests/"+digest && e.Status == http.StatusOK
	})
	if len(gets) == 0 {
		t.Errorf("no GET %s/manifests/%s answered 200 in the gateway's log", name, digest)
	}
}

// TestDockerManifestList builds two single-platform images with the classic builder
// (--platform linux/amd64 and linux/arm64), pushes them, and makes a manifest list of
// them with docker's own client: `docker manifest create` and `docker manifest push`
// (experimental in 20.10, enabled with DOCKER_CLI_EXPERIMENTAL=enabled) work through the
// gateway. docker pulls the list back and picks the entry of the platform it asks for.
func TestDockerManifestList(t *testing.T) {
	d := requireDocker(t)
	gw, audit := dockerGateway(t)
	name := "dev/" + d.run + "/multi"
	repo := gw.addr + "/" + name
	platforms := map[string]string{}
	for _, arch := range []string{"amd64", "arm64"} {
		d.build(t, repo+":1.0.0-"+arch, "linux/"+arch, "FROM scratch\nCOPY hello.txt /hello.txt\nUSER 65532",
			map[string][]byte{"hello.txt": []byte("hello from " + arch + ", " + d.run + "\n")})
		platforms[arch] = digestOf(d.must(t, "push", repo+":1.0.0-"+arch))
	}

	d.must(t, "manifest", "create", "--insecure", repo+":1.0.0", repo+":1.0.0-amd64", repo+":1.0.0-arm64")
	out := d.must(t, "manifest", "push", "--purge", "--insecure", repo+":1.0.0")
	list := strings.TrimSpace(out)
	if !strings.HasPrefix(list, "sha256:") {
		t.Fatalf("docker manifest push printed %q, want the list's digest", out)
	}
	if code, got := served(t, gw, name, "1.0.0"); code != http.StatusOK || got != list {
		t.Fatalf("the gateway serves %s:1.0.0 as %d %s, want 200 and the list %s", name, code, got, list)
	}
	_, body, _ := rawDo(t, http.MethodGet, gw.url("/v2/"+name+"/manifests/"+list), nil, map[string]string{"Accept": manifestAccept})
	var idx struct {
		Manifests []struct {
			Digest   string `json:"digest"`
			Platform struct {
				Architecture string `json:"architecture"`
			} `json:"platform"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal([]byte(body), &idx); err != nil {
		t.Fatalf("the list: %v\n%s", err, body)
	}
	got := map[string]string{}
	for _, m := range idx.Manifests {
		got[m.Platform.Architecture] = m.Digest
	}
	if !maps.Equal(got, platforms) {
		t.Errorf("the list names %v, want the images pushed %v", got, platforms)
	}
	if ev := lastDecision(t, audit, "push", name, "1.0.0"); ev.Verdict != "allow" || ev.Digest != list {
		t.Errorf("audit of the list's push: %+v, want allow of %s", ev, list)
	}

	for _, arch := range []string{"amd64", "arm64"} {
		d.must(t, "rmi", "--force", repo+":1.0.0-"+arch)
	}
	for _, arch := range []string{"amd64", "arm64"} {
		out := d.must(t, "pull", "--platform", "linux/"+arch, repo+":1.0.0")
		wantPrinted(t, "pull of the list for "+arch, out, "Digest: "+list)
		if got := strings.TrimSpace(d.must(t, "image", "inspect", "--format", "{{.Architecture}}", repo+":1.0.0")); got != arch {
			t.Errorf("docker pull --platform linux/%s of the list gave an image for %s", arch, got)
		}
		if ev := lastDecision(t, audit, "pull", name, platforms[arch]); ev.Verdict != "allow" {
			t.Errorf("audit of the pull of the %s entry: %+v, want allow", arch, ev)
		}
	}
}
