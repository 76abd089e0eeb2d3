package clientconfig

import (
	"errors"
	"fmt"
	"strings"

	"github.com/portcullis-dev/portcullis/mirror"
)

// PullThrough describes containerd's configuration for a gateway that mirrors public
// registries on demand (the gateway's mirrors section): one hosts.toml per source
// registry, each naming the same gateway host with no path. containerd sends
// ?ns=<registry> with every request to a host other than the registry itself, and the
// gateway maps it to the source's namespace (mirror/docker.io/library/nginx), so one
// gateway listener serves every mirrored registry.
type PullThrough struct {
	// Registries are the mirrored registries as clients name them (docker.io, ghcr.io).
	Registries []string
	// Gateway is the gateway's base URL as the nodes reach it.
	Gateway string
	// CAFile, when set, is the absolute path on the node of the gateway's CA bundle.
	CAFile string
}

// Files returns <registry>/hosts.toml for each registry (Docker Hub's aliases as docker.io,
// the name containerd looks up).
func (p PullThrough) Files() ([]File, error) {
	c := Containerd{Registries: p.Registries, Gateway: p.Gateway, CAFile: p.CAFile}
	var errs []error
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	seen := map[string]bool{}
	var out []File
	gw, _ := gatewayURL(p.Gateway)
	for _, r := range p.Registries {
		host := strings.ToLower(r)
		if mirror.IsDockerHub(host) {
			host = "docker.io"
		}
		if seen[host] {
			if host != strings.ToLower(r) {
				errs = append(errs, fmt.Errorf("--registry %q: containerd knows it as docker.io, given already", r))
			}
			continue
		}
		seen[host] = true
		out = append(out, File{Path: host + "/hosts.toml", Data: []byte(pullThroughTOML(host, gw, p.CAFile))})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// PullThroughFiles is Mirror's containerd configuration for a gateway that fetches the
// mirror file's sources on demand: one hosts.toml per source registry pointing at the
// gateway's root, the source told by containerd's ns parameter (no override_path).
func (m Mirror) PullThroughFiles() ([]File, error) {
	routes, err := m.Routes()
	if err != nil {
		return nil, err
	}
	p := PullThrough{Gateway: m.Gateway, CAFile: m.CAFile}
	for _, r := range routes {
		p.Registries = append(p.Registries, r.Host)
	}
	files, err := p.Files()
	for i := range files {
		files[i].Path = "containerd/" + files[i].Path
	}
	return files, err
}

// pullThroughTOML is the file for one mirrored registry: the gateway resolves and pulls
// (and is the server for pushes only, as in hostsTOML, so that a refusal never falls
// through to the public registry).
func pullThroughTOML(registry, gateway, ca string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# /etc/containerd/certs.d/%s/hosts.toml, written by portcullis (pull-through mode).
#
# Every pull of %s/... goes to the portcullis gateway and nowhere else. containerd
# adds ?ns=%s to each request; the gateway maps it to the mirrored namespace
# (its mirrors section), fetches what it lacks from %s, judges it, then serves it.
`, registry, registry, registry, registry)
	if registry == "docker.io" {
		b.WriteString(`# Docker Hub: containerd looks this file up as docker.io (never index.docker.io or
# registry-1.docker.io); without it containerd pulls from registry-1.docker.io.
`)
	}
	fmt.Fprintf(&b, `# - The [host] entry is where containerd resolves and pulls (containerd 1.6 ignores a file
#   without one and then pulls from %s itself).
# - The server entry is the gateway too, for pushes only: when the gateway refuses a pull
#   (403), no other entry can resolve, so the refusal stands. Never name %s here.
server = %q
capabilities = ["push"]
`, registry, registry, gateway)
	if ca != "" {
		fmt.Fprintf(&b, "ca = %q\n", ca)
	}
	fmt.Fprintf(&b, "\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", gateway)
	if ca != "" {
		fmt.Fprintf(&b, "  ca = %q\n", ca)
	}
	return b.String()
}
