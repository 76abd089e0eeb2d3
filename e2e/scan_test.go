package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/internal/scantest"
	"github.com/portcullis-dev/portcullis/scan/vulndb/vulndbtest"
)

// scanPolicy blocks, in prod, fixable vulnerabilities of high severity and up and secrets
// in layers; dev gets the same rules as warnings. Go advisories carry no severity of their
// own: GitHub's records for them (imported alongside) give it.
const scanPolicy = `version: 1
environments:
  - name: prod
    repositories: ["prod/**"]
    failMode: closed
  - name: dev
    repositories: ["**"]
    failMode: open
rules:
  - {id: prod-vulns, type: vulnerability, mode: block, environments: [prod], actions: [push, pull], severity: high, fixable: true, unknown: ignore}
  - {id: dev-vulns, type: vulnerability, mode: warn, environments: [dev], severity: high, fixable: true, unknown: ignore}
  - {id: prod-secrets, type: secret, mode: block, environments: [prod]}
  - {id: dev-secrets, type: secret, mode: warn, environments: [dev]}
`

// TestScanOnPushWithCrane pushes with crane an image holding a Go binary built against
// golang.org/x/crypto v0.30.0 (GO-2024-3321 / GHSA-v778-237x-gjrc, critical, fixed in
// 0.31.0) and a private key in another layer: prod denies it naming both, dev accepts it
// with warnings naming both. An image built against v0.31.0 is accepted in prod; after
// `portcullis db import` of a newer database (adding GHSA-hcg3-q754-cr77, high, fixed in
// 0.35.0) its pull is denied, and no layer was analysed again to get there.
func TestScanOnPushWithCrane(t *testing.T) {
	crane := requireTool(t, "crane")
	dir := t.TempDir()
	osv := vulndbtest.GoOSVDir(t)
	testdata := filepath.Join(moduleRootDir(t), "scan", "vulndb", "testdata")

	// The database as of the end of 2024, then the current one.
	old := filepath.Join(dir, "osv-2024")
	copyPublishedBefore(t, osv, old, "2025-01-01")
	dbDir := filepath.Join(dir, "vulndb")
	runTool(t, gatewayBin, "db", "import", "--db", dbDir, old, filepath.Join(testdata, "ghsa-go-crypto-2024"))

	policyPath := filepath.Join(dir, "policy.yaml")
	writeFile(t, policyPath, []byte(scanPolicy))
	cfg := filepath.Join(dir, "portcullis.yaml")
	writeFile(t, cfg, []byte(fmt.Sprintf("scan:\n  db: %q\n", dbDir)))
	gw := startGateway(t, "--config", cfg, "--policy", policyPath, "--upstream", regtest.Registry(t))

	vulnerable := scantest.BuildGoProgram(t, scantest.GoProgram{Name: "server",
		Require: map[string]string{"golang.org/x/crypto": "v0.30.0"}, Imports: []string{"golang.org/x/crypto/ssh"}})
	fixed := scantest.BuildGoProgram(t, scantest.GoProgram{Name: "server",
		Require: map[string]string{"golang.org/x/crypto": "v0.31.0"}, Imports: []string{"golang.org/x/crypto/ssh"}})
	appLayer := writeTar(t, dir, "app.tar", map[string][]byte{"app/server": readFile(t, vulnerable)})
	key, keyBody := scantest.PrivateKeyPEM(t)
	keyLayer := writeTar(t, dir, "key.tar", map[string][]byte{"app/deploy-key.pem": []byte(key)})
	fixedLayer := writeTar(t, dir, "fixed.tar", map[string][]byte{"app/server": readFile(t, fixed)})

	// Prod: denied, naming the advisory with its fix and the key with its file.
	_, stderr, err := tryTool(crane, "append", "--insecure", "--oci-empty-base", "-f", appLayer, "-f", keyLayer, "-t", gw.addr+"/prod/api:1.0.0")
	if err == nil {
		t.Fatal("prod accepted an image with a critical fixable advisory and a private key")
	}
	for _, want := range []string{"DENIED", "[prod-vulns]", "CVE-2024-45337", "golang.org/x/crypto", "0.31.0", "[prod-secrets]", "/app/deploy-key.pem"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the prod denial does not say %q:\n%s", want, stderr)
		}
	}
	if firstLine := keyBody[:64]; strings.Contains(stderr, firstLine) || gw.log.contains(firstLine) {
		t.Error("the private key's body appears in the denial or the gateway's log")
	}

	// Dev: accepted, the same two findings shown as warnings.
	_, stderr = runTool(t, crane, "append", "--insecure", "--oci-empty-base", "-f", appLayer, "-f", keyLayer, "-t", gw.addr+"/dev/api:1.0.0")
	for _, want := range []string{"[dev-vulns]", "CVE-2024-45337", "[dev-secrets]", "/app/deploy-key.pem"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the dev push's warnings do not say %q:\n%s", want, stderr)
		}
	}

	// The layers were analysed as they streamed in, not read back afterwards.
	if n := sumMetric(scrapeMetrics(t, gw), "portcullis_upload_tee_total", map[string]string{"outcome": "analysed"}); n < 2 {
		t.Errorf("%v layer uploads analysed by the tee, want at least the two layers pushed", n)
	}

	// The fixed build passes in prod with the 2024 database.
	out, _ := runTool(t, crane, "append", "--insecure", "--oci-empty-base", "-f", fixedLayer, "-t", gw.addr+"/prod/api:1.0.1")
	_, digest, _ := strings.Cut(strings.TrimSpace(out), "@")
	if code, err := pullStatus(gw, "prod/api", digest); err != nil || code != 200 {
		t.Fatalf("pull of the fixed build with the 2024 database: %d %v", code, err)
	}

	// A newer database: the same digest is now refused, matched from the cached layers.
	layersBefore, findingsBefore := computations(t, gw, "layer"), computations(t, gw, "findings")
	runTool(t, gatewayBin, "db", "import", "--db", dbDir, osv, filepath.Join(testdata, "ghsa-go-crypto-2024"), filepath.Join(testdata, "ghsa-go-crypto-2025"))
	if err := gw.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	var denial string
	if !poll(30e9, func() bool {
		_, stderr, err := tryTool(crane, "manifest", "--insecure", gw.addr+"/prod/api@"+digest)
		denial = stderr
		return err != nil
	}) {
		t.Fatal("the pull is still served after importing a database with an advisory against it")
	}
	for _, want := range []string{"DENIED", "CVE-2025-22869", "0.35.0"} {
		if !strings.Contains(denial, want) {
			t.Errorf("the pull denial after the import does not say %q:\n%s", want, denial)
		}
	}
	if n := computations(t, gw, "layer") - layersBefore; n != 0 {
		t.Errorf("%d layers analysed again after the database import; want 0 (inventories are cached)", n)
	}
	if n := computations(t, gw, "findings") - findingsBefore; n < 1 {
		t.Errorf("no new match after the database import (findings computations +%d)", n)
	}
}

// copyPublishedBefore copies the OSV records in src published before day into dst.
func copyPublishedBefore(t *testing.T, src, dst, day string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	kept := 0
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b := readFile(t, filepath.Join(src, e.Name()))
		var rec struct {
			Published string `json:"published"`
		}
		if json.Unmarshal(b, &rec) != nil || rec.Published >= day {
			continue
		}
		writeFile(t, filepath.Join(dst, e.Name()), b)
		kept++
	}
	if kept < 1000 {
		t.Fatalf("only %d Go advisories published before %s in %s", kept, day, src)
	}
}

// writeTar writes a layer tarball holding files (path → content, mode 0755) and returns its path.
func writeTar(t *testing.T, dir, name string, files map[string][]byte) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for p, b := range files {
		if err := tw.WriteHeader(&tar.Header{Name: p, Mode: 0o755, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	writeFile(t, path, buf.Bytes())
	return path
}

// moduleRootDir is the module's root directory.
func moduleRootDir(t *testing.T) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}
