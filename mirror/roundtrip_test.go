package mirror

import (
	"bytes"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestCollectVerifyRoundTrip(t *testing.T) {
	src := newSource(t)
	key := newSigningKey(t)
	var progress bytes.Buffer
	dir, m := collect(t, src.mirrorFile(t, ""), key, WriteOptions{ChunkSize: 16 << 10, Progress: NewJSONLines(&progress)})

	if len(m.Chunks) < 2 {
		t.Fatalf("want several chunks of 16 KiB, got %d", len(m.Chunks))
	}
	var tags []string
	for _, img := range m.Images {
		tags = append(tags, img.Name+":"+img.Tag)
	}
	want := []string{"mirror/" + strings.ReplaceAll(src.host, ":", "_") + "/app/web:1.0.0", "mirror/" + strings.ReplaceAll(src.host, ":", "_") + "/app/api:2.0.0", "mirror/" + strings.ReplaceAll(src.host, ":", "_") + "/app/api:2.1.0"}
	if !slices.Equal(tags, want) {
		t.Fatalf("images %v, want %v", tags, want)
	}
	web := m.Images[0]
	if web.Digest != src.index || !web.AllPlatforms || len(web.Children) != 2 {
		t.Fatalf("web image: %+v", web)
	}
	var sig, bundle bool
	for _, r := range web.Referrers {
		sig = sig || r.Tag == "sha256-"+src.index[7:]+".sig"
		bundle = bundle || r.ArtifactType == "application/vnd.dev.sigstore.bundle.v0.3+json"
	}
	if !sig || !bundle {
		t.Fatalf("referrers %+v: want the cosign .sig tag and the v3 bundle referrer", web.Referrers)
	}
	if ev := events(t, progress.Bytes()); ev[len(ev)-1].Phase != "done" || ev[len(ev)-1].Done != ev[len(ev)-1].Total {
		t.Fatalf("last progress event %+v", ev[len(ev)-1])
	}

	out := filepath.Join(t.TempDir(), "layout")
	v, err := Extract(dir, out, key.verifier, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Blobs) != m.Objects {
		t.Fatalf("%d blobs, manifest says %d", len(v.Blobs), m.Objects)
	}
	// The layout reopened holds the same digests as the source, byte for byte.
	p, err := layout.FromPath(out)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, d := range im.Manifests {
		found[d.Digest.String()] = true
	}
	for _, img := range m.Images {
		if !found[img.Digest] {
			t.Errorf("index.json lacks %s", img.Digest)
		}
		sd, err := remote.Get(src.ref(t, "app/"+filepath.Base(img.Name)+":"+img.Tag))
		if err != nil {
			t.Fatal(err)
		}
		if sd.Digest.String() != img.Digest {
			t.Errorf("%s: source digest %s, bundle %s", img.Tag, sd.Digest, img.Digest)
		}
	}
	wi, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	webIdx, err := wi.ImageIndex(mustHash(t, src.index))
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := webIdx.Digest(); d.String() != src.index {
		t.Fatalf("reopened index digest %s, source %s", d, src.index)
	}
	for plat, child := range src.children {
		img, err := webIdx.Image(mustHash(t, child))
		if err != nil {
			t.Fatalf("%s: %v", plat, err)
		}
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range layers {
			rc, err := l.Compressed()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := bytes.NewBuffer(nil).ReadFrom(rc); err != nil {
				t.Fatalf("%s layer: %v", plat, err)
			}
			rc.Close()
		}
	}
}

func TestCollectPlatformFilterKeepsIndexBytes(t *testing.T) {
	src := newSource(t)
	key := newSigningKey(t)
	dir, m := collect(t, src.mirrorFile(t, "        platforms: [linux/arm64]\n"), key, WriteOptions{})
	web := m.Images[0]
	if web.Digest != src.index || web.AllPlatforms {
		t.Fatalf("web: %+v", web)
	}
	if len(web.Children) != 1 || web.Children[0].Digest != src.children["linux/arm64/v8"] || !slices.Equal(web.Platforms, []string{"linux/arm64/v8"}) {
		t.Fatalf("children %+v platforms %v: want only linux/arm64/v8", web.Children, web.Platforms)
	}
	v, err := Verify(dir, key.verifier, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := v.Blobs[src.children["linux/amd64"]]; ok {
		t.Fatal("the amd64 child is in the bundle")
	}
	if _, ok := v.Blobs[src.index]; !ok {
		t.Fatal("the index (untouched bytes) is not in the bundle")
	}
}

func TestDryRunPlanWritesNothing(t *testing.T) {
	src := newSource(t)
	plan, err := Resolve(t.Context(), src.mirrorFile(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	n, size := plan.Objects()
	if n == 0 || size == 0 || len(plan.Images) != 3 {
		t.Fatalf("plan: %d objects, %d bytes, %d images", n, size, len(plan.Images))
	}
	for _, img := range plan.Images {
		if img.Size == 0 {
			t.Errorf("%s:%s has no size", img.Name, img.Tag)
		}
	}
}
