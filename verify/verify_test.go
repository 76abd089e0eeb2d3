package verify_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/verify"
)

// wantOnlyRejection checks that res verified nothing and rejected exactly one artifact,
// of kind, with detail containing inDetail.
func wantOnlyRejection(t *testing.T, res verify.Result, kind verify.Kind, inDetail string) verify.Rejection {
	t.Helper()
	if len(res.Verified) != 0 {
		t.Errorf("verified %+v, want nothing", res.Verified)
	}
	if len(res.Rejected) != 1 {
		t.Fatalf("rejected %+v, want one %s", res.Rejected, kind)
	}
	r := res.Rejected[0]
	if r.Kind != kind || !strings.Contains(r.Detail, inDetail) {
		t.Errorf("rejection %+v, want kind %s with %q in the detail", r, kind, inDetail)
	}
	return r
}

// keyKinds are the key types cosign and sigstore sign with.
var keyKinds = []string{"p256", "p384", "p384-sha384", "rsa2048", "rsa3072", "ed25519", "ed25519ph"}

func TestLegacySignatureVerifies(t *testing.T) {
	t.Parallel()
	r := distribution(t)
	for _, kind := range keyKinds {
		t.Run(kind, func(t *testing.T) {
			k := newKey(t, kind)
			img := r.pushImage(t, "team/legacy-"+kind)
			sigDigest := r.pushLegacy(t, img, r.signLegacy(t, k, img))
			res := r.verify(t, img, newKey(t, "other-p256").authority(t), k.authority(t))
			want := verify.Result{
				Verified:  []verify.Signature{{Authority: kind, Format: verify.FormatLegacy, Artifact: sigDigest}},
				Artifacts: []string{sigDigest},
			}
			if !reflect.DeepEqual(withoutSpent(res), want) {
				t.Errorf("result %+v, want %+v", res, want)
			}
		})
	}
}

func TestBundleSignatureVerifies(t *testing.T) {
	t.Parallel()
	r := distribution(t)
	for _, kind := range keyKinds {
		t.Run(kind, func(t *testing.T) {
			k := newKey(t, kind)
			img := r.pushImage(t, "team/bundle-"+kind)
			ref := r.pushBundle(t, img.repo, img, signBundle(t, k, img), cosignPredicate)
			res := r.verify(t, img, k.authority(t))
			fallback := r.fallbackDigest(t, img)
			if fallback == "" {
				t.Fatal("no referrers fallback tag was written")
			}
			want := verify.Result{
				Verified:  []verify.Signature{{Authority: kind, Format: verify.FormatBundle, Artifact: ref}},
				Artifacts: sorted(ref, fallback),
			}
			if !reflect.DeepEqual(withoutSpent(res), want) {
				t.Errorf("result %+v, want %+v", res, want)
			}
		})
	}
}

func sorted(s ...string) []string {
	slices.Sort(s)
	return s
}

func TestUnsignedImageIsEmptyResult(t *testing.T) {
	t.Parallel()
	r := distribution(t)
	img := r.pushImage(t, "team/unsigned")
	res := r.verify(t, img, newKey(t, "p256").authority(t))
	if !reflect.DeepEqual(withoutSpent(res), verify.Result{}) {
		t.Errorf("result %+v, want Result{}", res)
	}
	if res.Spent.Reads != 3 {
		t.Errorf("%d reads for an unsigned image, want 3 (the .sig tag, the referrers list, the fallback tag)", res.Spent.Reads)
	}
	arts, err := r.verifier.Discover(context.Background(), img.repo, img.digest)
	if err != nil || arts != nil {
		t.Errorf("Discover = %v, %v; want nil, nil", arts, err)
	}
	if got := res.Authorities(); len(got) != 0 {
		t.Errorf("Authorities() = %v", got)
	}
}

func TestWrongKeyIsUnknownKey(t *testing.T) {
	t.Parallel()
	r := distribution(t)
	trusted, other := newKey(t, "p256"), newKey(t, "other-p256")

	img := r.pushImage(t, "team/wrong-key")
	r.pushLegacy(t, img, r.signLegacy(t, other, img))
	wantOnlyRejection(t, r.verify(t, img, trusted.authority(t)), verify.KindUnknownKey, "no trusted key")

	img2 := r.pushImage(t, "team/wrong-key-bundle")
	r.pushBundle(t, img2.repo, img2, signBundle(t, other, img2), cosignPredicate)
	rej := wantOnlyRejection(t, r.verify(t, img2, trusted.authority(t)), verify.KindUnknownKey, "not trusted")
	if rej.Format != verify.FormatBundle {
		t.Errorf("format %s", rej.Format)
	}
}

