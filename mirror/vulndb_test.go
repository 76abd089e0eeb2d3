package mirror

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// vulnDBSource is a database for collect to carry; the mirror package does not read the
// archive, so any bytes do.
func vulnDBSource(t *testing.T) (*VulnDBSource, []byte) {
	t.Helper()
	data := bytes.Repeat([]byte("osv records "), 3000)
	p := filepath.Join(t.TempDir(), "osv.zip")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return &VulnDBSource{Zip: p, Revision: strings.Repeat("ab", 32), Newest: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC), Records: 3}, data
}

// resign rewrites the bundle manifest of dir with change applied, signed by key: a
// bundle whose signature is valid but whose content lies.
func resign(t *testing.T, dir string, key signingKey, change func(*BundleManifest)) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseBundleManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	change(m)
	signManifest(t, dir, key, m)
}

func TestVulnDBCarriedVerifiedAndImported(t *testing.T) {
	src := newSource(t)
	key := newSigningKey(t)
	vs, zipData := vulnDBSource(t)
	dir, m := collect(t, src.mirrorFile(t, ""), key, WriteOptions{ChunkSize: 16 << 10, VulnDB: vs})
	if m.VulnDB == nil || m.VulnDB.Revision != vs.Revision || m.VulnDB.Size != int64(len(zipData)) || !m.VulnDB.Newest.Equal(vs.Newest) || m.VulnDB.Records != 3 {
		t.Fatalf("bundle manifest lists %+v", m.VulnDB)
	}
	layout := filepath.Join(t.TempDir(), "layout")
	v, err := Extract(dir, layout, key.verifier, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The layout lists the artifact, with its artifactType, so OCI tools find it.
	var idx struct {
		Manifests []map[string]any `json:"manifests"`
	}
	if err := json.Unmarshal(v.Index, &idx); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range idx.Manifests {
		if d["digest"] == m.VulnDB.Manifest && d["artifactType"] == VulnDBArtifactType {
			found = true
		}
	}
	if !found {
		t.Fatalf("index.json does not list the database artifact: %s", v.Index)
	}
	var am vulnDBManifest
	if err := json.Unmarshal(v.VulnDBManifest, &am); err != nil || am.Annotations[AnnotationVulnDBNewest] != "2026-12-01T08:00:00Z" || am.Annotations[AnnotationVulnDBRevision] != vs.Revision {
		t.Fatalf("artifact manifest %s: %v", v.VulnDBManifest, err)
	}

	tg := newTarget(t)
	o := tg.options(t, filepath.Join(t.TempDir(), "j"), nil)
	var got []byte
	o.VulnDB = func(zip string, d *VulnDB) (string, string, error) {
		if tg.writes.Load() != 0 {
			t.Error("the database was imported after the images were pushed")
		}
		got, err = os.ReadFile(zip)
		return "imported", "into the test", err
	}
	rep, err := Import(context.Background(), dir, key.verifier, o)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, zipData) {
		t.Fatalf("the importer got %d bytes, not the %d carried", len(got), len(zipData))
	}
	if rep.VulnDB == nil || rep.VulnDB.Status != "imported" || rep.VulnDB.Revision != vs.Revision {
		t.Fatalf("report: %+v", rep.VulnDB)
	}
	if len(rep.Images) != len(m.Images) || rep.Refused() != 1 { // 2.1.0 is forbidden by importPolicy
		t.Fatalf("images: %+v", rep.Images)
	}

	// Without an importer the database is reported, not imported.
	o = tg.options(t, filepath.Join(t.TempDir(), "j2"), nil)
	rep, err = Import(context.Background(), dir, key.verifier, o)
	if err != nil || rep.VulnDB == nil || rep.VulnDB.Status != "not imported" {
		t.Fatalf("no importer: %v %+v", err, rep)
	}
}

func TestVulnDBRefusals(t *testing.T) {
	src := newSource(t)
	key := newSigningKey(t)
	vs, _ := vulnDBSource(t)
	dir, _ := collect(t, src.mirrorFile(t, ""), key, WriteOptions{ChunkSize: 16 << 10, VulnDB: vs})
	other := "sha256:" + strings.Repeat("0", 64)
	for name, tc := range map[string]struct {
		change func(*BundleManifest)
		want   string
	}{
		"records swapped":  {func(b *BundleManifest) { b.VulnDB.Layer = other }, "does not hold its records"},
		"size changed":     {func(b *BundleManifest) { b.VulnDB.Size++ }, "does not hold its records"},
		"revision changed": {func(b *BundleManifest) { b.VulnDB.Revision = strings.Repeat("cd", 32) }, "says revision"},
		"manifest swapped": {func(b *BundleManifest) { b.VulnDB.Manifest = b.Images[0].Digest }, "artifactType"},
		"manifest missing": {func(b *BundleManifest) { b.VulnDB.Manifest = other }, "does not hold its manifest"},
		"revision not hex": {func(b *BundleManifest) { b.VulnDB.Revision = "../x" }, "vulnDB.revision"},
		"dropped":          {func(b *BundleManifest) { b.VulnDB = nil }, "index.json"},
	} {
		t.Run(name, func(t *testing.T) {
			bad := copyDir(t, dir)
			resign(t, bad, key, tc.change)
			_, err := Verify(bad, key.verifier, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}

	// An importer that refuses (an older database) refuses the bundle: nothing is pushed.
	tg := newTarget(t)
	o := tg.options(t, filepath.Join(t.TempDir(), "j"), nil)
	o.VulnDB = func(string, *VulnDB) (string, string, error) {
		return "", "", errors.New("older than the one in place")
	}
	_, err := Import(context.Background(), dir, key.verifier, o)
	if err == nil || !strings.Contains(err.Error(), "older than the one in place") || !strings.Contains(err.Error(), "nothing imported") {
		t.Fatalf("refusing importer: %v", err)
	}
	if n := tg.writes.Load(); n != 0 {
		t.Fatalf("a refused database still let %d writes through", n)
	}
}
