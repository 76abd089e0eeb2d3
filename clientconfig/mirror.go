package clientconfig

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"sort"
	"strings"

	"github.com/portcullis-dev/portcullis/mirror"
)

// Mirror describes the client configuration of an air-gapped site's mirror: clients keep
// pulling by the source names (docker.io/library/nginx) and are sent to the gateway under
// the names the mirror file maps them to (mirror/docker.io/library/nginx).
type Mirror struct {
	// File is the mirror file whose sources and mapping to follow.
	File *mirror.File
	// Gateway is the gateway's base URL as the nodes reach it: https://gw.example.com:5000.
	Gateway string
	// CAFile, when set, is the absolute path on the node of the PEM bundle that signs the
	// gateway's certificate (containerd only; CRI-O and podman read
	// /etc/containers/certs.d/HOST:PORT/ca.crt).
	CAFile string
}

// Route sends one registry name, as clients know it, to a namespace of the gateway.
type Route struct {
	// Host is the registry name clients pull by: docker.io for every Docker Hub alias.
	Host string
	// Namespace is the on-prem namespace the source maps under (mirror.File.MappedRegistry).
	Namespace string
	// Exceptions are repositories (Host/path) mapped elsewhere with "as", and those under
	// them, to their mapped names.
	Exceptions map[string]string
}

