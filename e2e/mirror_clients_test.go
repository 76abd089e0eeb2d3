package e2e

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// mirrorClients is a source registry, the on-prem registry holding the mirror's mapped
// names and a gateway in front of it, with the mirror file that maps them:
//   - SRC/team/app:1.0.0 is mirrored as mirror/SRC/team/app (the source holds other bytes);
//   - index.docker.io's app as mirror/index.docker.io/library/app;
//   - SRC/team/root:1.0.0 runs as root: the gateway refuses it (the source holds it too).
type mirrorClients struct {
	src, onprem                   *upstream
	gw                            *gateway
	dir, ns, file                 string
	mirrored, hub, atSource, root image
}

func newMirrorClients(t *testing.T) mirrorClients {
	t.Helper()
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
	return mirrorClients{src: src, onprem: onprem, gw: gw, dir: dir, ns: ns, file: mirrorFile,
		mirrored: mirrored, hub: hub, atSource: atSource, root: root}
}

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
	m := newMirrorClients(t)
	out := filepath.Join(m.dir, "clients")
	runTool(t, gatewayBin, "mirror", "client-config", "--file", m.file, "--gateway", m.gw.url(""), "--out", out, "--format", "containerd")
	hosts := filepath.Join(out, "containerd")

	pulls := []struct{ ref, mapped, digest string }{
		{m.src.addr + "/team/app:1.0.0", m.ns + "/team/app", m.mirrored.digest()},
		{"docker.io/library/app:1.0.0", "mirror/index.docker.io/library/app", m.hub.digest()},
	}
	for _, p := range pulls {
		if stderr, err := c.pull(hosts, p.ref); err != nil {
			t.Fatalf("ctr pull %s: %v\n%s", p.ref, err, stderr)
		}
		if got := manifestRequests(t, m.gw, p.mapped); len(got) == 0 || got[0].Status != http.StatusOK {
			t.Errorf("ctr pull %s: the gateway answered %+v for %s, want a 200", p.ref, got, p.mapped)
		}
		list, _, _ := tryTool(c.ctr, "-a", c.addr, "-n", c.ns, "images", "ls")
		found := false
		for _, line := range strings.Split(list, "\n") {
			if f := strings.Fields(line); len(f) > 2 && f[0] == p.ref {
				found = true
				if f[2] != p.digest {
					t.Errorf("ctr pull %s got %s, want the mirrored image %s (source's is %s)", p.ref, f[2], p.digest, m.atSource.digest())
				}
			}
		}
		if !found {
			t.Errorf("ctr images ls after pulling %s:\n%s", p.ref, list)
		}
	}

	before := len(manifestRequests(t, m.gw, m.ns+"/team/root"))
	ref := m.src.addr + "/team/root:1.0.0"
	stderr, err := c.pull(hosts, ref)
	t.Logf("ctr pull %s: %v %s", ref, err, strings.TrimSpace(stderr))
	if err == nil || !strings.Contains(stderr, "403 denied by policy: [no-root]") {
		t.Errorf("ctr pull %s: %v\n%s\nwant the gateway's refusal, not the source's image", ref, err, stderr)
	}
	wantOneRefusal(t, m.gw, m.ns+"/team/root", before, http.StatusForbidden, "HTTP/1.1")
	if list, _, _ := tryTool(c.ctr, "-a", c.addr, "-n", c.ns, "images", "ls", "-q"); strings.Contains(list, "team/root") {
		t.Errorf("the refused image was pulled anyway:\n%s", list)
	}
}

// TestMirrorClientConfigRegistriesConf: skopeo (containers/image, the library of CRI-O and
// podman) reading the registries.conf "portcullis mirror client-config" writes inspects
// SRC/team/app:1.0.0 and docker.io/app:1.0.0 (normalised to docker.io/library/app) and is
// served the mirrored images from the gateway over plain HTTP (insecure = true). The image
// the gateway refuses is refused to skopeo, even allowed to reach the source over plain
// HTTP: registries.conf's location replaces the registry, nothing falls through.
func TestMirrorClientConfigRegistriesConf(t *testing.T) {
	skopeo := requireTool(t, "skopeo")
	m := newMirrorClients(t)
	out := filepath.Join(m.dir, "clients")
	runTool(t, gatewayBin, "mirror", "client-config", "--file", m.file, "--gateway", m.gw.url(""), "--out", out, "--format", "registries.conf")
	conf := "--registries-conf=" + filepath.Join(out, "registries.conf") // podman: $CONTAINERS_REGISTRIES_CONF
	// --no-tags: skopeo 1.9 lists a repository's tags from the registry as named, not
	// through registries.conf; pulls and manifest reads follow it.

	inspects := []struct{ ref, mapped, digest string }{
		{m.src.addr + "/team/app:1.0.0", m.ns + "/team/app", m.mirrored.digest()},
		{"docker.io/app:1.0.0", "mirror/index.docker.io/library/app", m.hub.digest()},
	}
	for _, in := range inspects {
		stdout, stderr, err := tryTool(skopeo, conf, "inspect", "--no-tags", "--format", "{{.Digest}}", "docker://"+in.ref)
		if err != nil {
			t.Fatalf("skopeo inspect %s: %v\n%s", in.ref, err, stderr)
		}
		if got := strings.TrimSpace(stdout); got != in.digest {
			t.Errorf("skopeo inspect %s: %s, want the mirrored image %s (source's is %s)", in.ref, got, in.digest, m.atSource.digest())
		}
		if got := manifestRequests(t, m.gw, in.mapped); len(got) == 0 || got[0].Status != http.StatusOK {
			t.Errorf("skopeo inspect %s: the gateway answered %+v for %s, want a 200", in.ref, got, in.mapped)
		}
	}

	before := len(manifestRequests(t, m.gw, m.ns+"/team/root"))
	ref := m.src.addr + "/team/root:1.0.0"
	stdout, stderr, err := tryTool(skopeo, conf, "inspect", "--no-tags", "--tls-verify=false", "--format", "{{.Digest}}", "docker://"+ref)
	t.Logf("skopeo inspect %s: %v %s", ref, err, strings.TrimSpace(stderr))
	if err == nil || strings.Contains(stdout, m.root.digest()) || !strings.Contains(stderr, "denied") {
		t.Errorf("skopeo inspect %s: %v %q\n%s\nwant the gateway's refusal, not the source's image", ref, err, stdout, stderr)
	}
	got := manifestRequests(t, m.gw, m.ns+"/team/root")[before:]
	if len(got) == 0 {
		t.Error("the refused inspect did not reach the gateway")
	}
	for _, e := range got {
		if e.Status != http.StatusForbidden {
			t.Errorf("gateway answered %+v, want 403", e)
		}
	}
}
