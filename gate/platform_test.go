package gate_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/upstream"
)

const platformGatePolicy = `version: 1
environments:
  - {name: prod, repositories: ["prod/**"], platforms: [linux/arm64/v8]}
rules:
  - {id: cluster-hardware, type: platform, mode: block}
`

// platformImage is a random image whose configuration says it is for os/arch/variant
// (and runs as a non-root user).
func platformImage(t *testing.T, os, arch, variant string) v1.Image {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf.OS, cf.Architecture, cf.Variant = os, arch, variant
	cf.Config.User = "65532"
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// pushIndex pushes an index of the images (each with its platform in its descriptor, and
// attestation entries claiming attested) under repoTag and returns its digest and body.
func pushIndex(t *testing.T, reg, repoTag string, images map[string]v1.Image, attested ...string) (string, []byte) {
	t.Helper()
	var idx v1.ImageIndex = empty.Index
	for plat, img := range images {
		p, err := v1.ParsePlatform(plat)
		if err != nil {
			t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: p}})
	}
	for _, plat := range attested {
		// buildx's attestation manifests say unknown/unknown; a hostile one claims a platform.
		p, err := v1.ParsePlatform(plat)
		if err != nil {
			t.Fatal(err)
		}
		att := platformImage(t, "unknown", "unknown", "")
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{Platform: p,
			Annotations: map[string]string{"vnd.docker.reference.type": "attestation-manifest"}}})
	}
	ref, err := name.ParseReference(strings.TrimPrefix(reg, "http://")+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	body, err := idx.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String(), body
}

