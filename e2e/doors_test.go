package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/cosigntest"
)

// TestOperationalEndpointsAreOnTheAdminListener: anonymous clients of the registry port get
// no metrics and no readiness details (repository names, exception owners, file paths); the
// admin listener has both.
func TestOperationalEndpointsAreOnTheAdminListener(t *testing.T) {
	gw := startGateway(t)
	client := &http.Client{Timeout: 10 * time.Second}
	fetch := func(url string) (int, string) {
		t.Helper()
		resp, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	// Something to count, so that the metrics would name a repository.
	pushStatus(t, gw, "e2e/secret-project", "1.0.0")

	if code, body := fetch(gw.url("/metrics")); code != http.StatusNotFound || strings.Contains(body, "portcullis_") {
		t.Errorf("GET /metrics on the registry port: %d %.200s, want 404 without metrics", code, body)
	}
	for _, path := range []string{"/readyz", "/readyz?verbose=1", "/healthz"} {
		code, body := fetch(gw.url(path))
		var doc map[string]any
		if err := json.Unmarshal([]byte(body), &doc); err != nil {
			t.Fatalf("GET %s on the registry port: %d %q: %v", path, code, body, err)
		}
		if code != http.StatusOK || len(doc) != 1 {
			t.Errorf("GET %s on the registry port: %d %s, want 200 with the status alone", path, code, body)
		}
		for _, leak := range []string{"policy", "vulndb", "cache", "upstream", "data", "/"} {
			if strings.Contains(body, leak) {
				t.Errorf("GET %s on the registry port reveals %q: %s", path, leak, body)
			}
		}
	}

	code, body := fetch(gw.adminURL("/metrics"))
	if code != http.StatusOK || !strings.Contains(body, "portcullis_http_requests_total") {
		t.Errorf("GET /metrics on the admin listener: %d %.200s, want the metrics", code, body)
	}
	code, body = fetch(gw.adminURL("/readyz"))
	var st struct {
		Ready  bool              `json:"ready"`
		Checks map[string]string `json:"checks"`
		Info   map[string]string `json:"info"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil || code != http.StatusOK || !st.Ready ||
		st.Checks["upstream"] != "ok" || st.Info["policy"] == "" || st.Info["vulndb"] == "" {
		t.Errorf("GET /readyz on the admin listener: %d %s, want readiness with its details", code, body)
	}
	if !strings.HasPrefix(gw.admin, "127.0.0.1:") {
		t.Errorf("admin listener on %s, want loopback", gw.admin)
	}
}

// TestDoorsChooseTheEnvironment runs a gateway with two doors in front of one registry: the
// cluster door (no host) and the CI door (host ci.registry.example, where the environment
// ci has no signature rule). An unsigned image in prod/** is refused on the cluster door
// whatever Host or X-Forwarded-Host the client sends, and served on the CI door: GET and
// HEAD, by tag and by digest, fresh and from the hot path.
func TestDoorsChooseTheEnvironment(t *testing.T) {
	dir := t.TempDir()
	release := cosigntest.NewKey(t)
	policyPath := filepath.Join(dir, "policy.yaml")
	writeFile(t, policyPath, []byte(`version: 1
authorities:
`+release.AuthorityYAML(t, "release")+`environments:
  - name: ci
    repositories: ["prod/**"]
    hosts: ["ci.registry.example"]
  - name: prod
    repositories: ["prod/**"]
  - name: dev
    repositories: ["**"]
    failMode: open
rules:
  - id: prod-signed
    type: signature
    mode: block
    environments: [prod]
    authorities: [release]
  - id: immutable-tags
    type: immutable
    mode: block
`))
	cfgPath := filepath.Join(dir, "portcullis.yaml")
	writeFile(t, cfgPath, []byte(`listeners:
  - name: ci
    addr: 127.0.0.1:0
    host: ci.registry.example
`))
	gw := startGateway(t, "--config", cfgPath, "--policy", policyPath)
	ciDoor := "http://" + gw.waitListening(t, "portcullis listening", "ci")
	cluster := gw.url("")
	client := &http.Client{Timeout: 30 * time.Second}

	// An unsigned image, pushed by raw HTTP through the cluster door (signature rules are
	// pull rules).
	img := newImage(t)
	pushBlob(t, client, gw, "prod/app", sha256Digest(img.config), bytes.NewReader(img.config), int64(len(img.config)))
	pushBlob(t, client, gw, "prod/app", img.layerDigest(), bytes.NewReader(img.layer), int64(len(img.layer)))
	req, _ := http.NewRequest(http.MethodPut, cluster+"/v2/prod/app/manifests/1.0.0", bytes.NewReader(img.manifest))
	req.Header.Set("Content-Type", mediaManifest)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push prod/app:1.0.0: %s", resp.Status)
	}

	pull := func(method, base, reference string, hdr ...string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, base+"/v2/prod/app/manifests/"+reference, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", mediaManifest)
		for i := 0; i+1 < len(hdr); i += 2 {
			if hdr[i] == "Host" {
				req.Host = hdr[i+1]
			} else {
				req.Header.Set(hdr[i], hdr[i+1])
			}
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	spoofs := [][]string{
		{"Host", "ci.registry.example"},
		{"Host", "ci.registry.example:5000"},
		{"X-Forwarded-Host", "ci.registry.example"},
		{"Host", "ci.registry.example", "X-Forwarded-Host", "ci.registry.example", "Forwarded", "host=ci.registry.example"},
	}
	check := func(when string) {
		t.Helper()
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			for _, reference := range []string{"1.0.0", img.digest()} {
				label := when + " " + method + " prod/app:" + reference
				for _, spoof := range spoofs {
					if resp := pull(method, cluster, reference, spoof...); resp.StatusCode != http.StatusForbidden {
						t.Errorf("%s on the cluster door with %v: %s, want 403 (prod's signature rule)", label, spoof, resp.Status)
					}
				}
				if resp := pull(method, ciDoor, reference, "Host", "registry.example"); resp.StatusCode != http.StatusOK {
					t.Errorf("%s on the CI door: %s, want 200 (environment ci)", label, resp.Status)
				}
			}
		}
	}
	check("fresh")
	if resp := pull(http.MethodGet, ciDoor, "1.0.0"); resp.Header.Get("Portcullis-Cache") != "hit" {
		t.Fatalf("the hot path does not answer prod/app:1.0.0 on the CI door (Portcullis-Cache %q)", resp.Header.Get("Portcullis-Cache"))
	}
	check("hot path")

	// The decisions name the environment the door chose.
	envs := map[string]int{}
	poll(10*time.Second, func() bool {
		clear(envs)
		for _, e := range readAudit(t, filepath.Join(gw.cmd.Dir, "data", "audit.log")) {
			if e.Repository == "prod/app" && e.Action == "pull" {
				envs[e.Environment+" "+e.Verdict]++
			}
		}
		return envs["prod deny"] > 0 && envs["ci allow"] > 0
	})
	if envs["prod deny"] == 0 || envs["ci allow"] == 0 || envs["ci deny"] != 0 || envs["prod allow"] != 0 {
		t.Errorf("pull decisions by environment and verdict: %v, want prod deny and ci allow only", envs)
	}
}
