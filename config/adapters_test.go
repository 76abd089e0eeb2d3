package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/config"
)

func TestScanAdaptersLoad(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	err := cfg.Overlay([]byte(`
scan:
  adapters:
    - name: trivy
      url: http://trivy-adapter:8080
      timeout: 5m
  adapterRegistry:
    url: https://registry.internal
    credentials: {username: scanner-robot, passwordFile: /run/secrets/robot}
  adapterAPI:
    registries: [https://harbor.internal]
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if a := cfg.Scan.Adapters[0]; a.Name != "trivy" || a.URL != "http://trivy-adapter:8080" || a.Timeout.Std().Minutes() != 5 ||
		cfg.Scan.AdapterRegistry.Credentials.Username != "scanner-robot" || cfg.Scan.AdapterAPI.Registries[0] != "https://harbor.internal" {
		t.Fatalf("scan = %+v", cfg.Scan)
	}
}

func TestScanAdaptersRefused(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	err := cfg.Overlay([]byte(`
scan:
  adapters:
    - {name: Trivy, url: http://a}
    - {name: both, url: http://b}
    - {name: aqua, url: "ftp://c", timeout: -1s}
    - {name: aqua, url: http://d}
    - {url: http://e}
  adapterAPI:
    registries: [harbor.internal]
`))
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.Validate()
	var ve *config.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Validate: %v", err)
	}
	got := err.Error()
	for _, want := range []string{
		`scan.adapters[0].name: invalid name "Trivy"`,
		`scan.adapters[1].name: "both" is a scanner choice of its own`,
		`scan.adapters[2].url: want an http or https base URL, got "ftp://c"`,
		`scan.adapters[2].timeout: must not be negative`,
		`scan.adapters[3].name: "aqua" listed twice`,
		`scan.adapters[4].name: required`,
		`scan.adapterAPI.registries[0]: want an http or https base URL, got "harbor.internal"`,
		`scan.adapterRegistry.url: want the http or https URL the adapters pull from, got ""`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
}

func TestScanAdapterRegistryModes(t *testing.T) {
	t.Parallel()
	load := func(t *testing.T, doc string) (config.Config, error) {
		t.Helper()
		cfg := config.Default()
		if err := cfg.Overlay([]byte(doc)); err != nil {
			t.Fatal(err)
		}
		return cfg, cfg.Validate()
	}
	const adapters = "scan:\n  adapters: [{name: trivy, url: http://trivy:8080}]\n"
	cfg, err := load(t, adapters+"  adapterRegistry: {url: https://gateway.internal}\n")
	if err != nil || cfg.Scan.AdapterRegistry.EffectiveMode() != config.AdapterRegistryGateway {
		t.Fatalf("no credentials: mode %q, %v; want gateway", cfg.Scan.AdapterRegistry.EffectiveMode(), err)
	}
	cfg, err = load(t, adapters+"  adapterRegistry: {url: https://registry.internal, credentials: {username: robot, password: x}}\n")
	if err != nil || cfg.Scan.AdapterRegistry.EffectiveMode() != config.AdapterRegistryDirect {
		t.Fatalf("credentials: mode %q, %v; want direct", cfg.Scan.AdapterRegistry.EffectiveMode(), err)
	}
	cfg, err = load(t, adapters+"  adapterRegistry: {url: https://registry.internal, mode: direct}\n")
	if err != nil || cfg.Scan.AdapterRegistry.EffectiveMode() != config.AdapterRegistryDirect {
		t.Fatalf("anonymous direct: mode %q, %v", cfg.Scan.AdapterRegistry.EffectiveMode(), err)
	}
	if _, err := load(t, adapters+"  adapterRegistry: {url: https://gateway.internal, scheme: bearer}\n"); err != nil {
		t.Fatalf("bearer: %v", err)
	}
	_, err = load(t, adapters+"  adapterRegistry: {url: https://gateway.internal, mode: proxy, scheme: token}\n")
	for _, want := range []string{`scan.adapterRegistry.mode: want "gateway" or "direct", got "proxy"`, `scan.adapterRegistry.scheme: want basic or bearer, got "token"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("problems lack %q: %v", want, err)
		}
	}
	_, err = load(t, adapters+"  adapterRegistry: {url: https://gateway.internal, mode: gateway, credentials: {username: robot}}\n")
	if err == nil || !strings.Contains(err.Error(), "scan.adapterRegistry.credentials: in gateway mode each scan gets a credential of its own") {
		t.Errorf("gateway mode with credentials: %v", err)
	}
	_, err = load(t, adapters+"  adapterRegistry: {url: https://registry.internal, scheme: bearer, credentials: {username: robot}}\n")
	if err == nil || !strings.Contains(err.Error(), "scan.adapterRegistry.scheme: is for the credentials of gateway mode") {
		t.Errorf("scheme in direct mode: %v", err)
	}
}

// The adapter API on a non-loopback admin address needs a credential, or an explicit
// allowUnauthenticated; on loopback it may go without.
func TestAdapterAPIAuthDefault(t *testing.T) {
	t.Parallel()
	load := func(doc string) error {
		cfg := config.Default()
		if err := cfg.Overlay([]byte(doc)); err != nil {
			t.Fatal(err)
		}
		return cfg.Validate()
	}
	const api = "scan:\n  adapterAPI:\n    registries: [https://harbor.internal]\n"
	err := load("admin: {addr: \"0.0.0.0:9090\"}\n" + api)
	if err == nil || !strings.Contains(err.Error(), `scan.adapterAPI.auth: required: the adapter API would be served unauthenticated on admin.addr "0.0.0.0:9090"`) {
		t.Fatalf("non-loopback without auth: %v", err)
	}
	if err := load("admin: {addr: \":9090\"}\n" + api); err == nil {
		t.Fatal("all addresses without auth accepted")
	}
	for _, ok := range []string{
		"admin: {addr: \"127.0.0.1:9090\"}\n" + api,
		"admin: {addr: \"[::1]:9090\"}\n" + api,
		"admin: {addr: \"localhost:9090\"}\n" + api,
		"admin: {addr: \"0.0.0.0:9090\"}\n" + api + "    auth: {allowUnauthenticated: true}\n",
		"admin: {addr: \"0.0.0.0:9090\"}\n" + api + "    auth: {bearerTokenFile: /run/secrets/t}\n",
		"admin: {addr: \"0.0.0.0:9090\"}\n" + api + "    auth: {username: harbor, passwordEnv: PW}\n",
	} {
		if err := load(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	err = load("admin: {addr: \"127.0.0.1:9090\"}\n" + api + "    auth: {bearerTokenFile: /a, bearerTokenEnv: B, passwordFile: /p, passwordEnv: P, allowUnauthenticated: true}\n")
	for _, want := range []string{
		"scan.adapterAPI.auth.bearerTokenFile: give bearerTokenFile or bearerTokenEnv, not both",
		"scan.adapterAPI.auth.passwordFile: give passwordFile or passwordEnv, not both",
		"scan.adapterAPI.auth.username: required with a password",
		"scan.adapterAPI.auth.allowUnauthenticated: contradicts",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("problems lack %q: %v", want, err)
		}
	}
	if err := load("admin: {addr: \"127.0.0.1:9090\"}\n" + api + "    auth: {username: harbor}\n"); err == nil || !strings.Contains(err.Error(), "scan.adapterAPI.auth.passwordFile: required with username") {
		t.Errorf("username alone: %v", err)
	}
}
