package main

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/config"
	"github.com/portcullis-dev/portcullis/health"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/proxy"
	"github.com/portcullis-dev/portcullis/telemetry"
)

func TestScanAdaptersWiring(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "robot")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := config.Scan{
		Adapters:        []config.ScanAdapter{{Name: "trivy", URL: "http://127.0.0.1:8080"}},
		AdapterRegistry: config.AdapterRegistry{URL: "https://registry.internal", Credentials: config.Credentials{Username: "robot", PasswordFile: pw}},
	}
	adapters, reg, err := scanAdapters(c, cache.NewMemory(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	if adapters["trivy"] == nil || reg.URL != "https://registry.internal" || reg.Authorization != "Basic cm9ib3Q6czNjcmV0" { // robot:s3cret
		t.Fatalf("adapters %v, registry %+v", adapters, reg)
	}
	c.AdapterRegistry.Credentials.PasswordFile = filepath.Join(t.TempDir(), "missing")
	if _, _, err := scanAdapters(c, cache.NewMemory(1<<20)); err == nil || !strings.Contains(err.Error(), "scan.adapterRegistry.credentials.passwordFile") {
		t.Fatalf("missing password file: %v", err)
	}
}

func TestAdapterAPIWiring(t *testing.T) {
	cfg := config.Default()
	log := slog.New(slog.DiscardHandler)
	if h, closeFn, err := adapterAPI(cfg, log); h != nil || err != nil {
		closeFn()
		t.Fatal("adapter API served without scan.adapterAPI.registries")
	}
	cfg.DataDir = t.TempDir()
	cfg.Scan.AdapterAPI.Registries = []string{"https://harbor.internal"}
	h, closeFn, err := adapterAPI(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	mux := adminMux(health.New(time.Second), &telemetry.Telemetry{Metrics: http.NotFoundHandler()}, h)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/metadata", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"name":"portcullis"`) {
		t.Fatalf("metadata on the admin listener: %d %s", rec.Code, rec.Body)
	}

	// With auth: the token from the environment, the Basic password from a file.
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("b4sic\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PORTCULLIS_TEST_ADAPTER_TOKEN", "t0ken")
	cfg.Scan.AdapterAPI.Auth = config.AdapterAPIAuth{BearerTokenEnv: "PORTCULLIS_TEST_ADAPTER_TOKEN", Username: "harbor", PasswordFile: pw}
	h, closeAuth, err := adapterAPI(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAuth()
	mux = adminMux(health.New(time.Second), &telemetry.Telemetry{Metrics: http.NotFoundHandler()}, h)
	for _, c := range []struct {
		auth string
		want int
	}{{"", http.StatusUnauthorized}, {"Bearer t0ken", http.StatusOK}, {"Basic aGFyYm9yOmI0c2lj", http.StatusOK}, {"Basic aGFyYm9yOmI0c2lj\n", http.StatusOK}, {"Bearer b4sic", http.StatusUnauthorized}} {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/metadata", nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("Authorization %q: %d, want %d", c.auth, rec.Code, c.want)
		}
	}
	cfg.Scan.AdapterAPI.Auth = config.AdapterAPIAuth{BearerTokenEnv: "PORTCULLIS_TEST_UNSET_VARIABLE"}
	if _, _, err := adapterAPI(cfg, log); err == nil || !strings.Contains(err.Error(), "scan.adapterAPI.auth.bearerTokenEnv: environment variable PORTCULLIS_TEST_UNSET_VARIABLE is not set") {
		t.Fatalf("unset token variable: %v", err)
	}
}

func TestUnknownScannersNamed(t *testing.T) {
	p, err := policy.Parse([]byte(`version: 1
environments:
  - {name: a, repositories: ["a/**"], scanner: trivy}
  - {name: b, repositories: ["b/**"], scanner: aqua}
  - {name: c, repositories: ["c/**"], scanner: both}
  - {name: e, repositories: ["e/**"], scanner: [builtin, trivy, aqua]}
  - {name: d, repositories: ["**"]}
rules:
  - {id: no-latest, type: tag, mode: block, forbidden: [latest]}
`))
	if err != nil {
		t.Fatal(err)
	}
	got := unknownScanners(p, config.Scan{Adapters: []config.ScanAdapter{{Name: "trivy"}, {Name: "sysdig"}}})
	want := []string{`environment b: scanner "aqua" is not in scan.adapters`, "environment c: scanner both needs exactly one scan.adapters entry, there are 2", `environment e: scanner "aqua" is not in scan.adapters`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("unknown scanners:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// portcullis check shows where the scanners disagree.
func TestCheckTableShowsDisagreements(t *testing.T) {
	rep := &proxy.DecisionReport{Verdict: "allow", Results: []proxy.RuleResult{}, Disagreements: []policy.Disagreement{{
		ID: "CVE-2022-32149", Package: "golang.org/x/text", On: []string{"missing", "severity"},
		Reports:     []policy.ScannerReport{{Scanner: "builtin", ID: "GO-2022-1059", Severity: "high", Fixed: "0.3.8"}, {Scanner: "trivy", ID: "CVE-2022-32149", Severity: "medium"}},
		MissingFrom: []string{"aqua"},
	}}}
	var b strings.Builder
	if err := printCheckTable(&b, "reg/app@sha256:1", rep); err != nil {
		t.Fatal(err)
	}
	want := "  - CVE-2022-32149 in golang.org/x/text (missing, severity): builtin: GO-2022-1059 high, 0.3.8; trivy: CVE-2022-32149 medium, no fix; not reported by aqua"
	if !strings.Contains(b.String(), "Scanners disagree") || !strings.Contains(b.String(), want) {
		t.Fatalf("check table:\n%s\nwant a line:\n%s", b.String(), want)
	}
}
