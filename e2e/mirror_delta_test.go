package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/portcullis-dev/portcullis/internal/cosigntest"
	"github.com/portcullis-dev/portcullis/internal/regtest"
)

// deltaOverhead bounds what a delta bundle adds to the new content it carries: the tar
// headers (512 bytes, and a PAX record, per object), oci-layout and index.json, and zstd's
// framing (the content is random: it does not compress). Per object, and fixed.
const deltaOverheadPerObject, deltaOverheadFixed = 1024, 4096

// TestMirrorDeltaImport imports a full bundle through a gateway whose policy requires the
// release key under mirror/**, takes `portcullis mirror inventory` of the on-prem registry,
// and then carries two deltas collected with `--have`:
//  1. after a one-image update (team/app:1.1.0 = 1.0.0's two 256 KiB layers plus a new
//     64 KiB one, signed): the delta carries exactly 1.1.0's manifest, config and new
//     layer and its .sig (manifest, config, layer), and its chunks add up to at most those
//     bytes + 1 KiB per object + 4 KiB; imported, 1.1.0 is pulled through the gateway by tag;
//  2. after only a new tag (team/lib:1.0.1 for lib:1.0.0's digest): the delta carries no
//     object, and its import publishes 1.0.1 at that digest, confirmed on-prem through the
//     gateway, its bytes read back from there.
//
// The first delta imported into a registry without the full bundle is refused, naming the
// image and telling to collect again without --have, with nothing written.
func TestMirrorDeltaImport(t *testing.T) {
	crane := requireTool(t, "crane")
	dir := t.TempDir()
	release := cosigntest.NewKey(t)

	src := regtest.Registry(t)
	srcHost := strings.TrimPrefix(src, "http://")
	app, err := random.Image(256<<10, 2)
	if err != nil {
		t.Fatal(err)
	}
	lib, err := random.Image(64<<10, 1)
	if err != nil {
		t.Fatal(err)
	}
	appDigest, _ := regtest.WriteImage(t, src, "team/app:1.0.0", app)
	libDigest, _ := regtest.WriteImage(t, src, "team/lib:1.0.0", lib)
	cosigntest.SignLegacy(t, srcHost, "team/app", appDigest, release)
	cosigntest.SignLegacy(t, srcHost, "team/lib", libDigest, release)

	keyFile, pubFile := bundleKey(t, dir)
	mirrorFile := filepath.Join(dir, "mirror.yaml")
	writeFile(t, mirrorFile, []byte("version: 1\nsources:\n  - registry: "+srcHost+"\n    repositories:\n"+
		"      - {name: team/app, semver: \"~1\"}\n      - {name: team/lib, semver: \"~1\"}\n"))
	collect := func(out string, extra ...string) bundleInfo {
		t.Helper()
		args := append([]string{"mirror", "collect", "--file", mirrorFile, "--out", out, "--key", keyFile}, extra...)
		portcullis(t, 0, []string{"COSIGN_PASSWORD=pw"}, args...)
		return readBundleInfo(t, out)
	}

	target := regtest.Registry(t)
	policyPath := mirrorPolicy(t, dir, release)
	gw := startGateway(t, "--policy", policyPath, "--upstream", target)
	ns := "mirror/" + strings.ReplaceAll(srcHost, ":", "_") + "/team/"
	importInto := func(gw *gateway, bundle string, want int) string {
		t.Helper()
		return portcullis(t, want, nil, "mirror", "import", "--bundle", bundle, "--key", pubFile, "--gateway", "http://"+gw.addr,
			"--journal", bundle+".journal", "--report", bundle+".report.json")
	}
	inventory := func(out string) {
		t.Helper()
		portcullis(t, 0, nil, "mirror", "inventory", "--registry", target, "--file", mirrorFile, "--out", out)
	}

	full := collect(filepath.Join(dir, "full"))
	importInto(gw, filepath.Join(dir, "full"), 0)
	inventory(filepath.Join(dir, "inv1.json"))

	// 1. A one-image update.
	layer, err := random.Layer(64<<10, "application/vnd.docker.image.rootfs.diff.tar.gzip")
	if err != nil {
		t.Fatal(err)
	}
	next, err := mutate.AppendLayers(app, layer)
	if err != nil {
		t.Fatal(err)
	}
	nextDigest, nextManifest := regtest.WriteImage(t, src, "team/app:1.1.0", next)
	cosigntest.SignLegacy(t, srcHost, "team/app", nextDigest, release)
	newObjects := map[string]int64{nextDigest: int64(len(nextManifest))}
	addImage(t, newObjects, next, 2)
	sig := "sha256-" + strings.TrimPrefix(nextDigest, "sha256:") + ".sig"
	sigImg := remoteImage(t, srcHost+"/team/app:"+sig)
	sigDigest, _ := sigImg.Digest()
	sigManifest, _ := sigImg.RawManifest()
	newObjects[sigDigest.String()] = int64(len(sigManifest))
	addImage(t, newObjects, sigImg, 0)
	var newBytes int64
	for _, s := range newObjects {
		newBytes += s
	}

	deltaDir := filepath.Join(dir, "delta1")
	delta := collect(deltaDir, "--have", filepath.Join(dir, "inv1.json"))
	bound := newBytes + deltaOverheadPerObject*int64(len(newObjects)) + deltaOverheadFixed
	t.Logf("full bundle %d bytes; delta %d bytes, %d objects; new content %d bytes in %d objects; bound %d",
		full.chunkBytes(), delta.chunkBytes(), delta.Objects, newBytes, len(newObjects), bound)
	if delta.Objects != len(newObjects) || delta.chunkBytes() > bound {
		t.Fatalf("the delta carries %d objects in %d bytes of chunks; the update's new content is %d objects of %d bytes (bound %d)",
			delta.Objects, delta.chunkBytes(), len(newObjects), newBytes, bound)
	}

	// Into a registry without the full bundle: refused, nothing written.
	emptyTarget := regtest.Registry(t)
	gw2 := startGateway(t, "--policy", policyPath, "--upstream", emptyTarget)
	out := importInto(gw2, deltaDir, 1)
	for _, want := range []string{"nothing imported", ns + "app:1.0.0", "neither in the bundle", "collect the bundle again without --have"} {
		if !strings.Contains(out, want) {
			t.Errorf("a delta into a registry lacking its base does not say %q:\n%s", want, out)
		}
	}
	if cat := catalog(t, emptyTarget); len(cat) != 0 {
		t.Errorf("the refused delta wrote repositories %v", cat)
	}

	importInto(gw, deltaDir, 0)
	if got := strings.TrimSpace(craneOut(t, crane, "digest", "--insecure", gw.addr+"/"+ns+"app:1.1.0")); got != nextDigest {
		t.Fatalf("app:1.1.0 through the gateway is %q, want %s", got, nextDigest)
	}

	// 2. Only a new tag for a digest already on-prem.
	inventory(filepath.Join(dir, "inv2.json"))
	libRef, err := name.ParseReference(srcHost+"/team/lib:1.0.1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(libRef, lib); err != nil {
		t.Fatal(err)
	}
	tagOnly := filepath.Join(dir, "delta2")
	d2 := collect(tagOnly, "--have", filepath.Join(dir, "inv2.json"))
	if d2.Objects != 0 || d2.chunkBytes() > deltaOverheadFixed {
		t.Fatalf("a tag-only delta carries %d objects in %d bytes", d2.Objects, d2.chunkBytes())
	}
	importInto(gw, tagOnly, 0)
	var rep struct {
		Images []struct{ Name, Tag, Digest, Verdict, Message string }
	}
	if err := json.Unmarshal(readFile(t, tagOnly+".report.json"), &rep); err != nil {
		t.Fatal(err)
	}
	published := false
	for _, r := range rep.Images {
		published = published || (r.Name == ns+"lib" && r.Tag == "1.0.1" && r.Verdict == "allow" && r.Digest == libDigest)
	}
	if !published {
		t.Fatalf("the tag-only delta's report: %+v", rep.Images)
	}
	if got := strings.TrimSpace(craneOut(t, crane, "digest", "--insecure", gw.addr+"/"+ns+"lib:1.0.1")); got != libDigest {
		t.Fatalf("lib:1.0.1 through the gateway is %q, want %s", got, libDigest)
	}
}

// bundleInfo is the part of bundle.json the delta test reads.
type bundleInfo struct {
	Objects int
	Chunks  []struct{ Size int64 }
}

func (b bundleInfo) chunkBytes() int64 {
	var n int64
	for _, c := range b.Chunks {
		n += c.Size
	}
	return n
}

func readBundleInfo(t *testing.T, dir string) bundleInfo {
	t.Helper()
	var b bundleInfo
	if err := json.Unmarshal(readFile(t, filepath.Join(dir, "bundle.json")), &b); err != nil {
		t.Fatal(err)
	}
	return b
}

// addImage adds img's config and its layers from the skip-th on to objects, by digest.
func addImage(t *testing.T, objects map[string]int64, img v1.Image, skip int) {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	objects[m.Config.Digest.String()] = m.Config.Size
	for _, l := range m.Layers[skip:] {
		objects[l.Digest.String()] = l.Size
	}
}

func remoteImage(t *testing.T, ref string) v1.Image {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// catalog lists the repositories of the registry at reg.
func catalog(t *testing.T, reg string) []string {
	t.Helper()
	r, err := name.NewRegistry(strings.TrimPrefix(reg, "http://"), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	repos, err := remote.Catalog(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	return repos
}
