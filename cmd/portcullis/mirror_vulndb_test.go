package main

import (
	"bytes"
	"crypto/elliptic"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/mirror"
)

// TestMirrorVulnDB collects bundles carrying real OSV records (GitHub's advisories for
// golang.org/x/crypto), checks that a malformed export fails the collect, and imports the
// carried database as "mirror import" does: db status then shows the bundle's revision, a
// second import changes nothing, an older bundle is refused unless forced.
func TestMirrorVulnDB(t *testing.T) {
	reg := regtest.Registry(t)
	host := strings.TrimPrefix(reg, "http://")
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	regtest.WriteImage(t, reg, "team/app:1.0.0", img)
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	file := write("mirror.yaml", "version: 1\nsources:\n  - registry: "+host+"\n    repositories:\n      - {name: team/app, tags: [\"1.0.0\"], as: team/app}\n")
	priv, pub, err := cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), func(bool) ([]byte, error) { return []byte("pw"), nil })
	if err != nil {
		t.Fatal(err)
	}
	keyFile, pubFile := write("cosign.key", string(priv)), write("cosign.pub", string(pub))
	t.Setenv("COSIGN_PASSWORD", "pw")
	cmd := func(want int, args ...string) (string, string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if got := run(args, &stdout, &stderr); got != want {
			t.Fatalf("portcullis %v: exit %d, want %d\nstdout: %s\nstderr: %s", args, got, want, stdout.String(), stderr.String())
		}
		return stdout.String(), stderr.String()
	}
	testdata := filepath.Join("..", "..", "scan", "vulndb", "testdata")

	// A malformed record fails the collect on the connected side, naming the file.
	bad := write("bad-osv/GHSA-bad.json", `{"id": "GHSA-bad", "affected": 3}`)
	_, errOut := cmd(1, "mirror", "collect", "--file", file, "--out", filepath.Join(dir, "b0"), "--key", keyFile, "--vulndb", filepath.Dir(bad))
	if !strings.Contains(errOut, "GHSA-bad.json") {
		t.Fatalf("malformed export: %s", errOut)
	}
	cmd(1, "mirror", "collect", "--file", file, "--out", filepath.Join(dir, "b0"), "--key", keyFile, "--vulndb", filepath.Join(dir, "missing"))

	// Two bundles: a directory export of 2024 and a newer one of 2025.
	collect := func(name, osv string) (string, *mirror.BundleManifest) {
		t.Helper()
		b := filepath.Join(dir, name)
		out, _ := cmd(0, "mirror", "collect", "--file", file, "--out", b, "--key", keyFile, "--vulndb", osv)
		if !strings.Contains(out, "vulnerability database: 1 records") {
			t.Fatalf("collect printed %q", out)
		}
		out, _ = cmd(0, "mirror", "verify", "--bundle", b, "--key", pubFile)
		if !strings.Contains(out, "verified") {
			t.Fatalf("verify printed %q", out)
		}
		data, err := os.ReadFile(filepath.Join(b, mirror.ManifestFile))
		if err != nil {
			t.Fatal(err)
		}
		m, err := mirror.ParseBundleManifest(data)
		if err != nil || m.VulnDB == nil {
			t.Fatalf("bundle manifest: %v %+v", err, m)
		}
		return b, m
	}
	oldB, oldM := collect("b2024", filepath.Join(testdata, "ghsa-go-crypto-2024"))
	newB, newM := collect("b2025", filepath.Join(testdata, "ghsa-go-crypto-2025"))
	if !newM.VulnDB.Newest.After(oldM.VulnDB.Newest) {
		t.Fatalf("newest records: 2024 bundle %s, 2025 bundle %s", oldM.VulnDB.Newest, newM.VulnDB.Newest)
	}

	// The carried records as mirror.Import hands them over: verified, extracted.
	carried := func(b string, m *mirror.BundleManifest) string {
		t.Helper()
		layout := filepath.Join(t.TempDir(), "layout")
		if _, err := mirror.Extract(b, layout, mustVerifier(t, pubFile), nil); err != nil {
			t.Fatal(err)
		}
		zip := filepath.Join(t.TempDir(), "osv.zip")
		if err := os.Rename(filepath.Join(layout, "blobs", "sha256", strings.TrimPrefix(m.VulnDB.Layer, "sha256:")), zip); err != nil {
			t.Fatal(err)
		}
		return zip
	}
	dbDir := filepath.Join(dir, "data", "vulndb")
	var stderr bytes.Buffer
	status, msg, err := bundleDBImporter(dbDir, false, &stderr)(carried(newB, newM), newM.VulnDB)
	if err != nil || status != "imported" || !strings.Contains(msg, newM.VulnDB.Revision) {
		t.Fatalf("import: %q %q %v", status, msg, err)
	}
	out, _ := cmd(0, "db", "status", "--db", dbDir, "--output", "json", "--max-age", "3650d")
	var st dbStatusJSON
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Revision != newM.VulnDB.Revision || st.Records != 1 || !st.Newest.Equal(newM.VulnDB.Newest) {
		t.Fatalf("db status after the import: %v %s", err, out)
	}
	if status, _, err := bundleDBImporter(dbDir, false, &stderr)(carried(newB, newM), newM.VulnDB); err != nil || status != "unchanged" {
		t.Fatalf("second import: %q %v", status, err)
	}
	_, _, err = bundleDBImporter(dbDir, false, &stderr)(carried(oldB, oldM), oldM.VulnDB)
	if err == nil || !strings.Contains(err.Error(), "is older than the one in") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("older bundle: %v", err)
	}
	out, _ = cmd(0, "db", "status", "--db", dbDir, "--output", "json", "--max-age", "3650d")
	if !strings.Contains(out, newM.VulnDB.Revision) {
		t.Fatalf("a refused older database changed the one in place: %s", out)
	}
	if status, _, err := bundleDBImporter(dbDir, true, &stderr)(carried(oldB, oldM), oldM.VulnDB); err != nil || status != "imported" {
		t.Fatalf("forced older import: %q %v", status, err)
	}
	out, _ = cmd(0, "db", "status", "--db", dbDir, "--output", "json", "--max-age", "3650d")
	if !strings.Contains(out, oldM.VulnDB.Revision) {
		t.Fatalf("forced import: %s", out)
	}
	// A data directory that is not a database is not replaced.
	notDB := filepath.Join(dir, "data")
	if _, _, err := bundleDBImporter(notDB, true, &stderr)(carried(newB, newM), newM.VulnDB); err == nil || !strings.Contains(err.Error(), "refusing to replace") {
		t.Fatalf("import into the data directory itself: %v", err)
	}
}

func mustVerifier(t *testing.T, pubFile string) signature.Verifier {
	t.Helper()
	data, err := os.ReadFile(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	v, err := mirror.LoadVerifier(data)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
