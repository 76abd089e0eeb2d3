package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMirrorClientConfig: the command writes the files of the chosen format and lists
// them, warns about a repository containerd cannot rewrite, and refuses bad flags (exit 2,
// naming the flag, writing nothing) and an invalid mirror file (exit 1, with field paths).
func TestMirrorClientConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "mirror.yaml")
	if err := os.WriteFile(file, []byte(`version: 1
sources:
  - registry: docker.io
    repositories:
      - {name: nginx, tags: ["1"]}
      - {name: bitnami/redis, tags: ["7"], as: team/redis}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		format string
		want   []string
	}{
		{"both", []string{"containerd/docker.io/hosts.toml", "registries.conf"}},
		{"containerd", []string{"containerd/docker.io/hosts.toml"}},
		{"registries.conf", []string{"registries.conf"}},
	} {
		out := filepath.Join(t.TempDir(), "clients")
		var stdout, stderr bytes.Buffer
		code := run([]string{"mirror", "client-config", "--file", file, "--gateway", "https://gw:5000", "--out", out, "--format", tc.format}, &stdout, &stderr)
		if code != 0 {
			t.Fatalf("--format %s: exit %d: %s", tc.format, code, stderr.String())
		}
		var got []string
		_ = filepath.Walk(out, func(p string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() {
				rel, _ := filepath.Rel(out, p)
				got = append(got, filepath.ToSlash(rel))
			}
			return nil
		})
		if strings.Join(got, " ") != strings.Join(tc.want, " ") || strings.Count(stdout.String(), "\n") != len(tc.want) {
			t.Errorf("--format %s wrote %q, stdout %q; want %q", tc.format, got, stdout.String(), tc.want)
		}
		if warned := strings.Contains(stderr.String(), "warning: containerd: docker.io/bitnami/redis"); warned != (tc.format != "registries.conf") {
			t.Errorf("--format %s: stderr %q", tc.format, stderr.String())
		}
	}

	bad := filepath.Join(t.TempDir(), "bad")
	invalid := filepath.Join(dir, "invalid.yaml")
	if err := os.WriteFile(invalid, []byte("version: 1\nsources:\n  - registry: ../../etc\n    repositories: [{name: x, tags: [\"1\"]}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--file", file}, 2, "--file and --gateway are required"},
		{[]string{"--file", file, "--gateway", "https://gw", "--format", "docker"}, 2, `--format "docker"`},
		{[]string{"--file", file, "--gateway", "https://gw\"\n[host.\"http://evil\"]"}, 2, "--gateway"},
		{[]string{"--file", file, "--gateway", "https://gw", "--ca", "../ca.pem"}, 2, "--ca"},
		{[]string{"--file", invalid, "--gateway", "https://gw"}, 1, "sources[0].registry"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(append([]string{"mirror", "client-config", "--out", bad}, tc.args...), &stdout, &stderr)
		if _, err := os.Stat(bad); code != tc.code || !strings.Contains(stderr.String(), tc.want) || err == nil {
			t.Errorf("%q: exit %d, stderr %q, output written: %v; want exit %d and %q", tc.args, code, stderr.String(), err == nil, tc.code, tc.want)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"mirror", "client-config", "-h"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "Example:") {
		t.Errorf("-h: exit %d, %q", code, stdout.String())
	}
}

// TestMirrorClientConfigPullThrough: --pull-through writes containerd files naming the
// gateway's root (ns tells the registry), without the "as" warning path rewriting has.
func TestMirrorClientConfigPullThrough(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "mirror.yaml")
	if err := os.WriteFile(file, []byte("version: 1\nsources:\n  - registry: docker.io\n    repositories: [{name: nginx, tags: [\"1\"]}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "clients")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"mirror", "client-config", "--pull-through", "--format", "containerd", "--file", file, "--gateway", "https://gw:5000", "--out", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	b, err := os.ReadFile(filepath.Join(out, "containerd", "docker.io", "hosts.toml"))
	if err != nil || !strings.Contains(string(b), `[host."https://gw:5000"]`) || strings.Contains(string(b), "override_path") {
		t.Errorf("hosts.toml: %v\n%s", err, b)
	}
}
