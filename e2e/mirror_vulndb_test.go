package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/internal/scantest"
	"github.com/portcullis-dev/portcullis/scan/vulndb/vulndbtest"
)

// TestMirrorCarriesVulnDB carries the vulnerability database across the gap in a bundle:
// a gateway on the disconnected side, started with a data directory holding the 2024
// database, serves a build against golang.org/x/crypto v0.31.0; `mirror import` of a
// bundle carrying the current OSV export (with GHSA-hcg3-q754-cr77, fixed in 0.35.0)
// imports it into that data directory, `db status` shows the bundle's revision, and after
// the gateway's reload the same digest is denied. A second import leaves the database
// unchanged; a bundle carrying an older database is refused with nothing imported.
func TestMirrorCarriesVulnDB(t *testing.T) {
	crane := requireTool(t, "crane")
	dir := t.TempDir()
	osv := vulndbtest.GoOSVDir(t)
	testdata := filepath.Join(moduleRootDir(t), "scan", "vulndb", "testdata")
	ghsa := func(year string) string {
		entries, err := os.ReadDir(filepath.Join(testdata, "ghsa-go-crypto-"+year))
		if err != nil || len(entries) != 1 {
			t.Fatalf("ghsa-go-crypto-%s: %v", year, err)
		}
		return filepath.Join(testdata, "ghsa-go-crypto-"+year, entries[0].Name())
	}
	// OSV exports as directories: the end of 2024, and the current one.
	export := func(name, before string, years ...string) string {
		d := filepath.Join(dir, name)
		copyPublishedBefore(t, osv, d, before)
		for _, y := range years {
			writeFile(t, filepath.Join(d, filepath.Base(ghsa(y))), readFile(t, ghsa(y)))
		}
		return d
	}
	old := export("osv-2024", "2025-01-01", "2024")
	current := export("osv-now", "9999-01-01", "2024", "2025")

	// Connected side: one image to carry, and the two bundles.
	src := regtest.Registry(t)
	srcHost := strings.TrimPrefix(src, "http://")
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	regtest.WriteImage(t, src, "team/app:1.0.0", img)
	keyFile, pubFile := bundleKey(t, dir)
	mirrorFile := filepath.Join(dir, "mirror.yaml")
	writeFile(t, mirrorFile, []byte("version: 1\nsources:\n  - registry: "+srcHost+"\n    repositories:\n      - {name: team/app, tags: [\"1.0.0\"]}\n"))
	newBundle, oldBundle := filepath.Join(dir, "bundle-now"), filepath.Join(dir, "bundle-2024")
	portcullis(t, 0, []string{"COSIGN_PASSWORD=pw"}, "mirror", "collect", "--file", mirrorFile, "--out", newBundle, "--key", keyFile, "--vulndb", current)
	portcullis(t, 0, []string{"COSIGN_PASSWORD=pw"}, "mirror", "collect", "--file", mirrorFile, "--out", oldBundle, "--key", keyFile, "--vulndb", old)
	var bm struct {
		VulnDB struct {
			Revision string `json:"revision"`
		} `json:"vulnDB"`
	}
	if err := json.Unmarshal(readFile(t, filepath.Join(newBundle, "bundle.json")), &bm); err != nil || bm.VulnDB.Revision == "" {
		t.Fatalf("bundle.json lists no database: %v", err)
	}

	// Disconnected side: a gateway whose data directory holds the 2024 database.
	dataDir := filepath.Join(dir, "data")
	dbDir := filepath.Join(dataDir, "vulndb")
	runTool(t, gatewayBin, "db", "import", "--db", dbDir, old)
	policyPath := filepath.Join(dir, "policy.yaml")
	writeFile(t, policyPath, []byte(scanPolicy))
	gw := startGateway(t, "--policy", policyPath, "--upstream", regtest.Registry(t), "--data-dir", dataDir)
	fixed := scantest.BuildGoProgram(t, scantest.GoProgram{Name: "server",
		Require: map[string]string{"golang.org/x/crypto": "v0.31.0"}, Imports: []string{"golang.org/x/crypto/ssh"}})
	layer := writeTar(t, dir, "fixed.tar", map[string][]byte{"app/server": readFile(t, fixed)})
	out, _ := runTool(t, crane, "append", "--insecure", "--oci-empty-base", "-f", layer, "-t", gw.addr+"/prod/api:1.0.1")
	_, digest, _ := strings.Cut(strings.TrimSpace(out), "@")
	if code, err := pullStatus(gw, "prod/api", digest); err != nil || code != 200 {
		t.Fatalf("pull with the 2024 database: %d %v", code, err)
	}

	// The older bundle is refused before anything is written.
	importArgs := func(bundle string) []string {
		return []string{"mirror", "import", "--bundle", bundle, "--key", pubFile, "--gateway", "http://" + gw.addr,
			"--vulndb-dir", dbDir, "--report", bundle + ".report.json"}
	}
	before := readFile(t, filepath.Join(dbDir, "manifest.json"))
	out = portcullis(t, 0, nil, importArgs(newBundle)...)
	if !strings.Contains(out, "vulnerability database imported") {
		t.Fatalf("import output:\n%s", out)
	}
	var rep struct {
		VulnDB struct{ Status, Revision string } `json:"vulnDB"`
	}
	if err := json.Unmarshal(readFile(t, newBundle+".report.json"), &rep); err != nil || rep.VulnDB.Status != "imported" || rep.VulnDB.Revision != bm.VulnDB.Revision {
		t.Fatalf("report: %v %+v", err, rep)
	}
	out, _ = runTool(t, gatewayBin, "db", "status", "--db", dbDir, "--output", "json")
	var st struct{ Revision string }
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Revision != bm.VulnDB.Revision {
		t.Fatalf("db status after the import shows %q, the bundle carried %q (%v)", st.Revision, bm.VulnDB.Revision, err)
	}
	if string(before) == string(readFile(t, filepath.Join(dbDir, "manifest.json"))) {
		t.Fatal("the database in the data directory did not change")
	}

	// The gateway reloads it (SIGHUP: at once) and re-matches the cached verdict.
	if err := gw.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	var denial string
	if !poll(30e9, func() bool {
		_, stderr, err := tryTool(crane, "manifest", "--insecure", gw.addr+"/prod/api@"+digest)
		denial = stderr
		return err != nil
	}) {
		t.Fatal("the pull is still served after the bundle's database was imported")
	}
	for _, want := range []string{"DENIED", "CVE-2025-22869", "0.35.0"} {
		if !strings.Contains(denial, want) {
			t.Errorf("the pull denial after the import does not say %q:\n%s", want, denial)
		}
	}

	// Again: unchanged. The older bundle: refused, the database kept.
	if out := portcullis(t, 0, nil, importArgs(newBundle)...); !strings.Contains(out, "vulnerability database unchanged") {
		t.Fatalf("second import:\n%s", out)
	}
	out = portcullis(t, 1, nil, importArgs(oldBundle)...)
	if !strings.Contains(out, "nothing imported") || !strings.Contains(out, "is older than the one in") {
		t.Fatalf("older bundle:\n%s", out)
	}
	out, _ = runTool(t, gatewayBin, "db", "status", "--db", dbDir, "--output", "json")
	if !strings.Contains(out, bm.VulnDB.Revision) {
		t.Fatalf("the refused older bundle changed the database:\n%s", out)
	}
}
