package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/proxy"
)

// checkPolicy: latest is refused, a tag that is not a version warns until 2026-12-15 and
// blocks from then, and team/legacy has an exception in force for that.
const checkPolicy = `version: 1
exceptionProcess: "open a SEC ticket at https://tickets.example/SEC"
environments:
  - name: dev
    repositories: ["**"]
    failMode: open
rules:
  - id: no-latest
    type: tag
    mode: block
    actions: [push, pull]
    forbidden: [latest]
  - id: version-tags
    type: tag
    mode: block
    enforceFrom: 2026-12-15
    actions: [push, pull]
    allowed: ['^\d+\.\d+\.\d+$']
exceptions:
  - id: EXC-7
    scope:
      repository: team/legacy
      rules: [version-tags]
    reason: "legacy build names its tags by branch until the migration"
    owner: legacy@example.com
    approvedBy: security@example.com
    created: 2026-11-20
    expires: 2026-12-31
    closure: "move the build to version tags"
`

// checkEnv is a token-auth registry with a gateway in front of it and docker configs:
// one with the CI account's credentials for the gateway, one with none.
type checkEnv struct {
	gw               *gateway
	reg              string
	withCreds, empty string
	images           map[string]string // repo:tag -> digest
}

func newCheckEnv(t *testing.T) checkEnv {
	t.Helper()
	opt, _ := regtest.TokenAuth(t, "ci", "s3cret")
	reg := regtest.Registry(t, opt)
	dir := t.TempDir()
	policyPath := filepath.Join(dir, "policy.yaml")
	writeFile(t, policyPath, []byte(checkPolicy))
	clock := newTestClock(t, time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	gw := startGatewayEnv(t, []string{"PORTCULLIS_TEST_CLOCK=" + clock.path,
		"PORTCULLIS_UPSTREAM_USERNAME=ci", "PORTCULLIS_UPSTREAM_PASSWORD=s3cret"},
		"--policy", policyPath, "--upstream", reg)
	e := checkEnv{gw: gw, reg: reg, withCreds: filepath.Join(dir, "docker"), empty: filepath.Join(dir, "nodocker"),
		images: map[string]string{}}
	for _, d := range []string{e.withCreds, e.empty} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	auth := base64.StdEncoding.EncodeToString([]byte("ci:s3cret"))
	writeFile(t, filepath.Join(e.withCreds, "config.json"), []byte(`{"auths":{"`+gw.addr+`":{"auth":"`+auth+`"}}}`))
	writeFile(t, filepath.Join(e.empty, "config.json"), []byte(`{"auths":{}}`))
	// The images are written straight to the upstream: what is asked about here is the
	// pull decision, and "latest" could not be pushed through the gateway.
	creds := remote.WithAuth(&authn.Basic{Username: "ci", Password: "s3cret"})
	for _, rt := range []string{"team/app:1.2.3", "team/app:main", "team/app:latest", "team/legacy:main"} {
		img, err := random.Image(512, 1)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := name.ParseReference(strings.TrimPrefix(reg, "http://")+"/"+rt, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img, creds); err != nil {
			t.Fatalf("writing %s upstream: %v", rt, err)
		}
		d, _ := img.Digest()
		e.images[rt] = d.String()
	}
	return e
}

// checkRun is one run of "portcullis check".
type checkRun struct {
	code           int
	stdout, stderr string
}

// check runs "portcullis check" with the docker config in dockerConfig and args; the image
// among them (team/... or no/...) is prefixed with the gateway's address.
func (e checkEnv) check(t *testing.T, dockerConfig string, args ...string) checkRun {
	t.Helper()
	args = slices.Clone(args)
	for i, a := range args {
		if strings.HasPrefix(a, "team/") || strings.HasPrefix(a, "no/") {
			args[i] = e.gw.addr + "/" + a
		}
	}
	cmd := exec.Command(gatewayBin, append([]string{"check", "--insecure"}, args...)...)
	cmd.Env = append(cleanEnv(), "DOCKER_CONFIG="+dockerConfig, "HOME="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("running check: %v", err)
	}
	return checkRun{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

func (r checkRun) want(t *testing.T, what string, code int, stdout ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", what, r.code, code, r.stdout, r.stderr)
	}
	for _, s := range stdout {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("%s: stdout lacks %q:\n%s\nstderr:\n%s", what, s, r.stdout, r.stderr)
		}
	}
}

func TestCheck(t *testing.T) {
	e := newCheckEnv(t)
	app, branch, latest := e.images["team/app:1.2.3"], e.images["team/app:main"], e.images["team/app:latest"]

	t.Run("allow", func(t *testing.T) {
		e.check(t, e.withCreds, "team/app:1.2.3").want(t, "allowed tag", 0, "ALLOW", app, "dev (pull)")
		e.check(t, e.withCreds, "team/app@"+app).want(t, "the same image by digest", 0, "ALLOW", app)
		e.check(t, e.withCreds, "--action", "push", "team/app:1.2.3").want(t, "push decision", 0, "ALLOW", "dev (push)")
	})
	t.Run("warn prints the date it blocks from and exits 0", func(t *testing.T) {
		r := e.check(t, e.withCreds, "team/app:main")
		r.want(t, "warned tag", 0, "WARN", branch, "version-tags", "blocks from 2026-12-15", "Warnings", "open a SEC ticket")
		e.check(t, e.withCreds, "--fail-on", "warn", "team/app:main").want(t, "--fail-on warn", 1, "WARN")
		// Flags after the image work too.
		e.check(t, e.withCreds, "team/app:main", "--fail-on", "warn").want(t, "--fail-on warn after IMAGE", 1, "WARN")
	})
	t.Run("deny exits 1", func(t *testing.T) {
		e.check(t, e.withCreds, "team/app:latest").want(t, "latest", 1, "DENY", latest, "no-latest", "Refused:")
		e.check(t, e.withCreds, "team/app@"+latest).want(t, "latest's digest", 0, "ALLOW", latest)
	})
	t.Run("exception in force", func(t *testing.T) {
		e.check(t, e.withCreds, "team/legacy:main").want(t, "excepted", 0, "Exceptions in force", "EXC-7", "legacy@example.com", "2026-12-31", "31 days left")
	})
	t.Run("unknown image", func(t *testing.T) {
		r := e.check(t, e.withCreds, "team/app:9.9.9")
		r.want(t, "unknown tag", 3)
		if !strings.Contains(r.stderr, "not in the registry") || r.stdout != "" {
			t.Errorf("unknown tag: stdout %q, stderr %q", r.stdout, r.stderr)
		}
	})
	t.Run("no credentials learn nothing", func(t *testing.T) {
		var errs []string
		for _, image := range []string{"team/app:latest", "team/app@" + latest, "team/app:9.9.9", "no/such:1.0.0"} {
			r := e.check(t, e.empty, image)
			r.want(t, "no credentials for "+image, 3)
			stderr := strings.NewReplacer(image, "IMAGE", "team/app", "REPO", "no/such", "REPO", "team%2Fapp", "REPO", "no%2Fsuch", "REPO").Replace(r.stderr)
			if r.stdout != "" || strings.Contains(stderr, latest) || strings.Contains(stderr, "DENY") || !strings.Contains(stderr, "credentials") {
				t.Errorf("no credentials for %s: stdout %q, stderr %q", image, r.stdout, r.stderr)
			}
			errs = append(errs, stderr)

			// The API itself, asked without credentials, relays the upstream's challenge.
			resp, err := http.Get(e.gw.url(proxy.DecisionsPath + image))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "Bearer realm=") ||
				strings.Contains(string(body), latest) || strings.Contains(string(body), "verdict") {
				t.Errorf("API without credentials for %s: %s %q %s", image, resp.Status, resp.Header.Get("WWW-Authenticate"), body)
			}
		}
		if errs[0] != errs[2] || errs[0] != errs[3] {
			t.Errorf("an image that exists and one that does not are told apart:\n%s", strings.Join(errs, "\n"))
		}
	})
	t.Run("usage", func(t *testing.T) {
		for _, args := range [][]string{{"--format", "xml", "team/app:1.2.3"}, {"--action", "delete", "team/app:1.2.3"}, {"team/app"}} {
			e.check(t, e.withCreds, args...).want(t, strings.Join(args, " "), 2)
		}
	})
	t.Run("formats", func(t *testing.T) {
		r := e.check(t, e.withCreds, "--format", "json", "team/app:main")
		r.want(t, "json", 0)
		var rep proxy.DecisionReport
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Verdict != "warn" || rep.Digest != branch || rep.DecisionID == "" {
			t.Errorf("json: %v: %+v", err, rep)
		}

		r = e.check(t, e.withCreds, "--format", "github", "team/app:latest")
		r.want(t, "github", 1)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if len(lines) == 0 || !slices.ContainsFunc(lines, func(l string) bool {
			return strings.HasPrefix(l, "::error title=portcullis no-latest%3A ") && strings.Contains(l, "::"+e.gw.addr+"/team/app:latest")
		}) {
			t.Errorf("github annotations lack the no-latest error:\n%s", r.stdout)
		}
		for _, l := range lines {
			if !strings.HasPrefix(l, "::error ") && !strings.HasPrefix(l, "::warning ") && !strings.HasPrefix(l, "::notice ") {
				t.Errorf("github: line is not an annotation: %q", l)
			}
		}
		r = e.check(t, e.withCreds, "--format", "github", "team/app:main")
		if !strings.Contains(r.stdout, "::warning title=portcullis version-tags") || !strings.Contains(r.stdout, "2026-12-15") {
			t.Errorf("github: no warning with its blocking date:\n%s", r.stdout)
		}

		out := filepath.Join(t.TempDir(), "gl-code-quality-report.json")
		r = e.check(t, e.withCreds, "--format", "gitlab", "--output", out, "team/app:main")
		r.want(t, "gitlab", 0, "WARN") // the table still goes to the job log
		checkGitLabReport(t, readFile(t, out), "major", "version-tags")

		out = filepath.Join(t.TempDir(), "check.sarif")
		r = e.check(t, e.withCreds, "--format", "sarif", "--output", out, "team/app:latest")
		r.want(t, "sarif", 1, "DENY")
		checkSARIF(t, readFile(t, out), "error", "no-latest")
	})
	t.Run("audited as queries", func(t *testing.T) {
		var types []string
		for _, ev := range auditEvents(t, e.gw) {
			types = append(types, ev.Type)
		}
		if len(types) == 0 || slices.ContainsFunc(types, func(s string) bool { return s != "query" }) {
			t.Errorf("audit event types %v: every check is a query, none a decision", types)
		}
	})
}