func TestReplayedSignatureIsOtherDigest(t *testing.T) {
	t.Parallel()
	r := distribution(t)
	k := newKey(t, "p256")
	a, b := r.pushImage(t, "team/replay"), r.pushImage(t, "team/replay")

	// Legacy: A's valid .sig manifest copied to B's .sig tag.
	sigA := r.pushLegacy(t, a, r.signLegacy(t, k, a))
	desc, err := remoteGet(r, t, a.repo+":sha256-"+a.hex()+".sig")
	if err != nil {
		t.Fatal(err)
	}
	r.putRaw(t, b.repo, "sha256-"+b.hex()+".sig", desc, ociManifestMT)
	res := r.verify(t, b, k.authority(t))
	rej := wantOnlyRejection(t, res, verify.KindOtherDigest, a.digest)
	if rej.Artifact != sigA {
		t.Errorf("artifact %s, want the copied manifest %s", rej.Artifact, sigA)
	}
	if got := r.verify(t, a, k.authority(t)); len(got.Verified) != 1 {
		t.Errorf("A itself: %+v", got)
	}

	// Bundle: A's signed bundle re-wrapped in a referrer whose subject is B.
	c := r.pushImage(t, "team/replay-bundle")
	d := r.pushImage(t, "team/replay-bundle")
	r.pushBundle(t, d.repo, d, signBundle(t, k, c), cosignPredicate)
	wantOnlyRejection(t, r.verify(t, d, k.authority(t)), verify.KindOtherDigest, c.hex())
}

func TestTamperedPayload(t *testing.T) {
	t.Parallel()
	r := distribution(t)
	k := newKey(t, "p256")

	t.Run("legacy with cosign's rekor bundle naming the trusted key", func(t *testing.T) {
		img := r.pushImage(t, "team/tampered")
		s := r.signLegacy(t, k, img)
		s.annotations[rekorAnnotation] = rekorBundle(t, k, s)
		s.payload = append(s.payload[:len(s.payload)-1:len(s.payload)-1], []byte(`,"x":1}`)...)
		r.pushLegacy(t, img, s)
		wantOnlyRejection(t, r.verify(t, img, k.authority(t)), verify.KindTampered, "altered")
	})
	t.Run("legacy without any key claim", func(t *testing.T) {
		// Cryptography cannot tell a payload altered after a trusted key signed it from
		// a payload signed by another key when nothing names the key: unknown-key, and
		// the detail says both.
		img := r.pushImage(t, "team/tampered-noclaim")
		s := r.signLegacy(t, k, img)
		s.payload = []byte(strings.Replace(string(s.payload), `"optional":null`, `"optional":{"x":"y"}`, 1))
		r.pushLegacy(t, img, s)
		wantOnlyRejection(t, r.verify(t, img, k.authority(t)), verify.KindUnknownKey, "altered")
	})
	t.Run("bundle", func(t *testing.T) {
		img := r.pushImage(t, "team/tampered-bundle")
		env := envelope(t, k, inTotoType, statement(t, img, cosignPredicate))
		var e map[string]any
		if err := json.Unmarshal(env, &e); err != nil {
			t.Fatal(err)
		}
		st, _ := base64.StdEncoding.DecodeString(e["payload"].(string))
		st = []byte(strings.Replace(string(st), `"predicate":{}`, `"predicate":{"evil":true}`, 1))
		e["payload"] = base64.StdEncoding.EncodeToString(st)
		env, _ = json.Marshal(e)
		r.pushBundle(t, img.repo, img, bundleJSON(t, k, env), cosignPredicate)
		wantOnlyRejection(t, r.verify(t, img, k.authority(t)), verify.KindTampered, k.name)
	})
	t.Run("keyless certificate of an untrusted key", func(t *testing.T) {
		other := newKey(t, "other-p256")
		img := r.pushImage(t, "team/keyless")
		s := r.signLegacy(t, other, img)
		s.annotations[certAnnotation] = selfSignedPEM(t, other)
		r.pushLegacy(t, img, s)
		wantOnlyRejection(t, r.verify(t, img, k.authority(t)), verify.KindUnknownKey, "certificate")
	})
}

func TestAttestationIsNotASignature(t *testing.T) {
	t.Parallel()
	r := distribution(t)
	k := newKey(t, "p256")
	img := r.pushImage(t, "team/attested")
	b := bundleJSON(t, k, envelope(t, k, inTotoType, statement(t, img, slsaPredicate)))
	ref := r.pushBundle(t, img.repo, img, b, slsaPredicate)
	res := r.verify(t, img, k.authority(t))
	rej := wantOnlyRejection(t, res, verify.KindAttestation, "attestation, not a signature")
	if rej.Artifact != ref {
		t.Errorf("artifact %s, want %s", rej.Artifact, ref)
	}
	if len(res.Authorities()) != 0 {
		t.Errorf("Authorities() = %v", res.Authorities())
	}
}

