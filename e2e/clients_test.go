package e2e

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCrane pushes an image built by crane through the gateway, pulls it back three ways,
// copies it to another repository by cross-repository mount, lists tags and deletes.
func TestCrane(t *testing.T) {
	crane := requireTool(t, "crane")
	gw := startGateway(t)
	img := newImage(t)
	tarPath := filepath.Join(t.TempDir(), "layer.tar")
	writeFile(t, tarPath, img.layerTar)
	repo := gw.addr + "/e2e/crane/app"
	ref := repo + ":1.0.0"

	// Push: crane gzips the layer, writes a config and an OCI manifest.
	out, _ := runTool(t, crane, "append", "--insecure", "--oci-empty-base", "-f", tarPath, "-t", ref)
	_, digest, ok := strings.Cut(strings.TrimSpace(out), "@")
	if !ok || !strings.HasPrefix(digest, "sha256:") {
		t.Fatalf("crane append printed %q, want REPO@sha256:...", out)
	}
	if out, _ := runTool(t, crane, "digest", "--insecure", ref); strings.TrimSpace(out) != digest {
		t.Fatalf("crane digest %s = %s, want the pushed %s", ref, strings.TrimSpace(out), digest)
	}

	// Pull the manifest: exactly the bytes of the digest.
	manifest, _ := runTool(t, crane, "manifest", "--insecure", ref)
	if got := sha256Digest([]byte(manifest)); got != digest {
		t.Fatalf("manifest served for %s has digest %s, want %s", ref, got, digest)
	}
	var md manifestDoc
	if err := json.Unmarshal([]byte(manifest), &md); err != nil || len(md.Layers) != 1 {
		t.Fatalf("manifest %s: %v, %d layers, want 1:\n%s", digest, err, len(md.Layers), manifest)
	}
	layerDigest := md.Layers[0].Digest

	// Pull the layer blob: its digest, and the very tar we gave crane.
	blob, _ := runTool(t, crane, "blob", "--insecure", repo+"@"+layerDigest)
	if got := sha256Digest([]byte(blob)); got != layerDigest {
		t.Fatalf("layer blob has digest %s, want %s", got, layerDigest)
	}
	if !bytes.Equal(gunzip(t, []byte(blob)), img.layerTar) {
		t.Fatal("the pulled layer does not decompress to the tar that was pushed")
	}

	// Pull the whole image as an OCI layout.
	layout := filepath.Join(t.TempDir(), "pulled")
	runTool(t, crane, "pull", "--insecure", "--format", "oci", ref, layout)
	if !slices.ContainsFunc(layoutManifests(t, layout), func(d descriptor) bool { return d.Digest == digest }) {
		t.Fatalf("pulled layout %s does not list manifest %s", layout, digest)
	}
	if !bytes.Equal(layoutBlob(t, layout, digest), []byte(manifest)) || !bytes.Equal(layoutBlob(t, layout, layerDigest), []byte(blob)) {
		t.Fatal("the pulled layout's manifest or layer differs from what the registry served")
	}
	layoutBlob(t, layout, md.Config.Digest)

	// Copy to another repository: the blobs must be mounted, not uploaded again.
	copyRepo := gw.addr + "/e2e/crane/copy"
	_, stderr := runTool(t, crane, "copy", "--insecure", ref, copyRepo+":1.0.0")
	if !strings.Contains(stderr, "mounted blob: "+layerDigest) {
		t.Errorf("crane copy did not report mounting %s:\n%s", layerDigest, stderr)
	}
	mounts := gw.log.awaitRequests(2, func(e logEntry) bool {
		return e.Method == "POST" && e.Route == "upload_start" && e.Repository == "e2e/crane/copy" && e.Status == 201
	})
	if len(mounts) < 2 { // the layer and the config
		t.Errorf("gateway access log shows %d POST .../e2e/crane/copy/blobs/uploads/ answered 201 (mounted), want 2", len(mounts))
	}
	if out, _ := runTool(t, crane, "digest", "--insecure", copyRepo+":1.0.0"); strings.TrimSpace(out) != digest {
		t.Fatalf("copy has digest %s, want %s", strings.TrimSpace(out), digest)
	}

	// Tags.
	runTool(t, crane, "tag", "--insecure", ref, "1.0.1")
	if out, _ := runTool(t, crane, "ls", "--insecure", repo); !slices.Equal(strings.Fields(out), []string{"1.0.0", "1.0.1"}) {
		t.Fatalf("crane ls %s = %q, want 1.0.0 and 1.0.1", repo, strings.Fields(out))
	}

	// Delete the copy by digest: gone there, untouched at the source.
	runTool(t, crane, "delete", "--insecure", copyRepo+"@"+digest)
	if _, stderr, err := tryTool(crane, "manifest", "--insecure", copyRepo+":1.0.0"); err == nil || !strings.Contains(stderr, "MANIFEST_UNKNOWN") {
		t.Fatalf("after deleting %s@%s the tag still resolves (err %v):\n%s", copyRepo, digest, err, stderr)
	}
	if out, _, _ := tryTool(crane, "ls", "--insecure", copyRepo); strings.TrimSpace(out) != "" {
		t.Errorf("crane ls %s after the delete = %q, want no tags", copyRepo, out)
	}
	if out, _ := runTool(t, crane, "digest", "--insecure", ref); strings.TrimSpace(out) != digest {
		t.Fatalf("deleting the copy changed the source: %s is now %s", ref, strings.TrimSpace(out))
	}
}