// auditEvents reads the audit log whose path gw logged when its policy loaded.
func auditEvents(t *testing.T, gw *gateway) []auditEvent {
	t.Helper()
	path := ""
	for _, line := range gw.log.snapshot() {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "policy loaded" {
			path, _ = m["audit"].(string)
		}
	}
	if path == "" {
		t.Fatal("the gateway logged no audit path")
	}
	return readAudit(t, path)
}

// checkGitLabReport validates a GitLab code quality report: a JSON array of issues, each
// with the fields GitLab requires, and one of severity for rule.
func checkGitLabReport(t *testing.T, data []byte, severity, rule string) {
	t.Helper()
	var issues []map[string]any
	if err := json.Unmarshal(data, &issues); err != nil {
		t.Fatalf("gitlab report is not a JSON array: %v\n%s", err, data)
	}
	found := false
	for _, is := range issues {
		loc, _ := is["location"].(map[string]any)
		lines, _ := loc["lines"].(map[string]any)
		desc, _ := is["description"].(string)
		fp, _ := is["fingerprint"].(string)
		sev, _ := is["severity"].(string)
		check, _ := is["check_name"].(string)
		if desc == "" || fp == "" || check == "" || loc["path"] == "" || lines["begin"] == nil ||
			!slices.Contains([]string{"info", "minor", "major", "critical", "blocker"}, sev) {
			t.Errorf("gitlab issue lacks a required field or has a bad severity: %v", is)
		}
		if check == "portcullis/"+rule && sev == severity {
			found = true
		}
	}
	if !found {
		t.Errorf("gitlab report has no %s issue for %s:\n%s", severity, rule, data)
	}
}

