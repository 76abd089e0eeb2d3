package config

import (
	"crypto/tls"
	"fmt"
	"net"
	"regexp"
	"strings"
)

// DefaultListener is the name of the door that the top-level addr and tls describe.
const DefaultListener = "default"

// Listener is one door of the gateway: an address clients reach the registry API on, and
// what the operator says about the requests that arrive there. Which policy environment a
// request is judged in is bound to its door, never to what the client sends.
type Listener struct {
	// Name identifies the door in logs and errors: lower-case letters, digits and '-'.
	Name string `yaml:"name"`
	// Addr is the listen address, HOST:PORT.
	Addr string `yaml:"addr"`
	// TLS serves HTTPS on this door; without a certificate it speaks plain HTTP.
	TLS TLS `yaml:"tls"`
	// Host is the host name the policy's environment `hosts:` are matched against for every
	// request arriving on this door, whatever Host header the client sends. Empty: no host,
	// so only environments without `hosts:` can apply here.
	Host string `yaml:"host"`
	// TrustForwardedHost lets the client's X-Forwarded-Host (else its Host header) select
	// environments by `hosts:`. Set it only on a door that nothing but a trusted front proxy
	// can reach, a proxy that sets or overwrites that header itself.
	TrustForwardedHost bool `yaml:"trustForwardedHost"`
}

// Admin configures the operational listener: /metrics and the detailed /readyz.
type Admin struct {
	// Addr is the admin listen address, HOST:PORT; empty turns the admin listener off.
	// The default is loopback only.
	Addr string `yaml:"addr"`
	// TLS serves the admin endpoints over HTTPS.
	TLS TLS `yaml:"tls"`
}

// DefaultAdminAddr is where the admin listener listens unless configured otherwise.
const DefaultAdminAddr = "127.0.0.1:9090"

// Doors returns the registry listeners to open, in order: the top-level addr and tls as
// the door named DefaultListener (unless addr is empty), then Listeners.
func (c Config) Doors() []Listener {
	var out []Listener
	if c.Addr != "" {
		out = append(out, Listener{Name: DefaultListener, Addr: c.Addr, TLS: c.TLS})
	}
	return append(out, c.Listeners...)
}

// Certificate loads the certificate and key the files name.
func (t TLS) Certificate() (tls.Certificate, error) {
	return tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
}

// Enabled reports whether a certificate is configured.
func (t TLS) Enabled() bool { return t.CertFile != "" }

// CheckFiles loads every TLS certificate the configuration names (the doors' and the
// admin listener's) and reports each that cannot be used, with its field path. Validate
// does not read files; call CheckFiles before opening listeners.
func (c Config) CheckFiles() error {
	var ps []Problem
	check := func(path string, t TLS) {
		if !t.Enabled() || t.KeyFile == "" {
			return
		}
		if _, err := t.Certificate(); err != nil {
			ps = append(ps, Problem{Path: path, Message: err.Error()})
		}
	}
	if c.Addr != "" {
		check("tls", c.TLS)
	}
	for i, l := range c.Listeners {
		check(fmt.Sprintf("listeners[%d].tls", i), l.TLS)
	}
	if c.Admin.Addr != "" {
		check("admin.tls", c.Admin.TLS)
	}
	if len(ps) > 0 {
		return &ValidationError{Problems: ps}
	}
	return nil
}

var listenerName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// validateListeners adds the problems of addr, tls, listeners and admin.
func (c Config) validateListeners(add func(path, format string, args ...any)) {
	type bound struct{ path, addr string }
	var addrs []bound
	addr := func(path, a string) {
		if _, _, err := net.SplitHostPort(a); err != nil {
			add(path, "want HOST:PORT (e.g. :5000): %v", err)
			return
		}
		for _, b := range addrs {
			if sameSocket(a, b.addr) {
				add(path, "%s is already used by %s", a, b.path)
				return
			}
		}
		addrs = append(addrs, bound{path, a})
	}
	pair := func(path string, t TLS) {
		if (t.CertFile == "") != (t.KeyFile == "") {
			add(path, "certFile and keyFile go together")
		}
	}
	switch {
	case c.Addr != "":
		addr("addr", c.Addr)
	case len(c.Listeners) == 0:
		add("addr", "want HOST:PORT (e.g. :5000): required unless listeners are given")
	}
	pair("tls", c.TLS)
	names := map[string]string{}
	if c.Addr != "" {
		names[DefaultListener] = "addr"
	}
	for i, l := range c.Listeners {
		p := fmt.Sprintf("listeners[%d]", i)
		switch {
		case l.Name == "":
			add(p+".name", "required")
		case !listenerName.MatchString(l.Name):
			add(p+".name", "want lower-case letters, digits and '-' (at most 63), got %q", l.Name)
		case names[l.Name] != "":
			add(p+".name", "%q is already the name of %s", l.Name, names[l.Name])
		default:
			names[l.Name] = p
		}
		if l.Addr == "" {
			add(p+".addr", "required")
		} else {
			addr(p+".addr", l.Addr)
		}
		pair(p+".tls", l.TLS)
		if l.Host != "" {
			if msg := badHost(l.Host); msg != "" {
				add(p+".host", "%s", msg)
			}
			if l.TrustForwardedHost {
				add(p, "set host or trustForwardedHost, not both: a door either names its host or trusts its front proxy to")
			}
		}
	}
	if c.Admin.Addr != "" {
		addr("admin.addr", c.Admin.Addr)
		pair("admin.tls", c.Admin.TLS)
	}
}

// sameSocket reports whether two HOST:PORT listen addresses would collide: the same port
// on the same host, or on any host when either is a wildcard. Port 0 (any free port)
// never collides.
func sameSocket(a, b string) bool {
	ha, pa, _ := net.SplitHostPort(a)
	hb, pb, _ := net.SplitHostPort(b)
	if pa != pb || pa == "0" {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return wild(ha) || wild(hb) || strings.EqualFold(ha, hb)
}

// badHost says what is wrong with a door's host name, or "" when it is usable: one host
// (no pattern), matched by the policy without a port and without regard to case.
func badHost(h string) string {
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		if ip := net.ParseIP(h[1 : len(h)-1]); ip == nil || ip.To4() != nil {
			return fmt.Sprintf("%q is not an IPv6 address", h)
		}
		return ""
	}
	if strings.Contains(h, ":") {
		return "hosts are matched without a port; remove the port"
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			return fmt.Sprintf("%q is not a host name (one name such as ci.registry.example, no pattern)", h)
		}
	}
	if strings.HasPrefix(h, ".") || strings.Contains(h, "..") {
		return fmt.Sprintf("%q is not a host name (one name such as ci.registry.example, no pattern)", h)
	}
	return ""
}