// TestSkopeo pushes an OCI layout with skopeo through the gateway, pulls it back, copies it
// between repositories, lists tags and deletes.
func TestSkopeo(t *testing.T) {
	skopeo := requireTool(t, "skopeo")
	gw := startGateway(t)
	img := newImage(t)
	src := filepath.Join(t.TempDir(), "src")
	img.writeLayout(t, src, "1.0.0")
	ref := "docker://" + gw.addr + "/e2e/skopeo/app:1.0.0"
	copyRef := "docker://" + gw.addr + "/e2e/skopeo/copy:1.0.0"

	// Push.
	runTool(t, skopeo, "--insecure-policy", "copy", "--dest-tls-verify=false", "oci:"+src+":1.0.0", ref)
	raw, _ := runTool(t, skopeo, "inspect", "--raw", "--tls-verify=false", ref)
	if raw != string(img.manifest) {
		t.Fatalf("manifest served for %s is not the one pushed:\n got %s\nwant %s", ref, raw, img.manifest)
	}

	// Pull into a fresh OCI layout: same manifest, same blobs, byte for byte.
	dst := filepath.Join(t.TempDir(), "dst")
	runTool(t, skopeo, "--insecure-policy", "copy", "--src-tls-verify=false", ref, "oci:"+dst+":1.0.0")
	if m := layoutManifests(t, dst); len(m) != 1 || m[0].Digest != img.digest() {
		t.Fatalf("pulled layout lists %+v, want the one manifest %s", m, img.digest())
	}
	for name, want := range map[string][]byte{"manifest": img.manifest, "config": img.config, "layer": img.layer} {
		if got := layoutBlob(t, dst, sha256Digest(want)); !bytes.Equal(got, want) {
			t.Errorf("pulled %s differs from the pushed one", name)
		}
	}

	// Copy to another repository of the same registry: skopeo mounts the layer (it
	// uploads the config, which it never tries to reuse).
	runTool(t, skopeo, "--insecure-policy", "copy", "--src-tls-verify=false", "--dest-tls-verify=false", ref, copyRef)
	mounts := gw.log.awaitRequests(1, func(e logEntry) bool {
		return e.Method == "POST" && e.Route == "upload_start" && e.Repository == "e2e/skopeo/copy" && e.Status == 201
	})
	if len(mounts) == 0 {
		t.Errorf("gateway access log shows %d POST .../e2e/skopeo/copy/blobs/uploads/ answered 201 (mounted), want at least 1 (the layer)", len(mounts))
	}
	if raw, _ := runTool(t, skopeo, "inspect", "--raw", "--tls-verify=false", copyRef); sha256Digest([]byte(raw)) != img.digest() {
		t.Fatalf("copy has digest %s, want %s", sha256Digest([]byte(raw)), img.digest())
	}

	// Tags.
	out, _ := runTool(t, skopeo, "list-tags", "--tls-verify=false", strings.TrimSuffix(ref, ":1.0.0"))
	var tags struct{ Tags []string }
	if err := json.Unmarshal([]byte(out), &tags); err != nil || !slices.Equal(tags.Tags, []string{"1.0.0"}) {
		t.Fatalf("skopeo list-tags = %s (%v), want [1.0.0]", out, err)
	}

	// Delete the copy: gone there, untouched at the source.
	runTool(t, skopeo, "delete", "--tls-verify=false", copyRef)
	if _, stderr, err := tryTool(skopeo, "inspect", "--raw", "--tls-verify=false", copyRef); err == nil || !strings.Contains(strings.ToLower(stderr), "manifest unknown") {
		t.Fatalf("after skopeo delete %s it still resolves (err %v):\n%s", copyRef, err, stderr)
	}
	if raw, _ := runTool(t, skopeo, "inspect", "--raw", "--tls-verify=false", ref); raw != string(img.manifest) {
		t.Fatal("deleting the copy changed the source")
	}
}