// checkSARIF validates a SARIF 2.1.0 log's shape: one run by portcullis whose results name
// rules the driver lists, with valid levels, and one of level for rule.
func checkSARIF(t *testing.T, data []byte, level, rule string) {
	t.Helper()
	var log struct {
		Version string `json:"version"`
		Schema  string `json:"$schema"`
		Runs    []struct {
			Tool struct {
				Driver struct {
					Name  string `json:"name"`
					Rules []struct {
						ID string `json:"id"`
					} `json:"rules"`
				} `json:"driver"`
			} `json:"tool"`
			Invocations []struct {
				ExecutionSuccessful *bool `json:"executionSuccessful"`
			} `json:"invocations"`
			Results []struct {
				RuleID  string `json:"ruleId"`
				Level   string `json:"level"`
				Message struct {
					Text string `json:"text"`
				} `json:"message"`
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct {
							URI string `json:"uri"`
						} `json:"artifactLocation"`
					} `json:"physicalLocation"`
				} `json:"locations"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(data, &log); err != nil {
		t.Fatalf("sarif: %v\n%s", err, data)
	}
	if log.Version != "2.1.0" || log.Schema == "" || len(log.Runs) != 1 || log.Runs[0].Tool.Driver.Name != "portcullis" ||
		len(log.Runs[0].Invocations) != 1 || log.Runs[0].Invocations[0].ExecutionSuccessful == nil {
		t.Fatalf("sarif envelope: %s", data)
	}
	var ids []string
	for _, r := range log.Runs[0].Tool.Driver.Rules {
		ids = append(ids, r.ID)
	}
	found := false
	for _, r := range log.Runs[0].Results {
		if !slices.Contains(ids, r.RuleID) || !slices.Contains([]string{"none", "note", "warning", "error"}, r.Level) ||
			r.Message.Text == "" || len(r.Locations) != 1 || r.Locations[0].PhysicalLocation.ArtifactLocation.URI == "" {
			t.Errorf("sarif result: %+v (rules %v)", r, ids)
		}
		if r.RuleID == rule && r.Level == level {
			found = true
		}
	}
	if !found {
		t.Errorf("sarif has no %s result for %s:\n%s", level, rule, data)
	}
}

// TestCheckDoorsChooseTheEnvironment: the decision check reports is the one of the door it
// asks through, whatever Host, X-Forwarded-Host or query string the client sends.
func TestCheckDoorsChooseTheEnvironment(t *testing.T) {
	dir := t.TempDir()
	policyPath := filepath.Join(dir, "policy.yaml")
	writeFile(t, policyPath, []byte(`version: 1
environments:
  - name: ci
    hosts: ["ci.registry.example"]
  - name: dev
    repositories: ["**"]
    failMode: open
rules:
  - id: ci-versions
    type: tag
    mode: block
    environments: [ci]
    actions: [pull]
    allowed: ['^\d+\.\d+\.\d+$']
`))
	cfgPath := filepath.Join(dir, "portcullis.yaml")
	writeFile(t, cfgPath, []byte("listeners:\n  - name: ci\n    addr: 127.0.0.1:0\n    host: ci.registry.example\n"))
	gw := startGateway(t, "--config", cfgPath, "--policy", policyPath)
	ciDoor := gw.waitListening(t, "portcullis listening", "ci")

	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(gw.addr+"/team/app:main", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("push through the cluster door: %v", err)
	}
	empty := filepath.Join(dir, "docker")
	if err := os.MkdirAll(empty, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(empty, "config.json"), []byte(`{"auths":{}}`))
	run := func(door string) checkRun {
		cmd := exec.Command(gatewayBin, "check", "--insecure", "--format", "json", door+"/team/app:main")
		cmd.Env = append(cleanEnv(), "DOCKER_CONFIG="+empty, "HOME="+dir)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		_ = cmd.Run()
		return checkRun{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
	}
	for door, want := range map[string]struct {
		env, verdict string
		code         int
	}{gw.addr: {"dev", "allow", 0}, ciDoor: {"ci", "deny", 1}} {
		r := run(door)
		var rep proxy.DecisionReport
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != want.code || rep.Environment != want.env || rep.Verdict != want.verdict {
			t.Errorf("check through %s: exit %d, %+v, want %+v (%v)\nstderr: %s", door, r.code, rep, want, err, r.stderr)
		}
	}

	ask := func(query string, hdr ...string) (int, proxy.DecisionReport) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, gw.url(proxy.DecisionsPath+"team/app:main"+query), nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			if hdr[i] == "Host" {
				req.Host = hdr[i+1]
			} else {
				req.Header.Set(hdr[i], hdr[i+1])
			}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var rep proxy.DecisionReport
		_ = json.NewDecoder(resp.Body).Decode(&rep)
		return resp.StatusCode, rep
	}
	if code, rep := ask("", "Host", "ci.registry.example", "X-Forwarded-Host", "ci.registry.example"); code != http.StatusOK || rep.Environment != "dev" {
		t.Errorf("Host and X-Forwarded-Host chose the environment: %d %+v", code, rep)
	}
	for _, q := range []string{"?environment=ci", "?host=ci.registry.example", "?action=pull&door=ci"} {
		if code, _ := ask(q); code != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", q, code)
		}
	}
}