func TestPlatformRuleWithARealRegistryAndMultiArchIndexes(t *testing.T) {
	reg := regtest.Registry(t)
	p, err := policy.Parse([]byte(platformGatePolicy))
	if err != nil {
		t.Fatal(err)
	}
	up, err := upstream.New(reg, http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	images := &countingImages{Client: up}
	g := gate.New(p, up, &memSink{}, gate.WithImages(images), gate.WithClock(func() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) }))
	admit := func(action policy.Action, ref, digest string, manifest []byte) gate.Result {
		return g.Admit(context.Background(), gate.Request{Action: action, Repository: "prod/app", Reference: ref, Digest: digest, Manifest: manifest})
	}

	amd, arm := platformImage(t, "linux", "amd64", ""), platformImage(t, "linux", "arm64", "v8")
	multi, multiBody := pushIndex(t, reg, "prod/app:multi", map[string]v1.Image{"linux/amd64": amd, "linux/arm64": arm}, "unknown/unknown", "unknown/unknown")
	if res := admit(policy.ActionPull, "multi", multi, multiBody); res.Verdict != policy.VerdictAllow {
		t.Fatalf("index with arm64: %s %q", res.Verdict, res.Message)
	}
	if res := admit(policy.ActionPush, "multi", multi, multiBody); res.Verdict != policy.VerdictAllow {
		t.Fatalf("push of an index with arm64: %s %q", res.Verdict, res.Message)
	}
	// A HEAD carries no body: the gate reads the manifest itself.
	if res := admit(policy.ActionPull, "multi", multi, nil); res.Verdict != policy.VerdictAllow {
		t.Fatalf("HEAD of an index with arm64: %s %q", res.Verdict, res.Message)
	}
	if n := images.blobs.Load(); n != 0 {
		t.Fatalf("an index's platforms are in its body, yet %d blobs were read", n)
	}

	// arm64 only on an attestation entry: it does not count.
	amdOnly, amdBody := pushIndex(t, reg, "prod/app:amd", map[string]v1.Image{"linux/amd64": amd}, "linux/arm64")
	for _, body := range [][]byte{amdBody, nil} {
		res := admit(policy.ActionPull, "amd", amdOnly, body)
		if res.Verdict != policy.VerdictDeny || res.Unavailable ||
			!strings.Contains(res.Message, "the index has linux/amd64 (not counted: 1 attestation manifest); environment prod's nodes run linux/arm64/v8") {
			t.Fatalf("amd64-only index (body %v): %s %q", body != nil, res.Verdict, res.Message)
		}
	}
	if res := admit(policy.ActionPush, "amd", amdOnly, amdBody); res.Verdict != policy.VerdictDeny {
		t.Fatalf("push of an amd64-only index: %s %q", res.Verdict, res.Message)
	}

	// Platform manifests: pushed by digest before their index they are left to it (no
	// config read); pulled, each is judged by its configuration.
	amdDigest, _ := amd.Digest()
	amdManifest, _ := amd.RawManifest()
	armDigest, _ := arm.Digest()
	armManifest, _ := arm.RawManifest()
	if res := admit(policy.ActionPush, amdDigest.String(), amdDigest.String(), amdManifest); res.Verdict != policy.VerdictAllow || images.blobs.Load() != 0 {
		t.Fatalf("push by digest of a platform manifest: %s %q, %d blobs read", res.Verdict, res.Message, images.blobs.Load())
	}
	res := admit(policy.ActionPull, amdDigest.String(), amdDigest.String(), amdManifest)
	if res.Verdict != policy.VerdictDeny || !strings.Contains(res.Message, "the image is for linux/amd64 (its configuration says so)") {
		t.Fatalf("pull of the amd64 manifest: %s %q", res.Verdict, res.Message)
	}
	if res := admit(policy.ActionPull, armDigest.String(), armDigest.String(), armManifest); res.Verdict != policy.VerdictAllow {
		t.Fatalf("pull of the arm64 manifest: %s %q", res.Verdict, res.Message)
	}
	// A single-platform image pushed by tag is judged by its configuration; the
	// configuration's platform is cached by its digest.
	before := images.blobs.Load()
	single, singleManifest := regtest.WriteImage(t, reg, "prod/app:single", platformImage(t, "linux", "s390x", ""))
	for range 2 {
		if res := admit(policy.ActionPush, "single", single, singleManifest); res.Verdict != policy.VerdictDeny {
			t.Fatalf("push of an s390x image by tag: %s %q", res.Verdict, res.Message)
		}
	}
	if n := images.blobs.Load() - before; n != 1 {
		t.Fatalf("%d configuration reads for two decisions on one image, want 1", n)
	}

	// An index whose entry claims arm64 for an amd64 image passes on its claim, but the
	// platform manifest the node then pulls is judged by its configuration.
	liar := platformImage(t, "linux", "amd64", "v2")
	liarIndex, liarBody := pushIndex(t, reg, "prod/app:liar", map[string]v1.Image{"linux/arm64": liar})
	if res := admit(policy.ActionPull, "liar", liarIndex, liarBody); res.Verdict != policy.VerdictAllow {
		t.Fatalf("index claiming arm64: %s %q", res.Verdict, res.Message)
	}
	liarDigest, _ := liar.Digest()
	liarManifest, _ := liar.RawManifest()
	if res := admit(policy.ActionPull, liarDigest.String(), liarDigest.String(), liarManifest); res.Verdict != policy.VerdictDeny ||
		!strings.Contains(res.Message, "the image is for linux/amd64/v2") {
		t.Fatalf("the amd64 image behind an arm64 claim: %s %q", res.Verdict, res.Message)
	}
}

func TestPlatformRuleWithoutAnImageReaderIsALastingDenial(t *testing.T) {
	reg := regtest.Registry(t)
	p, err := policy.Parse([]byte(platformGatePolicy))
	if err != nil {
		t.Fatal(err)
	}
	up, err := upstream.New(reg, http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	g := gate.New(p, up, &memSink{})
	img := platformImage(t, "linux", "arm64", "")
	d, m := regtest.WriteImage(t, reg, "prod/app:1", img)
	res := g.Admit(context.Background(), gate.Request{Action: policy.ActionPull, Repository: "prod/app", Reference: "1", Digest: d, Manifest: m})
	if res.Verdict != policy.VerdictDeny || res.Unavailable || !strings.Contains(res.Message, "The platform check cannot run") {
		t.Fatalf("%s unavailable=%v %q", res.Verdict, res.Unavailable, res.Message)
	}
}