func TestWrongPayloadType(t *testing.T) {
	t.Parallel()
	r := distribution(t)
	k := newKey(t, "p256")

	img := r.pushImage(t, "team/payload-type")
	b := bundleJSON(t, k, envelope(t, k, simpleSigningMT, r.simpleSigning(t, img.repo, img.digest)))
	r.pushBundle(t, img.repo, img, b, cosignPredicate)
	wantOnlyRejection(t, r.verify(t, img, k.authority(t)), verify.KindWrongPayloadType, "payloadType")

	img2 := r.pushImage(t, "team/payload-type-legacy")
	p := []byte(strings.Replace(string(r.simpleSigning(t, img2.repo, img2.digest)), "cosign container image signature", "atomic container signature", 1))
	r.pushLegacy(t, img2, legacySig{payload: p, mediaType: simpleSigningMT, annotations: map[string]string{
		sigAnnotation: base64.StdEncoding.EncodeToString(k.sign(t, p)),
	}})
	wantOnlyRejection(t, r.verify(t, img2, k.authority(t)), verify.KindWrongPayloadType, "atomic container signature")
}

func TestMalformedLegacyLayers(t *testing.T) {
	t.Parallel()
	r := distribution(t)
	k := newKey(t, "p256")
	cases := []struct {
		name   string
		mutate func(*legacySig)
		detail string
	}{
		{"payload not JSON", func(s *legacySig) {
			s.payload = []byte("\x00\x01 not json")
			s.annotations[sigAnnotation] = b64(k.sign(t, s.payload))
		}, "not JSON"},
		{"payload JSON but not simple signing", func(s *legacySig) { s.payload = []byte(`{"hello":"world"}`) }, "critical"},
		{"payload with a repeated key", func(s *legacySig) {
			s.payload = []byte(strings.Replace(string(s.payload), `"optional"`, `"critical":{},"optional"`, 1))
		}, "twice"},
		{"wrong layer media type", func(s *legacySig) { s.mediaType = "application/octet-stream" }, "application/octet-stream"},
		{"no signature annotation", func(s *legacySig) { delete(s.annotations, sigAnnotation) }, "no dev.cosignproject.cosign/signature"},
		{"signature not base64", func(s *legacySig) { s.annotations[sigAnnotation] = "!!not base64!!" }, "not base64"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img := r.pushImage(t, "team/malformed")
			s := r.signLegacy(t, k, img)
			c.mutate(&s)
			_ = i
			r.pushLegacy(t, img, s)
			wantOnlyRejection(t, r.verify(t, img, k.authority(t)), verify.KindMalformed, c.detail)
		})
	}
	t.Run("an index in the .sig tag", func(t *testing.T) {
		img := r.pushImage(t, "team/malformed")
		idx := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`)
		r.putRaw(t, img.repo, "sha256-"+img.hex()+".sig", idx, "application/vnd.oci.image.index.v1+json")
		wantOnlyRejection(t, r.verify(t, img, k.authority(t)), verify.KindMalformed, "not an image manifest")
	})
}

func TestHugeSignatureManifestIsNotRead(t *testing.T) {
	t.Parallel()
	r := distribution(t)
	k := newKey(t, "p256")
	img := r.pushImage(t, "team/huge")
	s := r.signLegacy(t, k, img)
	s.annotations["padding"] = strings.Repeat("x", 1<<20+1024)
	r.pushLegacy(t, img, s)
	before := r.read.Load()
	rej := wantOnlyRejection(t, r.verify(t, img, k.authority(t)), verify.KindTooLarge, "limit")
	if read := r.read.Load() - before; read > 64<<10 {
		t.Errorf("read %d bytes of responses: the huge manifest was read", read)
	}
	if rej.Artifact != "sha256-"+img.hex()+".sig" {
		t.Errorf("artifact %q, want the tag", rej.Artifact)
	}

	t.Run("over the verifier's own smaller cap", func(t *testing.T) {
		small := distribution(t, verify.WithMaxManifestSize(2048))
		img := small.pushImage(t, "team/big")
		s := small.signLegacy(t, k, img)
		s.annotations["padding"] = strings.Repeat("x", 4096)
		small.pushLegacy(t, img, s)
		wantOnlyRejection(t, small.verify(t, img, k.authority(t)), verify.KindTooLarge, "2048-byte limit")

		// A referrer whose descriptor says it is over the cap is not even fetched.
		img2 := small.pushImage(t, "team/big")
		ref := small.pushBundle(t, img2.repo, img2, signBundle(t, k, img2), cosignPredicate, func(m map[string]any) {
			// On the config descriptor: the manifest's own annotations are copied into
			// the fallback index.
			m["config"].(map[string]any)["annotations"] = map[string]string{"padding": strings.Repeat("y", 64<<10)}
		})
		before := small.read.Load()
		rej := wantOnlyRejection(t, small.verify(t, img2, k.authority(t)), verify.KindTooLarge, "not read")
		if rej.Artifact != ref {
			t.Errorf("artifact %s, want %s", rej.Artifact, ref)
		}
		if read := small.read.Load() - before; read > 32<<10 {
			t.Errorf("read %d bytes: the oversized referrer was fetched", read)
		}
	})
	t.Run("blob over the cap", func(t *testing.T) {
		small := distribution(t, verify.WithMaxBlobSize(1024))
		img := small.pushImage(t, "team/bigblob")
		s := small.signLegacy(t, k, img)
		s.payload = append(s.payload[:len(s.payload)-1:len(s.payload)-1], []byte(`,"pad":"`+strings.Repeat("z", 4096)+`"}`)...)
		small.pushLegacy(t, img, s)
		wantOnlyRejection(t, small.verify(t, img, k.authority(t)), verify.KindTooLarge, "1024-byte limit")
	})
}

func TestSignatureLayerLimit(t *testing.T) {
	t.Parallel()
	r := distribution(t, verify.WithBudget(verify.Budget{Layers: 2}))
	k := newKey(t, "p256")
	img := r.pushImage(t, "team/many")
	s := r.signLegacy(t, k, img)
	r.pushLegacy(t, img, s, s, s)
	res := r.verify(t, img, k.authority(t))
	if len(res.Verified) != 2 || len(res.Rejected) != 1 || res.Rejected[0].Kind != verify.KindOverBudget ||
		!strings.Contains(res.Rejected[0].Detail, "layer 2 not examined") {
		t.Errorf("result %+v, want 2 verified and 1 over-budget", res)
	}
	if !slices.Equal(res.Spent.Exceeded, []string{verify.LimitLayers}) || res.Spent.Unexamined != 1 {
		t.Errorf("spent %+v, want the layers limit exceeded and one layer unexamined", res.Spent)
	}
}

func TestThresholdOfTwoAuthorities(t *testing.T) {
	t.Parallel()
	r := distribution(t)
	release, security := newKey(t, "p256"), newKey(t, "ed25519")
	img := r.pushImage(t, "team/two")
	sig := r.pushLegacy(t, img, r.signLegacy(t, release, img))
	ref := r.pushBundle(t, img.repo, img, signBundle(t, security, img), cosignPredicate)
	att := r.pushBundle(t, img.repo, img, bundleJSON(t, security, envelope(t, security, inTotoType, statement(t, img, slsaPredicate))), slsaPredicate)
	res := r.verify(t, img, release.authority(t), security.authority(t))
	if got, want := res.Authorities(), []string{"ed25519", "p256"}; !slices.Equal(got, want) {
		t.Errorf("Authorities() = %v, want %v (result %+v)", got, want, res)
	}
	if got, want := res.Artifacts, sorted(sig, ref, att, r.fallbackDigest(t, img)); !slices.Equal(got, want) {
		t.Errorf("Artifacts = %v, want %v", got, want)
	}
	arts, err := r.verifier.Discover(context.Background(), img.repo, img.digest)
	if err != nil || !slices.Equal(arts, res.Artifacts) {
		t.Errorf("Discover = %v, %v; want %v", arts, err, res.Artifacts)
	}

	// One key under two names is one signer: a single signature never meets a
	// threshold of two.
	alias := release.authority(t)
	alias.Name = "release-alias"
	res = r.verify(t, img, release.authority(t), alias)
	if got := res.Authorities(); !slices.Equal(got, []string{"p256"}) {
		t.Errorf("Authorities() with an aliased key = %v", got)
	}
}

func TestRegistryFailureIsAnError(t *testing.T) {
	t.Parallel()
	r := distribution(t)
	img := r.pushImage(t, "team/down")
	k := newKey(t, "p256")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.verifier.Verify(ctx, img.repo, img.digest, []verify.Authority{k.authority(t)}, verify.Goal{}); err == nil {
		t.Error("Verify with a cancelled context: no error")
	}
	if _, err := r.verifier.Verify(context.Background(), img.repo, "sha256:nothex", nil, verify.Goal{}); err == nil {
		t.Error("Verify of an invalid digest: no error")
	}
	if _, err := r.verifier.Verify(context.Background(), img.repo, img.digest, []verify.Authority{{Name: "broken"}}, verify.Goal{}); err == nil {
		t.Error("Verify with an authority without a key: no error")
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
