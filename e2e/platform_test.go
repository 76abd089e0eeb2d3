package e2e

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// platformPolicy: prod's and edge's nodes run linux/arm64/v8; prod blocks indexes and
// images without it, edge warns; dev declares no platforms and is not judged.
const platformPolicy = `version: 1
environments:
  - {name: prod, repositories: ["prod/**"], platforms: [linux/arm64/v8]}
  - {name: edge, repositories: ["edge/**"], platforms: [linux/arm64/v8], failMode: open}
  - {name: dev, repositories: ["dev/**"], failMode: open}
rules:
  - {id: cluster-hardware, type: platform, mode: block, environments: [prod]}
  - {id: edge-hardware, type: platform, mode: warn, environments: [edge]}
`

// TestPlatformRuleWithCrane builds single-platform images with crane in dev, then pushes
// indexes of them with crane index append into prod and edge through a started gateway: an
// index without the nodes' platform is denied in prod (naming what it has and what the
// nodes need) and warned in edge; one with it is accepted, and its platform manifests
// pulled by digest are judged by their configuration.
func TestPlatformRuleWithCrane(t *testing.T) {
	crane := requireTool(t, "crane")
	dir := t.TempDir()
	policyPath := filepath.Join(dir, "policy.yaml")
	writeFile(t, policyPath, []byte(platformPolicy))
	gw := startGateway(t, "--policy", policyPath)
	tarPath := filepath.Join(dir, "layer.tar")
	writeFile(t, tarPath, newImage(t).layerTar)
	dev := gw.addr + "/dev/app"

	runTool(t, crane, "append", "--insecure", "--oci-empty-base", "-f", tarPath, "-t", dev+":base")
	runTool(t, crane, "mutate", "--insecure", "--set-platform", "linux/amd64", dev+":base", "-t", dev+":amd64")
	runTool(t, crane, "mutate", "--insecure", "--set-platform", "linux/arm64/v8", dev+":base", "-t", dev+":arm64")
	amdDigest := strings.TrimSpace(must(runTool(t, crane, "digest", "--insecure", dev+":amd64")))
	armDigest := strings.TrimSpace(must(runTool(t, crane, "digest", "--insecure", dev+":arm64")))

	// An amd64-only index: crane pushes the platform manifest by digest (left to the index),
	// then the index by tag, which is denied.
	_, stderr, err := tryTool(crane, "index", "append", "--insecure", "-m", dev+":amd64", "-t", gw.addr+"/prod/app:amd-only")
	if err == nil {
		t.Fatal("an amd64-only index was accepted in prod, whose nodes run linux/arm64/v8")
	}
	for _, want := range []string{"DENIED", "[cluster-hardware]", "the index has linux/amd64", "environment prod's nodes run linux/arm64/v8", "docker buildx build --platform linux/arm64/v8"} {
		if !strings.Contains(stderr, want) {
			t.Fatalf("the denial lacks %q:\n%s", want, stderr)
		}
	}

	// With arm64 it is accepted and pulled back.
	runTool(t, crane, "index", "append", "--insecure", "-m", dev+":amd64", "-m", dev+":arm64", "-t", gw.addr+"/prod/app:1.0.0")
	index, _ := runTool(t, crane, "manifest", "--insecure", gw.addr+"/prod/app:1.0.0")
	if !strings.Contains(index, `"architecture":"arm64"`) {
		t.Fatalf("the pulled index lacks arm64:\n%s", index)
	}
	// Its platform manifests: the one the nodes run is served, the other is not.
	runTool(t, crane, "manifest", "--insecure", gw.addr+"/prod/app@"+armDigest)
	_, stderr, err = tryTool(crane, "manifest", "--insecure", gw.addr+"/prod/app@"+amdDigest)
	if err == nil || !strings.Contains(stderr, "the image is for linux/amd64 (its configuration says so)") {
		t.Fatalf("pull of the amd64 platform manifest in prod: err %v\n%s", err, stderr)
	}
	// A single-platform amd64 image pushed by tag is denied; an arm64 one accepted.
	if _, stderr, err := tryTool(crane, "copy", "--insecure", dev+":amd64", gw.addr+"/prod/single:1.0.0"); err == nil || !strings.Contains(stderr, "the image is for linux/amd64") {
		t.Fatalf("amd64 image pushed by tag to prod: err %v\n%s", err, stderr)
	}
	runTool(t, crane, "copy", "--insecure", dev+":arm64", gw.addr+"/prod/single:1.0.1")

	// In edge the rule warns: the push goes through and crane shows the warning.
	_, stderr = runTool(t, crane, "index", "append", "--insecure", "-m", dev+":amd64", "-t", gw.addr+"/edge/app:1.0.0")
	if !strings.Contains(stderr, "[edge-hardware]") || !strings.Contains(stderr, "the index has linux/amd64") {
		t.Fatalf("crane did not show the platform warning:\n%s", stderr)
	}

	// Hostile: arm64 claimed only by an attestation entry, or by an entry without a
	// platform of its own, does not count.
	for name, entries := range map[string][]map[string]any{
		"attestation": {
			{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amdDigest, "size": 1, "platform": map[string]string{"os": "linux", "architecture": "amd64"}},
			{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": armDigest, "size": 1, "platform": map[string]string{"os": "linux", "architecture": "arm64"},
				"annotations": map[string]string{"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": amdDigest}},
		},
		"no platform": {{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": armDigest, "size": 1}},
		"empty":       {{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": armDigest, "size": 1, "platform": map[string]string{"os": "", "architecture": ""}}},
		"huge": {{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": armDigest, "size": 1,
			"platform": map[string]string{"os": "linux", "architecture": "arm64" + strings.Repeat("x", 100000)}}},
	} {
		body, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries})
		if err != nil {
			t.Fatal(err)
		}
		code, resp := putManifest(t, gw.url(""), "prod/app", "hostile", "application/vnd.oci.image.index.v1+json", body)
		if code != http.StatusForbidden || !strings.Contains(resp, "[cluster-hardware]") || len(resp) > 4000 {
			t.Errorf("%s: %d (%d bytes)\n%.2000s", name, code, len(resp), resp)
		}
	}
}

// must returns the first of two values.
func must(a, _ string) string { return a }
