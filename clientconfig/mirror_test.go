package clientconfig_test

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/clientconfig"
	"github.com/portcullis-dev/portcullis/mirror"
)

// mirrorFile parses a mirror file given as YAML.
func mirrorFile(t *testing.T, yaml string) *mirror.File {
	t.Helper()
	f, err := mirror.ParseFile(strings.NewReader(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

const goldenMirror = `version: 1
sources:
  - registry: docker.io
    repositories:
      - name: nginx
        tags: ["1.27.3"]
      - name: bitnami/redis
        tags: ["7"]
        as: team/redis
  - registry: registry.local:5000
    prefix: upstream
    repositories:
      - name: team/app
        tags: ["1.0.0"]
`

// TestMirrorGolden: registries.conf and the hosts.toml files for a mirror file with Docker
// Hub, a registry with a port under its own prefix and a repository mapped with "as",
// compared byte for byte with testdata (go test ./clientconfig -update rewrites them).
func TestMirrorGolden(t *testing.T) {
	tests := []struct {
		name string
		m    clientconfig.Mirror
	}{
		{"mirror-tls", clientconfig.Mirror{File: mirrorFile(t, goldenMirror), Gateway: "https://gw.example.com:5000", CAFile: "/etc/containerd/certs.d/portcullis-ca.pem"}},
		{"mirror-http", clientconfig.Mirror{File: mirrorFile(t, goldenMirror), Gateway: "http://10.0.0.7:5000/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hosts, warnings, err := tt.m.ContainerdFiles()
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) != 1 || !strings.Contains(warnings[0], "docker.io/bitnami/redis is mapped to team/redis") {
				t.Errorf("warnings %q: want one for docker.io/bitnami/redis", warnings)
			}
			conf, err := tt.m.RegistriesConf()
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			files := append(hosts, conf)
			if err := clientconfig.Write(dir, files); err != nil {
				t.Fatal(err)
			}
			want := []string{"containerd/docker.io/hosts.toml", "containerd/registry.local:5000/hosts.toml", "registries.conf"}
			var got []string
			for _, f := range files {
				got = append(got, f.Path)
			}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Fatalf("files %q, want %q", got, want)
			}
			for _, p := range want {
				data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
				if err != nil {
					t.Fatal(err)
				}
				golden := filepath.Join("testdata", tt.name+"."+strings.NewReplacer("/", "_", ":", "_").Replace(p))
				if *update {
					if err := os.WriteFile(golden, data, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				wantData, err := os.ReadFile(golden)
				if err != nil {
					t.Fatal(err)
				}
				if string(data) != string(wantData) {
					t.Errorf("%s:\n%s\nwant (%s):\n%s", p, data, golden, wantData)
				}
			}
		})
	}
}

// confEntry is one [[registry]] of a generated registries.conf.
type confEntry struct{ prefix, location string }

var confEntryRE = regexp.MustCompile(`(?m)^\[\[registry\]\]\nprefix = "([^"]*)"\nlocation = "([^"]*)"\n`)

// resolve applies registries.conf's rule to ref: the longest prefix that ends at a path
// component boundary is replaced by its location; no match means the name is unchanged.
func resolve(entries []confEntry, ref string) string {
	sort.Slice(entries, func(i, j int) bool { return len(entries[i].prefix) > len(entries[j].prefix) })
	for _, e := range entries {
		if ref == e.prefix || strings.HasPrefix(ref, e.prefix+"/") || strings.HasPrefix(ref, e.prefix+":") {
			return e.location + ref[len(e.prefix):]
		}
	}
	return ref
}

// TestMirrorMappingIsTheMirrorFiles: for every repository of several mirror files
// (default and "-" prefixes, per-source prefixes, ports, Docker Hub's library/ names and
// aliases, "as"), the name a client asks for by its source name ends at the gateway as
// the name mirror.File.MappedName gives it, in registries.conf (read back as CRI-O and
// podman apply it) and, except for "as", in the containerd host URL.
func TestMirrorMappingIsTheMirrorFiles(t *testing.T) {
	files := []string{goldenMirror, `version: 1
target:
  prefix: "-"
sources:
  - registry: index.docker.io
    repositories:
      - name: alpine
        tags: ["3"]
      - name: library/busybox
        tags: ["1"]
  - registry: Quay.io
    prefix: q/x
    repositories:
      - name: a/b/c
        tags: ["1"]
      - name: a/b
        tags: ["1"]
        as: elsewhere/b
  - registry: 10.1.2.3:5000
    repositories:
      - name: app
        tags: ["1"]
`}
	for i, y := range files {
		f := mirrorFile(t, y)
		m := clientconfig.Mirror{File: f, Gateway: "https://gw:5000"}
		conf, err := m.RegistriesConf()
		if err != nil {
			t.Fatal(err)
		}
		var entries []confEntry
		for _, sm := range confEntryRE.FindAllStringSubmatch(string(conf.Data), -1) {
			entries = append(entries, confEntry{sm[1], sm[2]})
		}
		hosts, _, err := m.ContainerdFiles()
		if err != nil {
			t.Fatal(err)
		}
		hostURL := map[string]string{}
		for _, h := range hosts {
			u := regexp.MustCompile(`(?m)^\[host\."https://gw:5000(/v2/[^"]*)"\]$`).FindSubmatch(h.Data)
			if u == nil || !strings.Contains(string(h.Data), "override_path = true\n") {
				t.Fatalf("%s: no host URL with override_path:\n%s", h.Path, h.Data)
			}
			hostURL[strings.TrimSuffix(strings.TrimPrefix(h.Path, "containerd/"), "/hosts.toml")] = string(u[1])
		}
		for _, s := range f.Sources {
			host := strings.ToLower(s.Registry)
			if mirror.IsDockerHub(host) {
				host = "docker.io"
			}
			for _, r := range s.Repositories {
				want := f.MappedName(s, r)
				src := host + "/" + mirror.SourcePath(s, r)
				if got := resolve(entries, src+":1"); got != "gw:5000/"+want+":1" {
					t.Errorf("file %d: registries.conf sends %s:1 to %s, want gw:5000/%s:1", i, src, got, want)
				}
				if r.As != "" {
					continue
				}
				if got := hostURL[host] + "/" + mirror.SourcePath(s, r); got != "/v2/"+want {
					t.Errorf("file %d: containerd asks for %s, want /v2/%s", i, got, want)
				}
			}
		}
	}
}

// TestMirrorRefusesBadInput: hostile or mistyped flags, and mirror files that were not
// validated or that send one client name to two namespaces, are refused with the field.
func TestMirrorRefusesBadInput(t *testing.T) {
	ok := func() clientconfig.Mirror {
		return clientconfig.Mirror{File: mirrorFile(t, goldenMirror), Gateway: "https://gw:5000"}
	}
	tests := []struct {
		name string
		edit func(*clientconfig.Mirror)
		want string
	}{
		{"no file", func(m *clientconfig.Mirror) { m.File = nil }, "--file"},
		{"gateway scheme", func(m *clientconfig.Mirror) { m.Gateway = "gw:5000" }, "--gateway"},
		{"gateway path", func(m *clientconfig.Mirror) { m.Gateway = "https://gw/v2/other" }, "give no path"},
		{"gateway quote", func(m *clientconfig.Mirror) { m.Gateway = "https://gw\"\n[host.\"http://evil\"]" }, "--gateway"},
		{"gateway credentials", func(m *clientconfig.Mirror) { m.Gateway = "https://u:p@gw" }, "without credentials"},
		{"ca relative", func(m *clientconfig.Mirror) { m.CAFile = "ca.pem" }, "--ca"},
		{"ca newline", func(m *clientconfig.Mirror) { m.CAFile = "/x\"\nserver = \"http://evil\"" }, "--ca"},
		{"unvalidated traversal", func(m *clientconfig.Mirror) { m.File.Sources[0].Registry = "../../etc" }, "sources[0].registry"},
		{"unvalidated quote in as", func(m *clientconfig.Mirror) { m.File.Sources[0].Repositories[1].As = "x\"\nlocation = \"evil" }, "sources[0].repositories[1].as"},
		{"unvalidated prefix", func(m *clientconfig.Mirror) { m.File.Sources[1].Prefix = "../.." }, "sources[1].prefix"},
		{"hub aliases to two namespaces", func(m *clientconfig.Mirror) {
			m.File.Sources = append(m.File.Sources, mirror.Source{Registry: "registry-1.docker.io", Repositories: []mirror.Repository{{Name: "other", Tags: []string{"1"}}}})
		}, "sources[2]: clients know registry-1.docker.io as docker.io"},
		{"one registry, two prefixes", func(m *clientconfig.Mirror) {
			m.File.Sources = append(m.File.Sources, mirror.Source{Registry: "registry.local:5000", Prefix: "other", Repositories: []mirror.Repository{{Name: "x/y", Tags: []string{"1"}}}})
		}, "a client can be sent to only one of upstream/registry.local_5000 and other/registry.local_5000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := ok()
			tt.edit(&m)
			hosts, _, err := m.ContainerdFiles()
			if err == nil || !strings.Contains(err.Error(), tt.want) || hosts != nil {
				t.Errorf("ContainerdFiles() = %d files, %v; want an error containing %q", len(hosts), err, tt.want)
			}
			conf, err := m.RegistriesConf()
			if err == nil || !strings.Contains(err.Error(), tt.want) || conf.Data != nil {
				t.Errorf("RegistriesConf() = %q, %v; want an error containing %q", conf.Data, err, tt.want)
			}
		})
	}
}

// TestMirrorSameRegistryTwice: two sources of one registry under the same prefix (e.g.
// split for different platforms) give one hosts.toml and one [[registry]].
func TestMirrorSameRegistryTwice(t *testing.T) {
	f := mirrorFile(t, `version: 1
sources:
  - registry: ghcr.io
    platforms: [linux/amd64]
    repositories: [{name: a/b, tags: ["1"]}]
  - registry: GHCR.io
    repositories: [{name: a/c, tags: ["1"]}]
`)
	m := clientconfig.Mirror{File: f, Gateway: "https://gw"}
	hosts, _, err := m.ContainerdFiles()
	if err != nil || len(hosts) != 1 || hosts[0].Path != "containerd/ghcr.io/hosts.toml" {
		t.Fatalf("ContainerdFiles() = %+v, %v; want one ghcr.io/hosts.toml", hosts, err)
	}
	conf, err := m.RegistriesConf()
	if err != nil || strings.Count(string(conf.Data), "[[registry]]") != 1 {
		t.Errorf("RegistriesConf() = %s, %v; want one entry", conf.Data, err)
	}
}
