package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/internal/scantest"
	"github.com/portcullis-dev/portcullis/scan/vulndb/vulndbtest"
)

// recordsPolicy: base images are accepted with their debt; in applications a new fixable
// critical finding blocks, and inherited ones warn for 30 days from their first sighting.
const recordsPolicy = `version: 1
environments:
  - name: base
    repositories: ["base/**"]
    failMode: closed
  - name: apps
    repositories: ["team/**"]
    failMode: closed
rules:
  - {id: immutable-tags, type: immutable, mode: block}
  - {id: base-debt, type: vulnerability, mode: warn, environments: [base], severity: critical, fixable: true, unknown: ignore}
  - {id: no-new-critical, type: vulnerability, mode: block, environments: [apps], severity: critical, fixable: true, unknown: ignore,
     new: true, remediation: {critical: 30d}}
`

// recordsScenario is a base image with a critical fixable finding and the files of two
// application layers built on it (no base image annotations: only the gateway's records
// tell what they were built on).
type recordsScenario struct {
	crane, dir, dbDir, policy string
	baseTar, appTar, app2Tar  string
}

func newRecordsScenario(t *testing.T) *recordsScenario {
	t.Helper()
	s := &recordsScenario{crane: requireTool(t, "crane"), dir: t.TempDir()}
	runtimeBin := scantest.BuildGoProgram(t, scantest.GoProgram{Name: "runtime",
		Require: map[string]string{"github.com/docker/docker": "v24.0.7+incompatible"},
		Imports: []string{"github.com/docker/docker/api/types/versions"}})
	s.baseTar = writeTar(t, s.dir, "base.tar", map[string][]byte{"usr/bin/runtime": readFile(t, runtimeBin)})
	s.appTar = writeTar(t, s.dir, "app.tar", map[string][]byte{"app/VERSION": []byte("1.0.0\n")})
	s.app2Tar = writeTar(t, s.dir, "app2.tar", map[string][]byte{"app/VERSION": []byte("1.0.1\n")})
	testdata := filepath.Join(moduleRootDir(t), "scan", "vulndb", "testdata")
	s.dbDir = filepath.Join(s.dir, "vulndb")
	runTool(t, gatewayBin, "db", "import", "--db", s.dbDir, vulndbtest.GoOSVDir(t), filepath.Join(testdata, "ghsa-go"), filepath.Join(testdata, "ghsa-go-base"))
	s.policy = filepath.Join(s.dir, "policy.yaml")
	writeFile(t, s.policy, []byte(recordsPolicy))
	return s
}

// push appends layer to from (or to nothing) as ref through gw; it returns the digest
// pushed, crane's stderr (the gateway's warnings) and the error.
func (s *recordsScenario) push(gw *gateway, from, layer, ref string) (digest, stderr string, err error) {
	args := []string{"append", "--insecure", "-f", layer, "-t", gw.addr + "/" + ref}
	if from == "" {
		args = append(args, "--oci-empty-base")
	} else {
		args = append(args, "-b", gw.addr+"/"+from)
	}
	out, stderr, err := tryTool(s.crane, args...)
	_, digest, _ = strings.Cut(strings.TrimSpace(out), "@")
	return digest, stderr, err
}

// TestRestartKeepsRecords restarts a single-node gateway (embedded defaults: memory cache,
// records in SQLite under the data directory) in the middle of a scenario: first
// sightings, remediation days left, baselines and the tag ledger are unchanged.
func TestRestartKeepsRecords(t *testing.T) {
	s := newRecordsScenario(t)
	day0 := time.Date(2027, 5, 3, 9, 0, 0, 0, time.UTC)
	clock := newTestClock(t, day0)
	cfg := filepath.Join(s.dir, "portcullis.yaml")
	writeFile(t, cfg, []byte(fmt.Sprintf("scan:\n  db: %q\n", s.dbDir)))
	data := filepath.Join(s.dir, "data")
	reg := regtest.Registry(t)
	start := func() *gateway {
		return startGatewayEnv(t, []string{"PORTCULLIS_TEST_CLOCK=" + clock.path},
			"--config", cfg, "--policy", s.policy, "--data-dir", data, "--upstream", reg)
	}
	gw := start()
	baseDigest, stderr, err := s.push(gw, "", s.baseTar, "base/runtime:1")
	if err != nil || !strings.Contains(stderr, "[base-debt]") || !strings.Contains(stderr, "GO-2024-3005") {
		t.Fatalf("base push: %v\n%s", err, stderr)
	}
	appDigest, stderr, err := s.push(gw, "base/runtime:1", s.appTar, "team/app:1.0.0")
	day0Warning := "30 days left to fix (first seen " + day0.Format(time.DateOnly) + ", window 30d)"
	if err != nil || !strings.Contains(stderr, "inherited from the base image base/runtime@"+baseDigest[:19]) || !strings.Contains(stderr, day0Warning) {
		t.Fatalf("app push on day 0: %v\n%s", err, stderr)
	}

	// Five days later, after a restart.
	clock.set(t, day0.AddDate(0, 0, 5))
	gw.stop(t)
	gw = start()

	// A new version, on the same base: judged against the base found through the layer
	// index the first process recorded, with the remediation window of day 0.
	_, stderr, err = s.push(gw, "base/runtime:1", s.app2Tar, "team/app:1.0.1")
	if err != nil {
		t.Fatalf("app push after the restart refused (baseline or first sighting forgotten?): %v\n%s", err, stderr)
	}
	day5Warning := "25 days left to fix (first seen " + day0.Format(time.DateOnly) + ", window 30d)"
	if !strings.Contains(stderr, "inherited from the base image base/runtime@"+baseDigest[:19]) || !strings.Contains(stderr, day5Warning) {
		t.Fatalf("app push after the restart does not count from day 0 against the base:\n%s", stderr)
	}
	// A pull of what was pushed before the restart: judged against its push's baseline.
	code, _, h := rawDo(t, http.MethodGet, gw.url("/v2/team/app/manifests/1.0.0"), nil, map[string]string{"Accept": mediaManifest})
	if code != http.StatusOK || !strings.Contains(strings.Join(h.Values("Warning"), " "), day5Warning) {
		t.Fatalf("pull of team/app:1.0.0 after the restart: %d %q", code, h.Values("Warning"))
	}
	// The tag ledger: deleted upstream, the tag still cannot be pushed with other content.
	code, _, _ = rawDo(t, http.MethodDelete, reg+"/v2/team/app/manifests/"+appDigest, nil, nil)
	if code != http.StatusAccepted {
		t.Fatalf("deleting team/app@%s upstream: %d", appDigest, code)
	}
	if _, stderr, err = s.push(gw, "base/runtime:1", s.app2Tar, "team/app:1.0.0"); err == nil || !strings.Contains(stderr, "immutable-tags") || !strings.Contains(stderr, appDigest[:19]) {
		t.Fatalf("team/app:1.0.0, deleted upstream, pushed again with other content after a restart: %v\n%s", err, stderr)
	}
	// The decisions made before the restart are listed.
	out, _ := runTool(t, gatewayBin, "decisions", "list", "--data-dir", data, "--repository", "team/app", "--output", "json")
	var ds []struct{ Reference, Verdict, Action string }
	if err := json.Unmarshal([]byte(out), &ds); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, d := range ds {
		seen[d.Action+" "+d.Reference+" "+d.Verdict] = true
	}
	for _, want := range []string{"push 1.0.0 warn", "push 1.0.1 warn", "push 1.0.0 deny"} {
		if !seen[want] {
			t.Errorf("decisions list lacks %q: %+v", want, ds)
		}
	}
}
