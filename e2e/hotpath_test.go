package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestManifestCacheFollowsRepository checks that the gateway's manifest cache answers only
// for manifests that are in the repository asked for: a manifest pulled from one repository
// is not served under another one's name by digest, and a deleted manifest is gone at once.
// (The OCI conformance suite's manifest-delete tests check the second through HEAD.)
func TestManifestCacheFollowsRepository(t *testing.T) {
	crane := requireTool(t, "crane")
	gw := startGateway(t)
	repoA, repoB := gw.addr+"/e2e/hot/a", gw.addr+"/e2e/hot/b"
	push := func(repo string) string {
		path := filepath.Join(t.TempDir(), "layer.tar")
		writeFile(t, path, newImage(t).layerTar)
		out, _ := runTool(t, crane, "append", "--insecure", "--oci-empty-base", "-f", path, "-t", repo+":1.0.0")
		_, d, _ := strings.Cut(strings.TrimSpace(out), "@")
		return d
	}
	digestA := push(repoA)
	push(repoB)
	// Pull both, by tag and by digest, so that whatever the gateway caches is cached.
	runTool(t, crane, "manifest", "--insecure", repoA+":1.0.0")
	runTool(t, crane, "manifest", "--insecure", repoA+"@"+digestA)
	runTool(t, crane, "manifest", "--insecure", repoB+":1.0.0")

	notFound := func(ref, why string) {
		t.Helper()
		for _, cmd := range []string{"manifest", "digest"} { // GET and HEAD
			if out, stderr, err := tryTool(crane, cmd, "--insecure", ref); err == nil {
				t.Errorf("crane %s %s succeeded (%.80s), want MANIFEST_UNKNOWN: %s", cmd, ref, out, why)
			} else if cmd == "manifest" && !strings.Contains(stderr, "MANIFEST_UNKNOWN") {
				t.Errorf("crane %s %s: %v, want MANIFEST_UNKNOWN:\n%s", cmd, ref, err, stderr)
			}
		}
	}
	notFound(repoB+"@"+digestA, "that manifest was never pushed to "+repoB)

	runTool(t, crane, "delete", "--insecure", repoA+"@"+digestA)
	notFound(repoA+"@"+digestA, "it was just deleted")
	notFound(repoA+":1.0.0", "its manifest was just deleted")
}
