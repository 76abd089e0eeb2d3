package e2e

import (
	"crypto/rand"
	"path/filepath"
	"strings"
	"testing"
)

// TestStarterPolicyConfigAndSecrets pushes through the starter policy with crane: an image
// without a USER is accepted with the runs-as-root warning, and one with a token in its
// environment is denied, the token named but never shown.
func TestStarterPolicyConfigAndSecrets(t *testing.T) {
	crane := requireTool(t, "crane")
	gw := startGateway(t, "--policy", "starter")
	dir := t.TempDir()
	tarPath := filepath.Join(dir, "layer.tar")
	writeFile(t, tarPath, newImage(t).layerTar)
	repo := gw.addr + "/team/cfg"

	_, stderr := runTool(t, crane, "append", "--insecure", "--oci-empty-base", "-f", tarPath, "-t", repo+":1.0.0")
	if !strings.Contains(stderr, "[runs-as-root]") || !strings.Contains(stderr, "no USER is set") {
		t.Fatalf("crane did not show the runs-as-root warning:\n%s", stderr)
	}
	token := "ghp_" + randomBase62(t, 36)
	_, stderr, err := tryTool(crane, "mutate", "--insecure", repo+":1.0.0", "--env", "GH_TOKEN="+token, "-t", repo+":1.0.1")
	if err == nil {
		t.Fatal("an image with a GitHub token in its Env was accepted")
	}
	if !strings.Contains(stderr, "DENIED") || !strings.Contains(stderr, "[no-secrets]") || !strings.Contains(stderr, "GH_TOKEN") {
		t.Fatalf("denial does not name the secret rule and where the secret is:\n%s", stderr)
	}
	if strings.Contains(stderr, token) || gw.log.contains(token) {
		t.Fatal("the token itself appears in the client's error or the gateway's log")
	}
}

// randomBase62 returns n random base62 characters, shaped like a real token's random part
// (the detectors skip made-up tokens with repeated or ascending runs).
func randomBase62(t *testing.T, n int) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
