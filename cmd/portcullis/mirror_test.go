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

	"github.com/portcullis-dev/portcullis/internal/cosigntest"
	"github.com/portcullis-dev/portcullis/internal/regtest"
)

func TestMirrorCommands(t *testing.T) {
	reg := regtest.Registry(t)
	host := strings.TrimPrefix(reg, "http://")
	img, err := random.Image(4096, 2)
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := regtest.WriteImage(t, reg, "team/app:1.0.0", img)
	cosigntest.SignLegacy(t, host, "team/app", digest, cosigntest.NewKey(t))

	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
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
	_, otherPub, _ := cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), func(bool) ([]byte, error) { return []byte("x"), nil })
	otherFile := write("other.pub", string(otherPub))
	t.Setenv("COSIGN_PASSWORD", "pw")

	cmd := func(want int, args ...string) (string, string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if got := run(args, &stdout, &stderr); got != want {
			t.Fatalf("portcullis %v: exit %d, want %d\nstdout: %s\nstderr: %s", args, got, want, stdout.String(), stderr.String())
		}
		return stdout.String(), stderr.String()
	}

	bundle := filepath.Join(dir, "bundle")
	out, _ := cmd(0, "mirror", "collect", "--file", file, "--dry-run")
	if !strings.Contains(out, digest) || !strings.Contains(out, "team/app") {
		t.Fatalf("dry run printed %q", out)
	}
	if _, err := os.Stat(bundle); !os.IsNotExist(err) {
		t.Fatal("dry run wrote something")
	}
	cmd(2, "mirror", "collect", "--file", file, "--out", bundle) // no key
	cmd(2, "mirror", "collect", "--file", file, "--out", bundle, "--key", keyFile, "--chunk-size", "12")
	// The key is decrypted while the collect runs: a wrong password still fails the
	// collect with the key's error, and nothing is left behind.
	t.Setenv("COSIGN_PASSWORD", "wrong")
	_, errOut := cmd(1, "mirror", "collect", "--file", file, "--out", bundle, "--key", keyFile, "--chunk-size", "1MiB")
	if !strings.Contains(errOut, "signing key") || !strings.Contains(errOut, "decrypt") {
		t.Fatalf("collect with a wrong password printed %q", errOut)
	}
	if _, err := os.Stat(bundle); !os.IsNotExist(err) {
		t.Fatalf("a collect with a wrong password left %s behind (%v)", bundle, err)
	}
	t.Setenv("COSIGN_PASSWORD", "pw")
	_, progress := cmd(0, "mirror", "collect", "--file", file, "--out", bundle, "--key", keyFile, "--chunk-size", "1MiB")
	lines := strings.Split(strings.TrimSpace(progress), "\n")
	var last map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last["phase"] != "done" {
		t.Fatalf("progress off a terminal is not JSON lines ending with done: %q", progress)
	}
	out, _ = cmd(0, "mirror", "verify", "--bundle", bundle, "--key", pubFile)
	if !strings.Contains(out, "verified: full bundle") {
		t.Fatalf("verify printed %q", out)
	}
	_, errOut = cmd(1, "mirror", "verify", "--bundle", bundle, "--key", otherFile)
	if !strings.Contains(errOut, "does not verify with the given key") || !strings.Contains(errOut, "REFUSED") {
		t.Fatalf("verify with another key printed %q", errOut)
	}
	cmd(1, "mirror", "verify", "--bundle", bundle, "--key", keyFile) // a private key is not a public key

	// The registry holds everything already: a delta carries nothing.
	inv := filepath.Join(dir, "inv.json")
	cmd(0, "mirror", "inventory", "--registry", reg, "--file", file, "--out", inv)
	out, _ = cmd(0, "mirror", "collect", "--file", file, "--dry-run", "--have", inv)
	if !strings.Contains(out, "would carry 0 objects") {
		t.Fatalf("delta dry run printed %q", out)
	}
	cmd(0, "mirror", "collect", "--file", file, "--out", filepath.Join(dir, "delta"), "--key", keyFile, "--have", inv)
	out, _ = cmd(0, "mirror", "verify", "--bundle", filepath.Join(dir, "delta"), "--key", pubFile, "--extract", filepath.Join(dir, "layout"))
	if !strings.Contains(out, "delta against") {
		t.Fatalf("verify of the delta printed %q", out)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"512MiB": 512 << 20, "4GiB": 4 << 30, "100MB": 100e6, "2097152": 2 << 20} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1MiB", "1KiB", "lots", "9999999999TiB"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
}

func TestMirrorImportUsage(t *testing.T) {
	for _, args := range [][]string{
		{"mirror", "import"},
		{"mirror", "import", "--bundle", "b", "--key", "k"},
		{"mirror", "import", "--bundle", "b", "--key", "k", "--gateway", "https://gw.example/path"},
	} {
		var stdout, stderr bytes.Buffer
		if got := run(args, &stdout, &stderr); got != 2 {
			t.Errorf("portcullis %v: exit %d, want 2\n%s", args, got, stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if got := run([]string{"mirror", "import", "-h"}, &stdout, &stderr); got != 0 || !strings.Contains(stdout.String(), "Example:") {
		t.Fatalf("help: exit %d\n%s", got, stdout.String())
	}
	dir := t.TempDir()
	if got := run([]string{"mirror", "import", "--bundle", dir, "--key", filepath.Join(dir, "missing.pub"), "--gateway", "http://127.0.0.1:1"}, &stdout, &stderr); got != 1 {
		t.Fatalf("missing key: exit %d", got)
	}
}
