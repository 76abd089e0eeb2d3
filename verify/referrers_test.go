package verify_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/portcullis-dev/portcullis/verify"
)

func TestBundleThroughReferrersAPI(t *testing.T) {
	t.Parallel()
	r := ggcrRegistry(t)
	k := newKey(t, "p384")
	img := r.pushImage(t, "team/api")
	ref := r.pushBundle(t, img.repo, img, signBundle(t, k, img), cosignPredicate)
	if fb := r.fallbackDigest(t, img); fb != "" {
		t.Fatalf("a fallback tag was written although the registry has the referrers API")
	}
	res := r.verify(t, img, k.authority(t))
	want := verify.Result{
		Verified:  []verify.Signature{{Authority: k.name, Format: verify.FormatBundle, Artifact: ref}},
		Artifacts: []string{ref},
	}
	if !reflect.DeepEqual(withoutSpent(res), want) {
		t.Errorf("result %+v, want %+v", res, want)
	}

	// The same referrer listed by the API and by a fallback tag counts once.
	idx := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":%q,"digest":%q,"size":1,"artifactType":%q}]}`,
		ociManifestMT, ref, bundleMT)
	fb := r.putRaw(t, img.repo, "sha256-"+img.hex(), []byte(idx), "application/vnd.oci.image.index.v1+json")
	res = r.verify(t, img, k.authority(t))
	want.Artifacts = sorted(ref, fb)
	if !reflect.DeepEqual(withoutSpent(res), want) {
		t.Errorf("with a fallback tag too: result %+v, want %+v", res, want)
	}
}

func TestGarbageIsMalformed(t *testing.T) {
	t.Parallel()
	r := ggcrRegistry(t)
	k := newKey(t, "p256")
	random := make([]byte, 4096)
	if _, err := rand.Read(random); err != nil {
		t.Fatal(err)
	}
	random[0] = 0xff // never the start of a JSON value
	sigCases := []struct {
		name, mt string
		body     []byte
		detail   string
	}{
		{"random bytes", ociManifestMT, random, "not JSON"},
		{"not JSON", ociManifestMT, []byte("hello, registry"), "not JSON"},
		{"a JSON array", ociManifestMT, []byte(`[1,2,3]`), "not a JSON object"},
		{"JSON but no manifest", ociManifestMT, []byte(`{"hello":"world"}`), "schemaVersion"},
		{"wrong media type", "application/vnd.example.thing+json", []byte(`{"schemaVersion":2,"layers":[]}`), "not an image manifest"},
		{"body contradicting its content type", ociManifestMT, []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`), "contradicts"},
		{"no layers", ociManifestMT, []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}`), "no layers"},
	}
	for _, c := range sigCases {
		t.Run(".sig tag: "+c.name, func(t *testing.T) {
			img := r.pushImage(t, "team/garbage")
			d := r.putRaw(t, img.repo, "sha256-"+img.hex()+".sig", c.body, c.mt)
			res := r.verify(t, img, k.authority(t))
			rej := wantOnlyRejection(t, res, verify.KindMalformed, c.detail)
			if rej.Artifact != d || rej.Format != verify.FormatLegacy || !reflect.DeepEqual(res.Artifacts, []string{d}) {
				t.Errorf("rejection %+v, artifacts %v; want artifact %s", rej, res.Artifacts, d)
			}
		})
	}
	t.Run("fallback tag: random bytes", func(t *testing.T) {
		img := r.pushImage(t, "team/garbage")
		d := r.putRaw(t, img.repo, "sha256-"+img.hex(), random, ociManifestMT)
		rej := wantOnlyRejection(t, r.verify(t, img, k.authority(t)), verify.KindMalformed, "not an OCI index")
		if rej.Artifact != d || rej.Format != verify.FormatBundle {
			t.Errorf("rejection %+v", rej)
		}
	})
	t.Run("bundle blob that is not a bundle", func(t *testing.T) {
		img := r.pushImage(t, "team/garbage")
		r.pushBundle(t, img.repo, img, random, cosignPredicate)
		wantOnlyRejection(t, r.verify(t, img, k.authority(t)), verify.KindMalformed, "not a sigstore bundle")
	})
	t.Run("message-signature bundle", func(t *testing.T) {
		img := r.pushImage(t, "team/garbage")
		b := []byte(`{"mediaType":"` + bundleMT + `","verificationMaterial":{"publicKey":{"hint":"x"}},"messageSignature":{"messageDigest":{"algorithm":"SHA2_256","digest":"AAAA"},"signature":"AAAA"}}`)
		r.pushBundle(t, img.repo, img, b, cosignPredicate)
		wantOnlyRejection(t, r.verify(t, img, k.authority(t)), verify.KindMalformed, "message-signature")
	})
	t.Run("artifactType bundle without a bundle layer", func(t *testing.T) {
		img := r.pushImage(t, "team/garbage")
		r.pushBundle(t, img.repo, img, signBundle(t, k, img), cosignPredicate, func(m map[string]any) {
			m["layers"].([]any)[0].(map[string]any)["mediaType"] = "application/octet-stream"
		})
		wantOnlyRejection(t, r.verify(t, img, k.authority(t)), verify.KindMalformed, "no layer")
	})
}

