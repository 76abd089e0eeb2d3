package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/portcullis-dev/portcullis/internal/regtest"
)

// TestCIScanWithRealCosign: CI attaches a real Trivy report to images with the real cosign
// binary (`cosign attest --type vuln`, stored as a v2 `.att` tag, and with
// --new-bundle-format as a sigstore bundle referrer). The gateway's prod environment takes
// CI scans signed by CI's key: it judges CI's findings with its own rule (the scan found
// medium findings; the rule blocks from medium) without scanning itself (this gateway has
// no vulnerability database, so its own scan could not run), and `portcullis check` names
// the evidence. A report attested with another key is not used, and check says why.
func TestCIScanWithRealCosign(t *testing.T) {
	cosign := requireTool(t, "cosign")
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	run := func(wd string, env []string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, cosign, args...)
		cmd.Dir = wd
		cmd.Env = append(cleanEnv(), append([]string{"HOME=" + home, "DOCKER_CONFIG=" + filepath.Join(home, ".docker")}, env...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("cosign %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return out.String()
	}
	for _, who := range []string{"ci", "stranger"} {
		if err := os.MkdirAll(filepath.Join(dir, who), 0o755); err != nil {
			t.Fatal(err)
		}
		run(filepath.Join(dir, who), []string{"COSIGN_PASSWORD=" + who + "-pw"}, "generate-key-pair")
	}

	// The predicate as CI writes it: cosign's vuln predicate around Trivy's JSON report.
	report := readFile(t, filepath.Join(moduleRootDir(t), "scan", "ciresult", "testdata", "trivy-alpine-310.json"))
	finished := time.Now().Add(-time.Hour).UTC()
	pred, err := json.Marshal(map[string]any{
		"invocation": map[string]any{"parameters": nil, "uri": "https://ci.example/pipelines/7", "event_id": "7", "builder.id": "ci"},
		"scanner":    map[string]any{"uri": "pkg:github/aquasecurity/trivy@0.57.0", "version": "0.57.0", "db": map[string]any{"uri": "", "version": ""}, "result": json.RawMessage(report)},
		"metadata":   map[string]any{"scanStartedOn": finished.Add(-time.Minute).Format(time.RFC3339), "scanFinishedOn": finished.Format(time.RFC3339)},
	})
	if err != nil {
		t.Fatal(err)
	}
	predPath := filepath.Join(dir, "trivy.vuln.json")
	writeFile(t, predPath, pred)

	up := regtest.Registry(t)
	host := strings.TrimPrefix(up, "http://")
	push := func(repo string) string {
		img, err := random.Image(1024, 1)
		if err != nil {
			t.Fatal(err)
		}
		d, _ := regtest.WriteImage(t, up, repo+":1.0.0", img)
		return d
	}
	attest := func(who, ref string, extra ...string) {
		args := append([]string{"attest", "--type", "vuln", "--predicate", predPath, "--key", filepath.Join(dir, who, "cosign.key"),
			"--tlog-upload=false", "--allow-http-registry", "--allow-insecure-registry", "-y"}, extra...)
		run(dir, []string{"COSIGN_PASSWORD=" + who + "-pw"}, append(args, ref)...)
	}
	legacy, bundled, foreign := push("prod/legacy"), push("prod/bundled"), push("prod/foreign")
	attest("ci", host+"/prod/legacy@"+legacy)
	attest("ci", host+"/prod/bundled@"+bundled, "--new-bundle-format")
	attest("stranger", host+"/prod/foreign@"+foreign)

	policyPath := filepath.Join(dir, "policy.yaml")
	writeFile(t, policyPath, []byte(`version: 1
authorities:
  - {name: ci-key, keyFile: ci/cosign.pub}
environments:
  - {name: prod, repositories: ["prod/**"], failMode: closed, ciScans: {authorities: [ci-key]}}
rules:
  - {id: prod-vulns, type: vulnerability, mode: block, severity: medium}
`))
	gw := startGateway(t, "--policy", policyPath, "--upstream", up)
	check := func(image string) (int, string) {
		cmd := exec.Command(gatewayBin, "check", "--insecure", gw.addr+"/"+image)
		cmd.Env = append(cleanEnv(), "HOME="+t.TempDir())
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		_ = cmd.Run()
		return cmd.ProcessState.ExitCode(), out.String()
	}
	for repo, d := range map[string]string{"prod/legacy": legacy, "prod/bundled": bundled} {
		code, out := check(repo + "@" + d)
		if code != 1 {
			t.Errorf("%s: check exit %d, want 1 (denied on CI's findings)\n%s", repo, code, out)
		}
		for _, want := range []string{"CVE-2019-1549", "Scan evidence: signed CI scan: trivy 0.57.0", "signed by ci-key"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: check output lacks %q:\n%s", repo, want, out)
			}
		}
	}
	code, out := check("prod/foreign@" + foreign)
	for _, want := range []string{"CI scan evidence not used", "no trusted key verifies"} {
		if !strings.Contains(out, want) {
			t.Errorf("image attested with another key (exit %d): check output lacks %q:\n%s", code, want, out)
		}
	}
	if strings.Contains(out, "signed CI scan") {
		t.Errorf("the stranger's attestation was used:\n%s", out)
	}
}
