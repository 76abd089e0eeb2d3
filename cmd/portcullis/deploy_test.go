package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDeployContainerd: the command writes one hosts.toml per --registry and lists them;
// a bad flag value is a usage error (exit 2) that names the flag and writes nothing.
func TestDeployContainerd(t *testing.T) {
	out := filepath.Join(t.TempDir(), "certs.d")
	var stdout, stderr bytes.Buffer
	code := run([]string{"deploy", "containerd", "--registry", "registry.example.com", "--registry", "10.0.0.7:5000",
		"--gateway", "https://gw.example.com:5000", "--out", out}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, r := range []string{"registry.example.com", "10.0.0.7:5000"} {
		p := filepath.Join(out, r, "hosts.toml")
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(b), `[host."https://gw.example.com:5000"]`) || !strings.Contains(stdout.String(), p) {
			t.Errorf("%s: %v %q; stdout %q", p, err, b, stdout.String())
		}
	}

	bad := filepath.Join(t.TempDir(), "bad")
	stdout.Reset()
	stderr.Reset()
	code = run([]string{"deploy", "containerd", "--registry", "../../etc", "--gateway", "https://gw", "--out", bad}, &stdout, &stderr)
	if _, err := os.Stat(bad); code != 2 || !strings.Contains(stderr.String(), `--registry "../../etc"`) || err == nil {
		t.Errorf("bad registry: exit %d, stderr %q, output directory exists: %v", code, stderr.String(), err == nil)
	}
}

// TestDeployContainerdPullThrough: --pull-through --config writes one file per mirrors
// entry, each naming the gateway's root (containerd's ns tells the registry).
func TestDeployContainerdPullThrough(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte("mirrors:\n  - registry: docker.io\n    repositories: [\"library/*\"]\n  - registry: ghcr.io\n    repositories: [\"**\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "certs.d")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"deploy", "containerd", "--pull-through", "--config", cfg, "--gateway", "http://gw:5000", "--out", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, r := range []string{"docker.io", "ghcr.io"} {
		b, err := os.ReadFile(filepath.Join(out, r, "hosts.toml"))
		if err != nil || !strings.Contains(string(b), `[host."http://gw:5000"]`) || strings.Contains(string(b), "override_path") {
			t.Errorf("%s: %v\n%s", r, err, b)
		}
	}
	stderr.Reset()
	if code := run([]string{"deploy", "containerd", "--config", cfg, "--gateway", "http://gw:5000", "--out", out}, &stdout, &stderr); code != 2 {
		t.Errorf("--config without --pull-through: exit %d, want 2", code)
	}
}
