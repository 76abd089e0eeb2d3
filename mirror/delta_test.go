package mirror

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestDeltaAfterOneImageUpdate takes an inventory of an on-prem registry that holds
// everything, pushes one new image, and checks the delta bundle carries exactly that
// image's blobs and manifest.
func TestDeltaAfterOneImageUpdate(t *testing.T) {
	src := newSource(t)
	key := newSigningKey(t)
	// The on-prem names equal the source names, so the source registry serves as the
	// on-prem registry that already holds the first bundle.
	y := "version: 1\nsources:\n  - registry: " + src.host + "\n    repositories:\n" +
		"      - {name: app/web, tags: [\"1.0.0\"], as: app/web}\n" +
		"      - {name: app/api, semver: \"~2\", as: app/api}\n"
	f, err := ParseFile(strings.NewReader(y))
	if err != nil {
		t.Fatal(err)
	}
	inv, err := TakeInventory(t.Context(), src.host, false, []string{"app/web", "app/api"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(inv); err != nil {
		t.Fatal(err)
	}
	inv, err = ReadInventory(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !inv.Has("app/web", src.index) || !inv.Has("app/api", src.apiTags["2.0.0"]) {
		t.Fatalf("inventory lacks what the registry holds: %v", inv.Repositories)
	}

	img := src.pushAPI(t, "2.2.0")
	_, full := collect(t, f, key, WriteOptions{})
	dir, m := collect(t, f, key, WriteOptions{Have: inv})

	raw, _ := img.RawManifest()
	cfg, _ := img.RawConfigFile()
	want := int64(len(raw) + len(cfg))
	digests := map[string]bool{src.apiTags["2.2.0"]: true}
	cd, _ := img.ConfigName()
	digests[cd.String()] = true
	layers, _ := img.Layers()
	for _, l := range layers {
		d, _ := l.Digest()
		s, _ := l.Size()
		digests[d.String()] = true
		want += s
	}
	v, err := Verify(dir, key.verifier, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got int64
	for d, s := range v.Blobs {
		if !digests[d] {
			t.Errorf("the delta carries %s, which the on-prem registry has", d)
		}
		got += s
	}
	if len(v.Blobs) != len(digests) || got != want {
		t.Fatalf("delta carries %d objects of %d bytes, want %d of %d", len(v.Blobs), got, len(digests), want)
	}
	if m.Delta == nil || m.Delta.Omitted == 0 || len(m.Images) != 4 {
		t.Fatalf("delta %+v, %d images (want the 4 pinned images listed)", m.Delta, len(m.Images))
	}
	// The compressed delta is far smaller than the full bundle.
	var fullSize, deltaSize int64
	for _, c := range full.Chunks {
		fullSize += c.Size
	}
	for _, c := range m.Chunks {
		deltaSize += c.Size
	}
	if deltaSize > want+4096 || deltaSize*2 > fullSize {
		t.Fatalf("delta chunks %d bytes, new content %d bytes, full bundle %d bytes", deltaSize, want, fullSize)
	}
}
