package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/internal/scantest"
)

// TestAdapterPullsThroughTheGateway runs the gateway mode of scan.adapterRegistry end to
// end: the upstream needs a password only the gateway holds (upstream.serviceAccount);
// the adapter (a second gateway's adapter API, which requires a Basic credential of its
// own: scan.adapterAPI.auth) is given the gateway's URL and a per-scan credential, pulls
// the image through the gateway, and its findings deny the pull.
func TestAdapterPullsThroughTheGateway(t *testing.T) {
	dir := t.TempDir()
	reg := regtest.Registry(t, regtest.Htpasswd(t, "svc", "s3cret"))
	img, err := mutate.AppendLayers(empty.Image, scantest.FileLayer(t, "app/server", scantest.VulnerableGoBinary(t)))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(strings.TrimPrefix(reg, "http://")+"/prod/app:1.0.0", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	svc := &authn.Basic{Username: "svc", Password: "s3cret"}
	if err := remote.Write(ref, img, remote.WithAuth(svc)); err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()

	// The gateway's door, chosen before it starts: the adapter is told its URL.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gwAddr := ln.Addr().String()
	ln.Close()

	pw := filepath.Join(dir, "adapter-password")
	writeFile(t, pw, []byte("h4rbor\n"))
	adapterCfg := filepath.Join(dir, "adapter.yaml")
	writeFile(t, adapterCfg, []byte(fmt.Sprintf("upstream:\n  serviceAccount: {username: svc, password: s3cret}\nscan:\n  db: %q\n  adapterAPI:\n    registries: [%q]\n    auth: {username: harbor, passwordFile: %q}\n",
		scantest.GoDB(t), "http://"+gwAddr, pw)))
	adapter := startGateway(t, "--config", adapterCfg, "--upstream", reg)
	resp, err := http.Get(adapter.adminURL("/api/v1/metadata"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("adapter API without its credential: %d, want 401", resp.StatusCode)
	}

	policyPath := filepath.Join(dir, "policy.yaml")
	writeFile(t, policyPath, []byte(`version: 1
environments:
  - {name: prod, repositories: ["prod/**"], failMode: closed, scanner: remote}
rules:
  - {id: vulns, type: vulnerability, mode: block, severity: high}
`))
	gwCfg := filepath.Join(dir, "gateway.yaml")
	writeFile(t, gwCfg, []byte(fmt.Sprintf(`upstream:
  serviceAccount: {username: svc, password: s3cret}
scan:
  adapters:
    - {name: remote, url: %q, timeout: 2m, credentials: {username: harbor, passwordFile: %q}}
  adapterRegistry:
    url: %q
`, "http://"+adapter.admin, pw, "http://"+gwAddr)))
	gw := startGateway(t, "--config", gwCfg, "--policy", policyPath, "--upstream", reg, "--addr", gwAddr)

	req, _ := http.NewRequest(http.MethodGet, gw.url("/v2/prod/app/manifests/"+digest.String()), nil)
	req.SetBasicAuth("svc", "s3cret")
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "GO-2022-1059") {
		t.Fatalf("pull judged by the adapter pulling through the gateway: %d %s", resp.StatusCode, body)
	}
}
