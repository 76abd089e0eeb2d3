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

func TestMirrorCollectPublisherVerification(t *testing.T) {
	reg := regtest.Registry(t)
	host := strings.TrimPrefix(reg, "http://")
	publisher := cosigntest.NewKey(t)
	push := func(repo string) string {
		img, err := random.Image(2048, 1)
		if err != nil {
			t.Fatal(err)
		}
		d, _ := regtest.WriteImage(t, reg, repo+":1.0", img)
		return d
	}
	signed, unsigned := push("team/signed"), push("team/unsigned")
	cosigntest.SignLegacy(t, host, "team/signed", signed, publisher)

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
	// The authority's keyFile is read relative to the mirror file, as a policy's is.
	write("conf/keys/release.pub", publisher.PublicPEM(t))
	file := write("conf/mirror.yaml", "version: 1\nsources:\n  - registry: "+host+"\n    authorities:\n"+
		"      - name: release\n        keyFile: keys/release.pub\n        signCommand: cosign sign --key release.key\n"+
		"    repositories:\n      - {name: team/signed, tags: [\"1.0\"]}\n      - {name: team/unsigned, tags: [\"1.0\"]}\n")
	priv, _, err := cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), func(bool) ([]byte, error) { return []byte("pw"), nil })
	if err != nil {
		t.Fatal(err)
	}
	keyFile := write("cosign.key", string(priv))
	t.Setenv("COSIGN_PASSWORD", "pw")
	cmd := func(want int, args ...string) (string, string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if got := run(args, &stdout, &stderr); got != want {
			t.Fatalf("portcullis %v: exit %d, want %d\nstdout: %s\nstderr: %s", args, got, want, stdout.String(), stderr.String())
		}
		return stdout.String(), stderr.String()
	}

	// The dry run shows each image's verification and fails as the collect would.
	out, errOut := cmd(1, "mirror", "collect", "--file", file, "--dry-run")
	for _, want := range []string{"PUBLISHER", "verified: release (legacy)", "UNVERIFIED", unsigned} {
		if !strings.Contains(out, want) {
			t.Errorf("dry-run table lacks %q:\n%s", want, out)
		}
	}
	wantErr := host + "/team/unsigned:1.0 (" + unsigned + ") has no valid signature by publisher authority release"
	if !strings.Contains(errOut, wantErr) || !strings.Contains(errOut, "cosign sign --key release.key") {
		t.Errorf("stderr %q lacks %q and the sign command", errOut, wantErr)
	}
	// With leave-out the dry run succeeds; JSON carries the verification of each image.
	out, _ = cmd(0, "mirror", "collect", "--file", file, "--dry-run", "--output", "json", "--unverified", "leave-out")
	var plan struct {
		Images []struct {
			Digest    string `json:"digest"`
			Publisher struct {
				Verified []string `json:"verified"`
			} `json:"publisher"`
		} `json:"images"`
		Unverified []struct {
			Digest      string   `json:"digest"`
			Authorities []string `json:"authorities"`
		} `json:"unverified"`
	}
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(plan.Images) != 1 || plan.Images[0].Digest != signed || len(plan.Images[0].Publisher.Verified) != 1 ||
		len(plan.Unverified) != 1 || plan.Unverified[0].Digest != unsigned || plan.Unverified[0].Authorities[0] != "release" {
		t.Fatalf("json plan %s", out)
	}

	// Default: refuse the whole collect, write nothing.
	bundle := filepath.Join(dir, "bundle")
	_, errOut = cmd(1, "mirror", "collect", "--file", file, "--out", bundle, "--key", keyFile)
	if !strings.Contains(errOut, "refusing to write the bundle: 1 image fails publisher signature verification") || !strings.Contains(errOut, wantErr) {
		t.Errorf("stderr %q", errOut)
	}
	if _, err := os.Stat(bundle); !os.IsNotExist(err) {
		t.Errorf("refused collect left %s (%v)", bundle, err)
	}
	out, _ = cmd(0, "mirror", "collect", "--file", file, "--out", bundle, "--key", keyFile, "--unverified", "leave-out")
	if !strings.Contains(out, "1 images") || !strings.Contains(out, "left out: "+wantErr) {
		t.Errorf("collect printed %q", out)
	}
	data, err := os.ReadFile(filepath.Join(bundle, "bundle.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(`"verified": [`)) || !bytes.Contains(data, []byte(`"leftOut": [`)) {
		t.Errorf("bundle.json lacks the publisher record or leftOut:\n%s", data)
	}
	_, errOut = cmd(2, "mirror", "collect", "--file", file, "--dry-run", "--unverified", "skip")
	if !strings.Contains(errOut, "--unverified: want refuse or leave-out") {
		t.Errorf("stderr %q", errOut)
	}
}
