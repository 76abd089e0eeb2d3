package e2e

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestMirrorClientConfigContainerd: containerd 1.6 with the hosts.toml files "portcullis
// mirror client-config" writes pulls by the SOURCE names and is served the MAPPED names
// through the gateway in front of the on-prem registry: SRC/team/app:1.0.0 comes from
// mirror/SRC/team/app (the source registry holds other bytes under that name, which a
// pull that reached it would get), docker.io/library/app:1.0.0 from
// mirror/index.docker.io/library/app (a source named by a Docker Hub alias is written
// under docker.io, the name containerd looks up). A pull the gateway refuses (an image running as root) is
// asked once and never falls through to the source, which holds the same image.
func TestMirrorClientConfigContainerd(t *testing.T) {
	c := newContainerdClient(t)
	dir := t.TempDir()
	src := startUpstream(t, filepath.Join(dir, "source"), "127.0.0.1:0")
	onprem := startUpstream(t, filepath.Join(dir, "onprem"), "127.0.0.1:0")
	gw := startGateway(t, "--upstream", "http://"+onprem.addr, "--policy", containerdPolicy(t, dir))
	ns := "mirror/" + strings.ReplaceAll(src.addr, ":", "_")

	mirrored, hub, atSource, root := newImage(t), newImage(t), newImage(t), rootImage(t)
	pushImage(t, "http://"+src.addr, "team/app", "1.0.0", atSource, nil)
	pushImage(t, "http://"+src.addr, "team/root", "1.0.0", root, nil)
	pushImage(t, "http://"+onprem.addr, ns+"/team/app", "1.0.0", mirrored, nil)
	pushImage(t, "http://"+onprem.addr, ns+"/team/root", "1.0.0", root, nil)
	pushImage(t, "http://"+onprem.addr, "mirror/index.docker.io/library/app", "1.0.0", hub, nil)

	mirrorFile := filepath.Join(dir, "mirror.yaml")
	writeFile(t, mirrorFile, []byte(`version: 1
sources:
  - registry: `+src.addr+`
    insecure: true
    repositories:
      - name: team/app
        tags: ["1.0.0"]
      - name: team/root
        tags: ["1.0.0"]
  - registry: index.docker.io
    repositories:
      - name: app
        tags: ["1.0.0"]
`))
	out := filepath.Join(dir, "clients")
	runTool(t, gatewayBin, "mirror", "client-config", "--file", mirrorFile, "--gateway", gw.url(""), "--out", out, "--format", "containerd")
	hosts := filepath.Join(out, "containerd")

	pulls := []struct{ ref, mapped, digest string }{
		{src.addr + "/team/app:1.0.0", ns + "/team/app", mirrored.digest()},
		{"docker.io/library/app:1.0.0", "mirror/index.docker.io/library/app", hub.digest()},
	}
	for _, p := range pulls {
		if stderr, err := c.pull(hosts, p.ref); err != nil {
			t.Fatalf("ctr pull %s: %v\n%s", p.ref, err, stderr)
		}
		if got := manifestRequests(t, gw, p.mapped); len(got) == 0 || got[0].Status != http.StatusOK {
			t.Errorf("ctr pull %s: the gateway answered %+v for %s, want a 200", p.ref, got, p.mapped)
		}
		list, _, _ := tryTool(c.ctr, "-a", c.addr, "-n", c.ns, "images", "ls")
		found := false
		for _, line := range strings.Split(list, "\n") {
			if f := strings.Fields(line); len(f) > 2 && f[0] == p.ref {
				found = true
				if f[2] != p.digest {
					t.Errorf("ctr pull %s got %s, want the mirrored image %s (source's is %s)", p.ref, f[2], p.digest, atSource.digest())
				}
			}
		}
		if !found {
			t.Errorf("ctr images ls after pulling %s:\n%s", p.ref, list)
		}
	}

	before := len(manifestRequests(t, gw, ns+"/team/root"))
	ref := src.addr + "/team/root:1.0.0"
	stderr, err := c.pull(hosts, ref)
	t.Logf("ctr pull %s: %v %s", ref, err, strings.TrimSpace(stderr))
	if err == nil || !strings.Contains(stderr, "403 denied by policy: [no-root]") {
		t.Errorf("ctr pull %s: %v\n%s\nwant the gateway's refusal, not the source's image", ref, err, stderr)
	}
	wantOneRefusal(t, gw, ns+"/team/root", before, http.StatusForbidden, "HTTP/1.1")
	if list, _, _ := tryTool(c.ctr, "-a", c.addr, "-n", c.ns, "images", "ls", "-q"); strings.Contains(list, "team/root") {
		t.Errorf("the refused image was pulled anyway:\n%s", list)
	}
}
