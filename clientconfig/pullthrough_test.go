package clientconfig_test

import (
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/clientconfig"
	"github.com/portcullis-dev/portcullis/mirror"
)

func TestPullThroughFiles(t *testing.T) {
	t.Parallel()
	files, err := clientconfig.PullThrough{Registries: []string{"index.docker.io", "ghcr.io"}, Gateway: "https://gw.example.com:5000",
		CAFile: "/etc/containerd/certs.d/portcullis-ca.pem"}.Files()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[0].Path != "docker.io/hosts.toml" || files[1].Path != "ghcr.io/hosts.toml" {
		t.Fatalf("files = %v", files)
	}
	for _, f := range files {
		s := string(f.Data)
		for _, want := range []string{`server = "https://gw.example.com:5000"`, `capabilities = ["push"]`,
			`[host."https://gw.example.com:5000"]`, `capabilities = ["pull", "resolve"]`, `ca = "/etc/containerd/certs.d/portcullis-ca.pem"`, "?ns="} {
			if !strings.Contains(s, want) {
				t.Errorf("%s lacks %q:\n%s", f.Path, want, s)
			}
		}
		// One gateway host for every registry: no path, no override_path.
		if strings.Contains(s, "override_path") || strings.Contains(s, "/v2/") {
			t.Errorf("%s rewrites paths; pull-through relies on ns:\n%s", f.Path, s)
		}
	}
}

func TestPullThroughFilesErrors(t *testing.T) {
	t.Parallel()
	_, err := clientconfig.PullThrough{Registries: []string{"docker.io", "registry-1.docker.io", "https://x"}, Gateway: "ftp://gw"}.Files()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`--registry "https://x"`, `--gateway "ftp://gw"`, `--registry "registry-1.docker.io": containerd knows it as docker.io`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestMirrorPullThroughFiles(t *testing.T) {
	t.Parallel()
	f, err := mirror.ParseFile(strings.NewReader(`version: 1
sources:
  - registry: docker.io
    repositories: [{name: nginx, tags: ["1.27"]}]
  - registry: ghcr.io
    repositories: [{name: acme/tool, tags: [v1]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	files, err := clientconfig.Mirror{File: f, Gateway: "http://gw:5000"}.PullThroughFiles()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[0].Path != "containerd/docker.io/hosts.toml" || files[1].Path != "containerd/ghcr.io/hosts.toml" {
		t.Fatalf("files = %v", files)
	}
	if !strings.Contains(string(files[0].Data), `[host."http://gw:5000"]`) {
		t.Errorf("docker.io file:\n%s", files[0].Data)
	}
}
