package clientconfig_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/clientconfig"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestContainerdGolden: the files written for each registry, compared byte for byte with
// testdata (go test ./clientconfig -update rewrites them).
func TestContainerdGolden(t *testing.T) {
	tests := []struct {
		name string
		c    clientconfig.Containerd
	}{
		{"tls-with-ca", clientconfig.Containerd{
			Registries: []string{"registry.example.com", "registry.example.com:5000"},
			Gateway:    "https://gw.example.com:5000/", CAFile: "/etc/containerd/certs.d/portcullis-ca.pem"}},
		{"plain-http", clientconfig.Containerd{Registries: []string{"10.0.0.7:5000"}, Gateway: "http://127.0.0.1:5000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			files, err := tt.c.Files()
			if err != nil {
				t.Fatal(err)
			}
			if err := clientconfig.Write(dir, files); err != nil {
				t.Fatal(err)
			}
			if len(files) != len(tt.c.Registries) {
				t.Fatalf("%d files for %d registries", len(files), len(tt.c.Registries))
			}
			for _, r := range tt.c.Registries {
				got, err := os.ReadFile(filepath.Join(dir, r, "hosts.toml"))
				if err != nil {
					t.Fatal(err)
				}
				golden := filepath.Join("testdata", tt.name+"."+strings.ReplaceAll(r, ":", "_")+".toml")
				if *update {
					if err := os.WriteFile(golden, got, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != string(want) {
					t.Errorf("%s:\n%s\nwant (%s):\n%s", r, got, golden, want)
				}
			}
		})
	}
}

// TestContainerdRefusesBadInput: every flag a typo or a hostile value can reach is
// refused with the flag's name, and nothing can be written outside the output directory.
func TestContainerdRefusesBadInput(t *testing.T) {
	ok := clientconfig.Containerd{Registries: []string{"registry.example.com"}, Gateway: "https://gw:5000"}
	tests := []struct {
		name string
		edit func(*clientconfig.Containerd)
		want string
	}{
		{"no registry", func(c *clientconfig.Containerd) { c.Registries = nil }, "--registry: at least one"},
		{"traversal", func(c *clientconfig.Containerd) { c.Registries = []string{"../../etc/cron.d"} }, `--registry "../../etc/cron.d"`},
		{"dot dot", func(c *clientconfig.Containerd) { c.Registries = []string{".."} }, `--registry ".."`},
		{"scheme", func(c *clientconfig.Containerd) { c.Registries = []string{"https://registry.example.com"} }, "no scheme"},
		{"path", func(c *clientconfig.Containerd) { c.Registries = []string{"registry.example.com/team"} }, "no path"},
		{"newline", func(c *clientconfig.Containerd) { c.Registries = []string{"reg\n[host.\"http://evil\"]"} }, "--registry"},
		{"twice", func(c *clientconfig.Containerd) { c.Registries = []string{"a.example", "A.example"} }, "given twice"},
		{"gateway scheme", func(c *clientconfig.Containerd) { c.Gateway = "gw:5000" }, "--gateway"},
		{"gateway credentials", func(c *clientconfig.Containerd) { c.Gateway = "https://u:p@gw" }, "without credentials"},
		{"gateway path", func(c *clientconfig.Containerd) { c.Gateway = "https://gw/v2" }, "give no path"},
		{"gateway query", func(c *clientconfig.Containerd) { c.Gateway = "https://gw/?x=1" }, "without credentials, query"},
		{"gateway quote", func(c *clientconfig.Containerd) { c.Gateway = "https://gw\"x" }, "--gateway"},
		{"ca relative", func(c *clientconfig.Containerd) { c.CAFile = "ca.pem" }, "--ca"},
		{"ca quote", func(c *clientconfig.Containerd) { c.CAFile = "/x\"\nserver = \"http://evil\"" }, "--ca"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.edit(&c)
			files, err := c.Files()
			if err == nil || !strings.Contains(err.Error(), tt.want) || files != nil {
				t.Errorf("Files() = %d files, %v; want an error containing %q", len(files), err, tt.want)
			}
		})
	}
	if err := clientconfig.Write(t.TempDir(), []clientconfig.File{{Path: "../x/hosts.toml"}}); err == nil {
		t.Error("Write outside the directory: no error")
	}
}
