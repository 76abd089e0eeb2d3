package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/base64"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/cosigntest"
	"github.com/portcullis-dev/portcullis/internal/scantest"
)

// tarLayer is a layer holding files (in name order): its uncompressed tar and its gzip blob.
func tarLayer(t *testing.T, files map[string][]byte) (tarBytes, blob []byte) {
	t.Helper()
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		body := files[name]
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(tb.Bytes())
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return tb.Bytes(), gz.Bytes()
}

// TestHostileClaimedDiffID: a layer holding a private key, under a configuration that
// claims the diffID of a clean layer the gateway analysed before, is judged on its own
// content and refused; the clean image stays accepted.
func TestHostileClaimedDiffID(t *testing.T) {
	e := newHostileEnv(t)
	clean := newImage(t)
	if code := pushImage(t, e.gwBase(), "dev/app", "1.0.0", clean, nil); code != http.StatusCreated {
		t.Fatalf("clean image: %d", code)
	}
	key, _ := scantest.PrivateKeyPEM(t)
	_, evilBlob := tarLayer(t, map[string][]byte{"etc/app/key.pem": []byte(key)})
	cfg := clean.config // claims the clean layer's diffID
	evil := mustJSON(t, manifestDoc{SchemaVersion: 2, MediaType: mediaManifest,
		Config: descriptor{MediaType: mediaConfig, Digest: sha256Digest(cfg), Size: int64(len(cfg))},
		Layers: []descriptor{{MediaType: mediaLayer, Digest: sha256Digest(evilBlob), Size: int64(len(evilBlob))}}})
	uploadBlob(t, e.gwBase(), "dev/evil", evilBlob)
	uploadBlob(t, e.gwBase(), "dev/evil", cfg)
	code, body := putManifest(t, e.gwBase(), "dev/evil", "1.0.0", mediaManifest, evil)
	if code != http.StatusForbidden || !strings.Contains(body, "diff") {
		t.Fatalf("a key layer under a clean layer's claimed diffID: %d %s, want 403 naming the diffID mismatch", code, body)
	}
	// Pulled around the gateway's push check (pushed straight into the registry): refused too.
	uploadBlob(t, e.reg, "dev/evil2", evilBlob)
	uploadBlob(t, e.reg, "dev/evil2", cfg)
	if code, body := putManifest(t, e.reg, "dev/evil2", "1.0.0", mediaManifest, evil); code != http.StatusCreated {
		t.Fatalf("push into the registry: %d %s", code, body)
	}
	if get, head := pullCodes(t, e.gwBase(), "dev/evil2", "1.0.0", nil); get != http.StatusForbidden || head != http.StatusForbidden {
		t.Fatalf("pull of the mislabelled image: GET %d HEAD %d, want 403", get, head)
	}
	if get, _ := pullCodes(t, e.gwBase(), "dev/app", "1.0.0", nil); get != http.StatusOK {
		t.Fatalf("the clean image after the attack: %d", get)
	}
}

// TestHostileReferrersCostOneVerification: eight referrers of a thousand signature layers
// each hang on an unsigned and on a signed image in prod. The unsigned one is refused and
// its over-budget verification is remembered (one budget overrun over two pulls); the
// signed one is served without running into the budget.
func TestHostileReferrersCostOneVerification(t *testing.T) {
	e := newHostileEnv(t)
	unsigned, signed := newImage(t), newImage(t)
	for tag, img := range map[string]image{"5.0.0": unsigned, "5.0.1": signed} {
		if code := pushImage(t, e.gwBase(), "prod/app", tag, img, nil); code != http.StatusCreated {
			t.Fatalf("push %s: %d", tag, code)
		}
	}
	cosigntest.SignLegacy(t, e.gw.addr, "prod/app", signed.digest(), e.release)
	for _, img := range []image{unsigned, signed} {
		payload := cosigntest.Payload(e.gw.addr+"/prod/app", img.digest())
		for range 8 {
			layers := make([]cosigntest.SignatureLayer, 1000)
			for j := range layers {
				sig := make([]byte, 71)
				_, _ = rand.Read(sig)
				layers[j] = cosigntest.SignatureLayer{Payload: payload, Signature: base64.StdEncoding.EncodeToString(sig)}
			}
			// Straight into the registry: hanging artifacts on an image needs no gateway.
			cosigntest.PushSignatureReferrer(t, strings.TrimPrefix(e.reg, "http://"), "prod/app", img.digest(), layers...)
		}
	}
	// One log line per verification that ran into its budget (the metric counts each
	// limit hit, and one verification may hit several).
	overruns := func() int {
		n := 0
		for _, line := range e.gw.log.snapshot() {
			if strings.Contains(line, `"msg":"signature verification over budget"`) {
				n++
			}
		}
		return n
	}
	for i := range 2 {
		if get, head := pullCodes(t, e.gwBase(), "prod/app", "5.0.0", nil); get != http.StatusForbidden || head != http.StatusForbidden {
			t.Fatalf("pull %d of the unsigned image: GET %d HEAD %d, want 403", i, get, head)
		}
	}
	if n := overruns(); n != 1 {
		t.Fatalf("%d verifications ran into the budget over two rounds of pulls, want 1 (the failure is remembered)", n)
	}
	if get, head := pullCodes(t, e.gwBase(), "prod/app", "5.0.1", nil); get != http.StatusOK || head != http.StatusOK {
		t.Fatalf("the signed image under hostile referrers: GET %d HEAD %d, want 200", get, head)
	}
	if n := overruns(); n != 1 {
		t.Fatalf("verifying the signed image ran into the budget (%d overruns in all): it should stop at its signature", n)
	}
}
