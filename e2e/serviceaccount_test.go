package e2e

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/portcullis-dev/portcullis/internal/regtest"
)

const serviceAccountPolicy = `version: 1
environments:
  - {name: prod, repositories: ["prod/**"]}
rules:
  - {id: no-root, type: config, mode: block, check: root}
`

// TestUpstreamRequiringAuthWithoutServiceAccount runs the gateway in front of a token-auth
// registry: without upstream.serviceAccount it logs at start what to configure, /readyz on
// the admin listener is not ready and says why, and a prod push (whose config rule reads the
// image) is DENIED saying to configure upstream.serviceAccount, not a bare 503. With the
// service account it is ready and the push is accepted.
func TestUpstreamRequiringAuthWithoutServiceAccount(t *testing.T) {
	opt, _ := regtest.TokenAuth(t, "ci", "s3cret")
	reg := regtest.Registry(t, opt)
	policyPath := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, policyPath, []byte(serviceAccountPolicy))

	gw := launchGateway(t, "--upstream", reg, "--policy", policyPath)
	if !poll(startTimeout, func() bool {
		return gw.log.contains("upstream requires authentication: configure upstream.serviceAccount")
	}) {
		t.Fatalf("no start-up error about the service account:\n%s", gw.log.tail(30))
	}
	resp, err := http.Get(gw.adminURL("/readyz"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "configure upstream.serviceAccount") {
		t.Fatalf("admin /readyz: %d %s, want 503 saying to configure upstream.serviceAccount", resp.StatusCode, body)
	}

	img := nonRootImage(t)
	err = pushWithAuth(gw.addr, "prod/app:1.0.0", img)
	if err == nil || !strings.Contains(err.Error(), "DENIED") || !strings.Contains(err.Error(), "configure upstream.serviceAccount") ||
		strings.Contains(err.Error(), "503") {
		t.Fatalf("push without a service account: %v, want DENIED saying to configure upstream.serviceAccount", err)
	}

	ok := startGatewayEnv(t, []string{"PORTCULLIS_UPSTREAM_USERNAME=ci", "PORTCULLIS_UPSTREAM_PASSWORD=s3cret"}, "--upstream", reg, "--policy", policyPath)
	if err := pushWithAuth(ok.addr, "prod/app:1.0.0", img); err != nil {
		t.Fatalf("push with the service account: %v", err)
	}
	if ok.log.contains("configure upstream.serviceAccount") {
		t.Fatalf("a gateway with a working service account says to configure one:\n%s", ok.log.tail(30))
	}
}

// nonRootImage is a random image that runs as a non-root user.
func nonRootImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Config(img, v1.Config{User: "65532"})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// pushWithAuth pushes img through the gateway at addr as the client ci, whose credentials
// the gateway passes to the upstream (and its token realm).
func pushWithAuth(addr, repoTag string, img v1.Image) error {
	ref, err := name.ParseReference(addr+"/"+repoTag, name.Insecure)
	if err != nil {
		return err
	}
	return remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "ci", Password: "s3cret"}))
}