func TestOtherReferrersArePassedOver(t *testing.T) {
	t.Parallel()
	r := ggcrRegistry(t)
	k := newKey(t, "p256")
	img := r.pushImage(t, "team/sbom")
	sbom := r.pushBundle(t, img.repo, img, []byte(`{"spdxVersion":"SPDX-2.3"}`), "", func(m map[string]any) {
		m["artifactType"] = "application/spdx+json"
		m["layers"].([]any)[0].(map[string]any)["mediaType"] = "application/spdx+json"
	})
	res := r.verify(t, img, k.authority(t))
	want := verify.Result{Artifacts: []string{sbom}}
	if !reflect.DeepEqual(withoutSpent(res), want) {
		t.Errorf("result %+v, want %+v", res, want)
	}
}

func TestRegistryErrorsAreErrors(t *testing.T) {
	t.Parallel()
	k := newKey(t, "p256")
	inner := registry.New(registry.WithReferrersSupport(true), registry.Logger(log.New(io.Discard, "", 0)))
	var failing atomic.Value // the path part that fails
	failing.Store("")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if f := failing.Load().(string); f != "" && req.Method == http.MethodGet && strings.Contains(req.URL.Path, f) {
			http.Error(w, `{"errors":[{"code":"UNAVAILABLE"}]}`, http.StatusServiceUnavailable)
			return
		}
		inner.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r := newReg(t, srv.URL)
	img := r.pushImage(t, "team/flaky")
	r.pushLegacy(t, img, r.signLegacy(t, k, img))
	r.pushBundle(t, img.repo, img, signBundle(t, k, img), cosignPredicate)
	if res := r.verify(t, img, k.authority(t)); len(res.Verified) != 2 {
		t.Fatalf("healthy registry: %+v", res)
	}
	for _, path := range []string{".sig", "/referrers/", "/blobs/", "/manifests/sha256:"} {
		failing.Store(path)
		_, err := r.verifier.Verify(context.Background(), img.repo, img.digest, []verify.Authority{k.authority(t)}, verify.Goal{})
		if err == nil {
			t.Errorf("503 on %s: no error", path)
		}
	}
	failing.Store("")
	srv.Close()
	if _, err := r.verifier.Discover(context.Background(), img.repo, img.digest); err == nil {
		t.Error("registry down: Discover gave no error")
	}
}

// TestBundleFormatsFromOtherProducers accepts what other producers legitimately vary:
// URL-safe base64, the older bundle media type spelling, a DSSE keyid, in-toto v0.1.
func TestBundleFormatsFromOtherProducers(t *testing.T) {
	t.Parallel()
	r := ggcrRegistry(t)
	k := newKey(t, "ed25519")
	img := r.pushImage(t, "team/variants")
	st := []byte(strings.Replace(string(statement(t, img, cosignPredicate)), "https://in-toto.io/Statement/v1", "https://in-toto.io/Statement/v0.1", 1))
	var env map[string]any
	if err := json.Unmarshal(envelope(t, k, inTotoType, st), &env); err != nil {
		t.Fatal(err)
	}
	sigs := env["signatures"].([]any)
	sigs[0].(map[string]any)["keyid"] = k.hint(t)
	env["payload"] = strings.NewReplacer("+", "-", "/", "_").Replace(env["payload"].(string))
	b, _ := json.Marshal(map[string]any{
		"mediaType":            "application/vnd.dev.sigstore.bundle+json;version=0.2",
		"verificationMaterial": map[string]any{"publicKey": map[string]string{"hint": k.hint(t)}},
		"dsseEnvelope":         env,
	})
	ref := r.pushBundle(t, img.repo, img, b, cosignPredicate)
	res := r.verify(t, img, k.authority(t))
	if len(res.Verified) != 1 || res.Verified[0].Artifact != ref {
		t.Errorf("result %+v", res)
	}
}

// TestCosignSignatureReferrer reads a legacy cosign signature stored as an OCI 1.1 referrer
// (cosign v2 `sign --registry-referrers-mode=oci-1-1`): simple-signing layers in a
// manifest whose subject is the image and whose artifact type is cosign's signature type.
func TestCosignSignatureReferrer(t *testing.T) {
	t.Parallel()
	r := ggcrRegistry(t)
	k := newKey(t, "p256")
	img := r.pushImage(t, "team/api")
	other := r.pushImage(t, "team/api")
	push := func(subject image, sig legacySig) string {
		layer := r.pushBlob(t, img.repo, sig.payload, sig.mediaType)
		layer["annotations"] = sig.annotations
		return r.pushBundle(t, img.repo, subject, nil, "", func(m map[string]any) {
			m["artifactType"] = "application/vnd.dev.cosign.artifact.sig.v1+json"
			m["layers"] = []any{layer}
			delete(m, "annotations")
		})
	}
	push(img, r.signLegacy(t, k, img))
	if res := r.verify(t, img, k.authority(t)); len(res.Authorities()) != 1 || res.Authorities()[0] != k.name {
		t.Fatalf("cosign signature referrer: %+v, want verified by %s", res, k.name)
	}
	// The same kind of referrer carrying a signature of another image is a replay.
	push(other, r.signLegacy(t, k, img))
	res := r.verify(t, other, k.authority(t))
	if len(res.Verified) != 0 {
		t.Fatalf("a signature of another image counted: %+v", res)
	}
	wantOnlyRejection(t, res, verify.KindOtherDigest, "")
}
