package e2e

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/portcullis-dev/portcullis/internal/regtest"
)

// TestMirrorWithRealCosign drives the mirror with the real cosign v2 binary on both ends:
// images signed by `cosign sign` (a v2 .sig tag, and a v3 bundle referrer with
// --new-bundle-format) pass collect's publisher verification against the publisher's
// cosign.pub, and an image it did not sign is refused; a key made by `cosign
// generate-key-pair` signs the bundle (`collect --key cosign.key`, password in
// COSIGN_PASSWORD), and `cosign verify-blob` accepts that signature while refusing a
// tampered bundle.json or another key; portcullis accepts a bundle.json.sig made by
// `cosign sign-blob`, so the two agree on the format both ways; and bundles signed with
// unencrypted Ed25519 and RSA keys verify with cosign as well.
func TestMirrorWithRealCosign(t *testing.T) {
	cosign := requireTool(t, "cosign")
	dir := t.TempDir()
	home := filepath.Join(dir, "home") // cosign keeps a ~/.sigstore cache; not the user's
	run := func(want int, wd string, env []string, bin string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Dir = wd
		cmd.Env = append(cleanEnv(), append([]string{"HOME=" + home, "DOCKER_CONFIG=" + filepath.Join(home, ".docker")}, env...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		if got := cmd.ProcessState.ExitCode(); got != want {
			t.Fatalf("%s %s: exit %d (%v), want %d\n%s", filepath.Base(bin), strings.Join(args, " "), got, err, want, out.String())
		}
		return out.String()
	}
	// Two key pairs made by cosign: the publisher's, and the one the bundle is signed with.
	keys := map[string]string{"publisher": "publisher-pw", "bundle": "bundle-pw"}
	for who, pw := range keys {
		d := filepath.Join(dir, who)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		run(0, d, []string{"COSIGN_PASSWORD=" + pw}, cosign, "generate-key-pair")
		if key := readFile(t, filepath.Join(d, "cosign.key")); !bytes.Contains(key, []byte("ENCRYPTED SIGSTORE PRIVATE KEY")) {
			t.Fatalf("cosign generate-key-pair wrote no encrypted cosign key:\n%s", key)
		}
	}
	publisherKey, bundleKey, bundlePub := filepath.Join(dir, "publisher", "cosign.key"), filepath.Join(dir, "bundle", "cosign.key"), filepath.Join(dir, "bundle", "cosign.pub")

	// The source registry, with images signed by cosign in both of its formats.
	src := regtest.Registry(t)
	host := strings.TrimPrefix(src, "http://")
	push := func(repo string) string {
		img, err := random.Image(2048, 2)
		if err != nil {
			t.Fatal(err)
		}
		d, _ := regtest.WriteImage(t, src, repo+":1.0", img)
		return d
	}
	legacy, bundled, unsigned := push("team/legacy"), push("team/bundled"), push("team/unsigned")
	sign := []string{"sign", "--key", publisherKey, "--tlog-upload=false", "--allow-http-registry", "--allow-insecure-registry", "-y"}
	publisherEnv := []string{"COSIGN_PASSWORD=" + keys["publisher"]}
	run(0, dir, publisherEnv, cosign, append(sign, host+"/team/legacy@"+legacy)...)
	run(0, dir, publisherEnv, cosign, append(sign, "--new-bundle-format", host+"/team/bundled@"+bundled)...)

	// The publisher's key as an authority, its keyFile relative to the mirror file.
	mirrorFile := filepath.Join(dir, "mirror.yaml")
	writeFile(t, mirrorFile, []byte("version: 1\nsources:\n  - registry: "+host+"\n    insecure: true\n"+
		"    authorities:\n      - name: release\n        keyFile: publisher/cosign.pub\n    repositories:\n"+
		"      - {name: team/legacy, tags: [\"1.0\"]}\n      - {name: team/bundled, tags: [\"1.0\"]}\n      - {name: team/unsigned, tags: [\"1.0\"]}\n"))
	bundleEnv := []string{"COSIGN_PASSWORD=" + keys["bundle"]}
	bundle := filepath.Join(dir, "out")
	out := run(1, dir, bundleEnv, gatewayBin, "mirror", "collect", "--file", mirrorFile, "--out", bundle, "--key", bundleKey)
	if want := host + "/team/unsigned:1.0 (" + unsigned + ") has no valid signature by publisher authority release"; !strings.Contains(out, want) {
		t.Fatalf("collect refused with:\n%s\nwant it to name %q", out, want)
	}
	run(0, dir, bundleEnv, gatewayBin, "mirror", "collect", "--file", mirrorFile, "--out", bundle, "--key", bundleKey, "--unverified", "leave-out")

	manifest := filepath.Join(bundle, "bundle.json")
	var m struct {
		Images []struct {
			Digest    string `json:"digest"`
			Publisher struct {
				Verified   []string `json:"verified"`
				Signatures []struct {
					Format string `json:"format"`
				} `json:"signatures"`
			} `json:"publisher"`
		} `json:"images"`
		LeftOut []struct {
			Digest string `json:"digest"`
		} `json:"leftOut"`
	}
	if err := json.Unmarshal(readFile(t, manifest), &m); err != nil {
		t.Fatal(err)
	}
	formats := map[string]string{}
	for _, img := range m.Images {
		if !slices.Equal(img.Publisher.Verified, []string{"release"}) || len(img.Publisher.Signatures) == 0 {
			t.Fatalf("bundle.json image %s: publisher %+v", img.Digest, img.Publisher)
		}
		formats[img.Digest] = img.Publisher.Signatures[0].Format
	}
	if len(m.Images) != 2 || formats[legacy] != "legacy" || formats[bundled] != "bundle" {
		t.Fatalf("bundle.json images %+v: want cosign's .sig for team/legacy and its bundle referrer for team/bundled", m.Images)
	}
	if len(m.LeftOut) != 1 || m.LeftOut[0].Digest != unsigned {
		t.Fatalf("bundle.json leftOut %+v, want team/unsigned", m.LeftOut)
	}

	// cosign verify-blob checks the bundle's signature offline with the bundle key.
	verifyBlob := func(want int, pub, sig, blob string) string {
		t.Helper()
		return run(want, dir, nil, cosign, "verify-blob", "--key", pub, "--signature", sig, "--insecure-ignore-tlog=true", blob)
	}
	if out := verifyBlob(0, bundlePub, manifest+".sig", manifest); !strings.Contains(out, "Verified OK") {
		t.Fatalf("cosign verify-blob:\n%s", out)
	}
	run(0, dir, nil, gatewayBin, "mirror", "verify", "--bundle", bundle, "--key", bundlePub)
	// Another key's signature is not this one's.
	verifyBlob(1, filepath.Join(dir, "publisher", "cosign.pub"), manifest+".sig", manifest)

	// A tampered bundle.json fails both.
	tampered := filepath.Join(dir, "tampered")
	if err := os.MkdirAll(tampered, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(bundle)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		writeFile(t, filepath.Join(tampered, e.Name()), readFile(t, filepath.Join(bundle, e.Name())))
	}
	data := readFile(t, manifest)
	changed := bytes.Replace(data, []byte(unsigned[7:15]), []byte("00000000"), 1) // the left-out image's digest
	if bytes.Equal(changed, data) {
		t.Fatal("tampering changed nothing")
	}
	writeFile(t, filepath.Join(tampered, "bundle.json"), changed)
	if out := verifyBlob(1, bundlePub, filepath.Join(tampered, "bundle.json.sig"), filepath.Join(tampered, "bundle.json")); !strings.Contains(out, "invalid signature") {
		t.Fatalf("cosign verify-blob of a tampered bundle.json:\n%s", out)
	}
	if out := run(1, dir, nil, gatewayBin, "mirror", "verify", "--bundle", tampered, "--key", bundlePub); !strings.Contains(out, "REFUSED") {
		t.Fatalf("portcullis mirror verify of a tampered bundle:\n%s", out)
	}

	// The other way round: cosign sign-blob's signature is one portcullis accepts.
	resigned := filepath.Join(dir, "resigned.sig")
	run(0, dir, bundleEnv, cosign, "sign-blob", "--key", bundleKey, "--tlog-upload=false", "-y", "--output-signature", resigned, manifest)
	writeFile(t, manifest+".sig", readFile(t, resigned))
	run(0, dir, nil, gatewayBin, "mirror", "verify", "--bundle", bundle, "--key", bundlePub)

	// Unencrypted PKCS#8 keys of the other types collect takes verify with cosign too.
	plainFile := filepath.Join(dir, "plain.yaml")
	writeFile(t, plainFile, []byte("version: 1\nsources:\n  - registry: "+host+"\n    insecure: true\n    repositories:\n      - {name: team/legacy, tags: [\"1.0\"]}\n"))
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for kind, priv := range map[string]crypto.Signer{"ed25519": ed, "rsa": rk} {
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		pubDER, err := x509.MarshalPKIXPublicKey(priv.Public())
		if err != nil {
			t.Fatal(err)
		}
		key, pub, out := filepath.Join(dir, kind+".key"), filepath.Join(dir, kind+".pub"), filepath.Join(dir, "bundle-"+kind)
		writeFile(t, key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
		writeFile(t, pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
		run(0, dir, nil, gatewayBin, "mirror", "collect", "--file", plainFile, "--out", out, "--key", key)
		if got := verifyBlob(0, pub, filepath.Join(out, "bundle.json.sig"), filepath.Join(out, "bundle.json")); !strings.Contains(got, "Verified OK") {
			t.Fatalf("cosign verify-blob of a bundle signed with an %s key:\n%s", kind, got)
		}
	}
}
