package e2e

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/internal/scantest"
)

// TestGatewayScansThroughAnAdapter runs two gateways: one serves its built-in scanner as a
// Harbor scanner adapter (scan.adapterAPI on its admin listener), the other judges prod
// with that adapter (scan.adapters, environment scanner: remote). A pull of an image with
// a vulnerable Go module through the second is denied naming the advisory the adapter
// found; with the adapter stopped, a new image's pull is refused by the closed fail mode.
func TestGatewayScansThroughAnAdapter(t *testing.T) {
	dir := t.TempDir()
	reg := regtest.Registry(t)
	dbDir := scantest.GoDB(t)
	img, err := mutate.AppendLayers(empty.Image, scantest.FileLayer(t, "app/server", scantest.VulnerableGoBinary(t)))
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := regtest.WriteImage(t, reg, "prod/app:1.0.0", img)
	img2, err := mutate.AppendLayers(img, scantest.FilesLayer(t, map[string]string{"etc/motd": "hello\n"}))
	if err != nil {
		t.Fatal(err)
	}
	digest2, _ := regtest.WriteImage(t, reg, "prod/app:1.0.1", img2)

	adapterCfg := filepath.Join(dir, "adapter.yaml")
	writeFile(t, adapterCfg, []byte(fmt.Sprintf("scan:\n  db: %q\n  adapterAPI:\n    registries: [%q]\n", dbDir, reg)))
	adapter := startGateway(t, "--config", adapterCfg, "--upstream", reg)

	policyPath := filepath.Join(dir, "policy.yaml")
	writeFile(t, policyPath, []byte(`version: 1
environments:
  - {name: prod, repositories: ["prod/**"], failMode: closed, scanner: remote}
rules:
  - {id: vulns, type: vulnerability, mode: block, severity: high}
`))
	gwCfg := filepath.Join(dir, "gateway.yaml")
	writeFile(t, gwCfg, []byte(fmt.Sprintf("scan:\n  adapters:\n    - {name: remote, url: %q, timeout: 2m}\n  adapterRegistry:\n    mode: direct\n    url: %q\n",
		"http://"+adapter.admin, reg)))
	gw := startGateway(t, "--config", gwCfg, "--policy", policyPath, "--upstream", reg)

	code, body := pullBody(t, gw, "prod/app", digest)
	if code != http.StatusForbidden || !strings.Contains(body, "GO-2022-1059") {
		t.Fatalf("pull judged by the adapter: %d %s, want 403 naming GO-2022-1059", code, body)
	}

	adapter.stop(t)
	code, body = pullBody(t, gw, "prod/app", digest2)
	if code == http.StatusOK || !strings.Contains(body, "scanner adapter remote") {
		t.Fatalf("pull with the adapter down: %d %s, want refused naming the adapter", code, body)
	}
}

// pullBody GETs repo@digest's manifest through gw and returns the status and body.
func pullBody(t *testing.T, gw *gateway, repo, digest string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, gw.url("/v2/"+repo+"/manifests/"+digest), nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
