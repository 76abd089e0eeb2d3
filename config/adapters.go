package config

import (
	"fmt"
	"net"
	"net/url"
)

// validateAdapters checks scan.adapters and scan.adapterRegistry.
func (c Config) validateAdapters(add func(path, format string, args ...any)) {
	seen := map[string]bool{}
	for i, a := range c.Scan.Adapters {
		path := fmt.Sprintf("scan.adapters[%d]", i)
		switch {
		case a.Name == "":
			add(path+".name", "required")
		case a.Name == "builtin" || a.Name == "both":
			add(path+".name", "%q is a scanner choice of its own; name the adapter otherwise", a.Name)
		case !adapterName(a.Name):
			add(path+".name", "invalid name %q (want lower-case letters, digits and -, starting with a letter)", a.Name)
		case seen[a.Name]:
			add(path+".name", "%q listed twice", a.Name)
		}
		seen[a.Name] = true
		if !httpURL(a.URL) {
			add(path+".url", "want an http or https base URL, got %q", a.URL)
		}
		if a.Timeout < 0 {
			add(path+".timeout", "must not be negative")
		}
	}
	for i, r := range c.Scan.AdapterAPI.Registries {
		if !httpURL(r) {
			add(fmt.Sprintf("scan.adapterAPI.registries[%d]", i), "want an http or https base URL, got %q", r)
		}
	}
	if len(c.Scan.AdapterAPI.Registries) > 0 && c.Admin.Addr == "" {
		add("scan.adapterAPI", "is served on the admin listener: set admin.addr")
	}
	c.validateAdapterAPIAuth(add)
	ar := c.Scan.AdapterRegistry
	if len(c.Scan.Adapters) > 0 && !httpURL(ar.URL) {
		add("scan.adapterRegistry.url", "want the http or https URL the adapters pull from, got %q (in gateway mode: this gateway's door as they reach it)", ar.URL)
	}
	switch ar.Mode {
	case "", AdapterRegistryGateway, AdapterRegistryDirect:
	default:
		add("scan.adapterRegistry.mode", "want %q or %q, got %q", AdapterRegistryGateway, AdapterRegistryDirect, ar.Mode)
	}
	switch ar.Scheme {
	case "", "basic", "bearer":
		if ar.Scheme != "" && ar.EffectiveMode() == AdapterRegistryDirect {
			add("scan.adapterRegistry.scheme", "is for the credentials of gateway mode; direct mode sends its credentials as Basic")
		}
	default:
		add("scan.adapterRegistry.scheme", "want basic or bearer, got %q", ar.Scheme)
	}
	if ar.Mode == AdapterRegistryGateway && ar.Credentials.Username != "" {
		add("scan.adapterRegistry.credentials", "in gateway mode each scan gets a credential of its own: remove these, or set mode: direct")
	}
}

// adapterName reports whether s is a valid adapter name (as policy environments write it).
func adapterName(s string) bool {
	if s == "" || len(s) > 63 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return false
		}
	}
	return true
}

// httpURL reports whether s is an http or https URL with a host.
func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// validateAdapterAPIAuth checks scan.adapterAPI.auth. An API with registries but no
// credential is refused unless the admin address is loopback or the operator said
// allowUnauthenticated: it makes the gateway pull and analyse images for whoever asks.
func (c Config) validateAdapterAPIAuth(add func(path, format string, args ...any)) {
	a := c.Scan.AdapterAPI.Auth
	const path = "scan.adapterAPI.auth"
	if a.BearerTokenFile != "" && a.BearerTokenEnv != "" {
		add(path+".bearerTokenFile", "give bearerTokenFile or bearerTokenEnv, not both")
	}
	if a.PasswordFile != "" && a.PasswordEnv != "" {
		add(path+".passwordFile", "give passwordFile or passwordEnv, not both")
	}
	if a.Username != "" && a.PasswordFile == "" && a.PasswordEnv == "" {
		add(path+".passwordFile", "required with username (or passwordEnv)")
	}
	if a.Username == "" && (a.PasswordFile != "" || a.PasswordEnv != "") {
		add(path+".username", "required with a password")
	}
	if a.AllowUnauthenticated && a.Enabled() {
		add(path+".allowUnauthenticated", "contradicts the credential configured beside it")
	}
	if len(c.Scan.AdapterAPI.Registries) > 0 && !a.Enabled() && !a.AllowUnauthenticated && c.Admin.Addr != "" && !LoopbackAddr(c.Admin.Addr) {
		add(path, "required: the adapter API would be served unauthenticated on admin.addr %q, which is not a loopback address; "+
			"set bearerTokenFile (or bearerTokenEnv) and/or username with passwordFile (or passwordEnv), as registered in Harbor, "+
			"or allowUnauthenticated: true where only Harbor can reach the admin listener", c.Admin.Addr)
	}
}

// LoopbackAddr reports whether the host:port addr binds only a loopback address.
func LoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