// Routes returns one route per source registry of the file, in file order. Two sources
// clients know by the same name must map under the same namespace: a client cannot be sent
// to two.
func (m Mirror) Routes() ([]Route, error) {
	var errs []error
	if m.File == nil {
		return nil, errors.New("--file: a mirror file is required")
	}
	if err := m.File.Validate(); err != nil {
		return nil, fmt.Errorf("--file:\n%w", err)
	}
	if _, err := gatewayURL(m.Gateway); err != nil {
		errs = append(errs, fmt.Errorf("--gateway %q: %w", m.Gateway, err))
	}
	if m.CAFile != "" && (!filepath.IsAbs(m.CAFile) || !printable(m.CAFile)) {
		errs = append(errs, fmt.Errorf("--ca %q: want the absolute path of the CA bundle on the node", m.CAFile))
	}
	var routes []Route
	at := map[string]int{}
	all := map[int][][2]string{} // route index → (source name, mapped name) of every repository
	for i, s := range m.File.Sources {
		host := strings.ToLower(s.Registry)
		if mirror.IsDockerHub(host) {
			host = "docker.io"
		}
		ns := m.File.MappedRegistry(s)
		if !registryName.MatchString(host) || !printable(ns) || strings.Contains("/"+ns+"/", "/../") {
			errs = append(errs, fmt.Errorf("sources[%d].registry %q: not a registry host name", i, s.Registry))
			continue
		}
		j, seen := at[host]
		if !seen {
			j = len(routes)
			at[host] = j
			routes = append(routes, Route{Host: host, Namespace: ns, Exceptions: map[string]string{}})
		} else if routes[j].Namespace != ns {
			errs = append(errs, fmt.Errorf("sources[%d]: clients know %s as %s, which another source already maps under %s; a client can be sent to only one of %s and %s",
				i, s.Registry, host, routes[j].Namespace, routes[j].Namespace, ns))
			continue
		}
		for _, r := range s.Repositories {
			path, mapped := mirror.SourcePath(s, r), m.File.MappedName(s, r)
			if !printable(mapped) || !printable(path) {
				errs = append(errs, fmt.Errorf("sources[%d] repository %q: not a repository name", i, r.Name))
				continue
			}
			all[j] = append(all[j], [2]string{host + "/" + path, mapped})
			if mapped != ns+"/"+path {
				routes[j].Exceptions[host+"/"+path] = mapped
			}
		}
	}
	// A repository under one mapped with "as" (a/b/c under a/b) needs its own entry too:
	// registries.conf would otherwise send it under the "as" name by the longer prefix.
	for j := range routes {
		for _, rm := range all[j] {
			for src := range routes[j].Exceptions {
				if strings.HasPrefix(rm[0], src+"/") {
					routes[j].Exceptions[rm[0]] = rm[1]
				}
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return routes, nil
}

// ContainerdFiles returns one hosts.toml per route, at containerd/<host>/hosts.toml, and a
// warning per repository mapped with "as": containerd rewrites a registry's names as a
// whole (a host URL with a path and override_path), never one repository's, so a pull of
// such a repository asks the gateway for the namespace's name instead.
func (m Mirror) ContainerdFiles() (files []File, warnings []string, err error) {
	routes, err := m.Routes()
	if err != nil {
		return nil, nil, err
	}
	gw, _ := gatewayURL(m.Gateway)
	for _, r := range routes {
		files = append(files, File{Path: "containerd/" + r.Host + "/hosts.toml", Data: []byte(mirrorHostsTOML(r, gw, m.CAFile))})
		for _, src := range sortedKeys(r.Exceptions) {
			if r.Exceptions[src] == r.Namespace+"/"+strings.TrimPrefix(src, r.Host+"/") {
				continue // listed only for registries.conf's longest-prefix rule
			}
			warnings = append(warnings, fmt.Sprintf("containerd: %s is mapped to %s (as), but containerd cannot rewrite one repository: its pulls ask the gateway for %s/%s",
				src, r.Exceptions[src], r.Namespace, strings.TrimPrefix(src, r.Host+"/")))
		}
	}
	return files, warnings, nil
}

// mirrorHostsTOML is the file for one route: the gateway, at /v2/<namespace> with
// override_path, as the only host that can resolve and pull, and as server for pushes only
// (as in hostsTOML): a refusal is asked once and never falls through to the source.
func mirrorHostsTOML(r Route, gateway, ca string) string {
	u := gateway + "/v2/" + r.Namespace
	var b strings.Builder
	fmt.Fprintf(&b, `# /etc/containerd/certs.d/%s/hosts.toml, written by "portcullis mirror client-config".
#
# Every pull of %s/REPOSITORY goes to the portcullis gateway as
# %s/REPOSITORY, and nowhere else. containerd rewrites names only
# through a host URL with a path and override_path = true: it then sends
# /v2/%s/REPOSITORY/manifests/...
`, r.Host, r.Host, r.Namespace, r.Namespace)
	if r.Host == "docker.io" {
		b.WriteString(`# Docker Hub: containerd looks this file up as docker.io (never index.docker.io or
# registry-1.docker.io); without it containerd pulls from registry-1.docker.io.
`)
	}
	fmt.Fprintf(&b, `# - The [host] entry is where containerd resolves and pulls (containerd 1.6 ignores a file
#   without one and then pulls from %s itself).
# - The server entry is the gateway too, for pushes only: when the gateway refuses a pull
#   (403), no other entry can resolve, so the refusal stands and is asked once. Never name
#   the source registry here: containerd would take a refused image from it.
server = %q
override_path = true
capabilities = ["push"]
`, r.Host, u)
	if ca != "" {
		fmt.Fprintf(&b, "ca = %q\n", ca)
	}
	fmt.Fprintf(&b, "\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n  override_path = true\n", u)
	if ca != "" {
		fmt.Fprintf(&b, "  ca = %q\n", ca)
	}
	return b.String()
}

// RegistriesConf returns registries.conf (containers-registries.conf(5), version 2) for
// CRI-O and podman: a [[registry]] per route whose location is the gateway's namespace, and
// one per repository mapped with "as" (the longest prefix wins). A plain-HTTP gateway is
// marked insecure.
func (m Mirror) RegistriesConf() (File, error) {
	routes, err := m.Routes()
	if err != nil {
		return File{}, err
	}
	gw, _ := gatewayURL(m.Gateway)
	u, _ := url.Parse(gw)
	insecure := u.Scheme == "http"
	var b strings.Builder
	fmt.Fprintf(&b, `# registries.conf (containers-registries.conf v2), written by "portcullis mirror client-config".
# Install as /etc/containers/registries.conf.d/50-portcullis-mirror.conf (CRI-O, podman).
# Every pull of a source name goes to the portcullis gateway under its mapped name and
# nowhere else: "location" replaces the registry, there is no fallback to the source.
`)
	if !insecure {
		fmt.Fprintf(&b, "# The gateway's CA, if private: /etc/containers/certs.d/%s/ca.crt\n", u.Host)
	}
	entry := func(prefix, location string) {
		fmt.Fprintf(&b, "\n[[registry]]\nprefix = %q\nlocation = %q\n", prefix, location)
		if insecure {
			b.WriteString("insecure = true\n")
		}
	}
	for _, r := range routes {
		entry(r.Host, u.Host+"/"+r.Namespace)
		for _, src := range sortedKeys(r.Exceptions) {
			entry(src, u.Host+"/"+r.Exceptions[src])
		}
	}
	return File{Path: "registries.conf", Data: []byte(b.String())}, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
