package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/cosigntest"
	"github.com/portcullis-dev/portcullis/internal/regtest"
)

// TestKeylessSignaturesThroughTheBinary: a policy whose authority is a certificate identity
// with a trustedRoot file next to the policy; the gateway serves a prod image signed
// keyless (legacy .sig) by that identity, offline, and refuses one signed (v3 bundle) by
// another identity with a message naming both.
func TestKeylessSignaturesThroughTheBinary(t *testing.T) {
	dir := t.TempDir()
	s := cosigntest.NewSigstore(t)
	const issuer = "https://token.actions.example.com"
	if err := os.Mkdir(filepath.Join(dir, "sigstore"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "sigstore", "trusted_root.json"), s.TrustedRoot(t))
	policyPath := filepath.Join(dir, "policy.yaml")
	writeFile(t, policyPath, []byte(`version: 1
authorities:
  - name: release-bot
    keyless:
      issuer: `+issuer+`
      subject: release-bot@example.com
      trustedRoot: sigstore/trusted_root.json
environments:
  - name: prod
    repositories: ["prod/**"]
rules:
  - id: prod-signed
    type: signature
    mode: block
    environments: [prod]
    authorities: [release-bot]
`))
	reg := regtest.Registry(t)
	gw := startGateway(t, "--policy", policyPath, "--upstream", reg)

	good, bad := newImage(t), newImage(t)
	for tag, img := range map[string]image{"1.0.0": good, "1.0.1": bad} {
		if code := pushImage(t, gw.url(""), "prod/app", tag, img, nil); code != http.StatusCreated {
			t.Fatalf("push prod/app:%s: %d", tag, code)
		}
	}
	// Signed in the upstream, as through a CI door (cosign reads the unsigned manifest
	// first, which the cluster door refuses).
	up := strings.TrimPrefix(reg, "http://")
	s.PushLegacyKeyless(t, up, "prod/app", good.digest(), "release-bot@example.com", issuer, cosigntest.KeylessOptions{})
	s.PushKeylessBundle(t, up, "prod/app", bad.digest(), "intern@example.com", issuer, cosigntest.KeylessOptions{})

	if get, head := pullCodes(t, gw.url(""), "prod/app", good.digest(), nil); get != http.StatusOK || head != http.StatusOK {
		t.Errorf("keyless-signed by release-bot: GET %d HEAD %d, want 200", get, head)
	}
	code, body, _ := rawDo(t, http.MethodGet, gw.url("/v2/prod/app/manifests/"+bad.digest()), nil, map[string]string{"Accept": mediaManifest})
	if code != http.StatusForbidden {
		t.Fatalf("keyless-signed by intern: %d %s, want 403", code, body)
	}
	for _, want := range []string{`subject \"intern@example.com\" from issuer`, `requires subject \"release-bot@example.com\" from issuer`} {
		if !strings.Contains(body, want) {
			t.Errorf("denial %s lacks %s", body, want)
		}
	}
}
