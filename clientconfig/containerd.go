package clientconfig

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
)

// Containerd describes the containerd registry host configuration to generate: one
// hosts.toml per registry name, in the certs.d layout (DIR/<registry>/hosts.toml, DIR
// being /etc/containerd/certs.d or the directory config_path names).
type Containerd struct {
	// Registries are the registry names images are pulled by (registry.example.com,
	// registry.example.com:5000), each answered by the gateway.
	Registries []string
	// Gateway is the gateway's base URL as the nodes reach it: https://gw.example.com:5000.
	Gateway string
	// CAFile, when set, is the absolute path on the node of the PEM bundle that signs the
	// gateway's certificate.
	CAFile string
}

// registryName is a host name or IPv4 address with an optional port: what containerd
// looks up in the certs.d directory. Nothing that could leave that directory.
var registryName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*(:[0-9]{1,5})?$`)

// Validate reports every problem of c, each with the flag it comes from.
func (c Containerd) Validate() error {
	var errs []error
	if len(c.Registries) == 0 {
		errs = append(errs, errors.New("--registry: at least one is required"))
	}
	seen := map[string]bool{}
	for _, r := range c.Registries {
		switch {
		case !registryName.MatchString(r):
			errs = append(errs, fmt.Errorf("--registry %q: want a registry host name with an optional port, e.g. registry.example.com:5000 (no scheme, no path)", r))
		case seen[strings.ToLower(r)]:
			errs = append(errs, fmt.Errorf("--registry %q: given twice", r))
		}
		seen[strings.ToLower(r)] = true
	}
	if _, err := gatewayURL(c.Gateway); err != nil {
		errs = append(errs, fmt.Errorf("--gateway %q: %w", c.Gateway, err))
	}
	if c.CAFile != "" && (!filepath.IsAbs(c.CAFile) || !printable(c.CAFile)) {
		errs = append(errs, fmt.Errorf("--ca %q: want the absolute path of the CA bundle on the node", c.CAFile))
	}
	return errors.Join(errs...)
}

// gatewayURL parses the gateway's base URL: http or https, a host, no path beyond "/",
// no credentials, query or fragment. It returns it as scheme://host[:port].
func gatewayURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "", err
	case u.Scheme != "https" && u.Scheme != "http":
		return "", errors.New("want https://HOST[:PORT] (or http:// for a gateway without TLS)")
	case u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
		return "", errors.New("want https://HOST[:PORT], without credentials, query or fragment")
	case u.Path != "" && u.Path != "/":
		return "", errors.New("the gateway serves /v2/ at its root: give no path")
	}
	host := u.Hostname()
	if !registryName.MatchString(host) && net.ParseIP(host) == nil {
		return "", fmt.Errorf("host %q is not a host name or IP address", host)
	}
	return u.Scheme + "://" + u.Host, nil
}

// printable reports whether s is printable ASCII without quotes or backslashes, so that it
// can stand in a TOML string as it is.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\' {
			return false
		}
	}
	return true
}

// Files returns one hosts.toml per registry, at <registry>/hosts.toml.
func (c Containerd) Files() ([]File, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	gw, _ := gatewayURL(c.Gateway)
	var out []File
	for _, r := range c.Registries {
		out = append(out, File{Path: r + "/hosts.toml", Data: []byte(hostsTOML(r, gw, c.CAFile))})
	}
	return out, nil
}

// hostsTOML is the file for one registry. The gateway is both entries, for different
// capabilities: the [host] entry is the one containerd resolves and pulls through (and the
// one containerd 1.6 needs, as it ignores a file without one), the server entry may only
// push, so that a pull the gateway refuses is not asked again and never reaches the
// registry itself.
func hostsTOML(registry, gateway, ca string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# /etc/containerd/certs.d/%s/hosts.toml, written by "portcullis deploy containerd".
#
# Every pull of %s/... goes to the portcullis gateway and nowhere else.
# - The [host] entry is where containerd resolves and pulls. It must stay: containerd 1.6
#   ignores a file without one and then pulls from %s itself.
# - The server entry is the gateway too, for pushes only ("push"): when the gateway refuses
#   a pull (403), containerd tries the next entry that can resolve. There is none, so the
#   refusal stands, is asked once and audited once. Never name the upstream registry here:
#   containerd would take a refused image from it.
server = %q
capabilities = ["push"]
`, registry, registry, registry, gateway)
	if ca != "" {
		fmt.Fprintf(&b, "ca = %q\n", ca)
	}
	fmt.Fprintf(&b, "\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", gateway)
	if ca != "" {
		fmt.Fprintf(&b, "  ca = %q\n", ca)
	}
	return b.String()
}
