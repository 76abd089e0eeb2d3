package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runPolicyCmd runs runPolicy and returns exit status, stdout and stderr.
func runPolicyCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := runPolicy(args, &out, &errb)
	return code, out.String(), errb.String()
}

func writePolicyFile(t *testing.T, name, src string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPolicyLint(t *testing.T) {
	good := writePolicyFile(t, "good.yaml", "version: 1\nrules:\n  - {id: a, type: tag, mode: block, forbidden: [latest]}\n")
	bad := writePolicyFile(t, "bad.yaml", "version: 1\nrules:\n  - {id: a, type: tag, mode: blok, forbidden: [latest], enforceFrom: soon}\n")

	code, out, _ := runPolicyCmd("lint", good)
	if code != 0 || out != good+": ok (0 environments, 1 rules)\n" {
		t.Errorf("valid: %d %q", code, out)
	}
	code, out, _ = runPolicyCmd("lint", good, bad)
	want := good + ": ok (0 environments, 1 rules)\n" +
		bad + `: rules[0].mode: unknown mode "blok" (want off, observe, warn, block)` + "\n" +
		bad + `: rules[0].enforceFrom: not a date (want YYYY-MM-DD), got "soon"` + "\n"
	if code != 1 || out != want {
		t.Errorf("invalid: %d\n%s\nwant\n%s", code, out, want)
	}
	code, out, _ = runPolicyCmd("lint", filepath.Join(t.TempDir(), "missing.yaml"))
	if code != 1 || !strings.Contains(out, "no such file") {
		t.Errorf("missing: %d %q", code, out)
	}
	code, out, _ = runPolicyCmd("lint", "--output", "json", bad)
	var res []struct {
		File     string
		Valid    bool
		Problems []struct{ Path, Message string }
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 1 || len(res) != 1 || res[0].Valid || len(res[0].Problems) != 2 || res[0].Problems[0].Path != "rules[0].mode" {
		t.Errorf("json: %d %v %s", code, err, out)
	}
	if code, _, errs := runPolicyCmd("lint"); code != 2 || !strings.Contains(errs, "no FILE given") {
		t.Errorf("no files: %d %q", code, errs)
	}
	if code, _, _ := runPolicyCmd("lint", "--bogus", good); code != 2 {
		t.Errorf("bad flag: %d", code)
	}
}

func TestPolicyHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"lint", "-h"}, {"explain", "-h"}, {"explain", "--help"}} {
		code, out, _ := runPolicyCmd(args...)
		if code != 0 || !strings.Contains(out, "Usage:") {
			t.Errorf("%v: %d %q", args, code, out)
		}
		if args[0] != "-h" && !strings.Contains(out, "Example:") {
			t.Errorf("%v: help without an example", args)
		}
	}
	if code, _, _ := runPolicyCmd(); code != 2 {
		t.Errorf("no command: %d", code)
	}
	if code, _, _ := runPolicyCmd("frobnicate"); code != 2 {
		t.Errorf("unknown command: %d", code)
	}
}

func TestPolicyExplain(t *testing.T) {
	code, out, errs := runPolicyCmd("explain", "--action", "push", "--now", "2026-12-15", "prod/app:latest")
	if code != 0 || !strings.Contains(out, "environment:  prod") || !strings.Contains(out, "verdict:      deny") ||
		!strings.Contains(out, `denied by policy (environment prod): [no-latest] tag "latest" is forbidden in environment prod`) {
		t.Errorf("table: %d\n%s\n%s", code, out, errs)
	}
	// Flags may follow the reference.
	code, out, _ = runPolicyCmd("explain", "team/app:1.0.0", "--action", "pull", "--policy", "observe", "--output", "json")
	var x struct {
		Environment string
		Verdict     string
		Rules       []struct{ Rule, EffectiveMode string }
	}
	if err := json.Unmarshal([]byte(out), &x); err != nil || code != 0 || x.Environment != "dev" || x.Verdict != "allow" || x.Rules[0].EffectiveMode != "observe" {
		t.Errorf("json: %d %v %s", code, err, out)
	}
	host := writePolicyFile(t, "host.yaml", `version: 1
environments:
  - {name: edge, hosts: [edge.example]}
rules:
  - {id: pinned, type: tag, mode: block, requireDigest: true, environments: [edge]}
`)
	code, out, _ = runPolicyCmd("explain", "--policy", host, "--action", "pull", "--host", "edge.example:443", "app@sha256:"+strings.Repeat("a", 64))
	if code != 0 || !strings.Contains(out, "environment:  edge") || !strings.Contains(out, "verdict:      allow") {
		t.Errorf("host: %d\n%s", code, out)
	}
	owned := writePolicyFile(t, "owned.yaml", `version: 1
environments:
  - {name: prod, repositories: ["payments/**"], unscanned: {wait: 20s, then: retry}}
services:
  - {name: payments-api, repositories: ["payments/api"], team: payments, tier: critical, contact: "#payments-oncall"}
rules:
  - {id: no-latest, type: tag, mode: block, forbidden: [latest]}
`)
	code, out, _ = runPolicyCmd("explain", "--policy", owned, "--action", "pull", "payments/api:1.0.0")
	if code != 0 || !strings.Contains(out, "unscanned pulls:  wait up to 20s for the scan, then retry") ||
		!strings.Contains(out, "service:          Owned by team payments (service payments-api, tier critical); contact #payments-oncall") {
		t.Errorf("service and unscanned: %d\n%s", code, out)
	}
	bad := writePolicyFile(t, "bad.yaml", "version: 3\n")
	if code, _, errs := runPolicyCmd("explain", "--policy", bad, "--action", "pull", "app:1"); code != 1 || errs != bad+`: version: unsupported version "3" (want 1)`+"\n" {
		t.Errorf("invalid policy: %d %q", code, errs)
	}
	for _, args := range [][]string{
		{"explain", "app:1"},                                    // no action
		{"explain", "--action", "delete", "app:1"},              // bad action
		{"explain", "--action", "push"},                         // no ref
		{"explain", "--action", "push", "a:1", "b:1"},           // two refs
		{"explain", "--action", "push", "--now", "soon", "a:1"}, // bad date
		{"explain", "--action", "push", "--output", "xml", "a:1"},
		{"explain", "--action", "push", "registry.example:5000/app:1"},
	} {
		if code, _, errs := runPolicyCmd(args...); code != 2 || errs == "" {
			t.Errorf("%v: %d %q", args, code, errs)
		}
	}
}

func TestParsePolicyRef(t *testing.T) {
	d := "sha256:" + strings.Repeat("0a", 32)
	tests := []struct {
		ref, repo, tag, digest, err string
	}{
		{"app", "app", "", "", ""},
		{"app:1.0", "app", "1.0", "", ""},
		{"team/sub/app:v1.2.3-rc_1", "team/sub/app", "v1.2.3-rc_1", "", ""},
		{"team/app@" + d, "team/app", "", d, ""},
		{"team/app:1.0@" + d, "team/app", "1.0", d, ""},
		{"my.team/app:1", "", "", "", `looks like a registry host`},
		{"localhost/app", "", "", "", `looks like a registry host`},
		{"registry.example:5000/app", "", "", "", `looks like a registry host`},
		{"a.b", "a.b", "", "", ""},
		{"Team/app", "", "", "", "invalid repository"},
		{"team//app", "", "", "", "invalid repository"},
		{"/app", "", "", "", "invalid repository"},
		{"app/", "", "", "", "invalid repository"},
		{":1.0", "", "", "", "no repository"},
		{"app:", "", "", "", "invalid tag"},
		{"app:-x", "", "", "", "invalid tag"},
		{"app@sha256:abc", "", "", "", "sha256 wants 64"},
		{"app@nope", "", "", "", "invalid digest"},
		{"app@", "", "", "", "invalid digest"},
		{"", "", "", "", "no repository"},
	}
	for _, tt := range tests {
		repo, tag, digest, err := parsePolicyRef(tt.ref)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parsePolicyRef(%q) error = %v, want %q", tt.ref, err, tt.err)
			}
			continue
		}
		if err != nil || repo != tt.repo || tag != tt.tag || digest != tt.digest {
			t.Errorf("parsePolicyRef(%q) = %q %q %q %v", tt.ref, repo, tag, digest, err)
		}
	}
}

// writeKeyPolicy writes, in a fresh directory, keys/release.pub (a new
// ECDSA P-256 public key) and policy.yaml with src; it returns the policy
// path.
func writeKeyPolicy(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "keys"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "keys", "release.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const keyPolicy = `version: 1
authorities:
  - name: release
    keyFile: keys/release.pub
    signCommand: "cosign sign --key k8s://ci/release-key"
environments:
  - {name: prod, repositories: ["prod/**"]}
rules:
  - {id: prod-signed, type: signature, mode: block, environments: [prod], authorities: [release]}
`

func TestPolicyLintReadsKeyFilesNextToThePolicy(t *testing.T) {
	// The working directory is not the policy's: keys/release.pub must be
	// found relative to the policy file.
	path := writeKeyPolicy(t, keyPolicy)
	code, out, errs := runPolicyCmd("lint", path)
	if code != 0 || out != path+": ok (1 environments, 1 rules, 1 authority)\n" {
		t.Errorf("lint: %d %q %q", code, out, errs)
	}
	missing := writeKeyPolicy(t, strings.Replace(keyPolicy, "keys/release.pub", "keys/missing.pub", 1))
	code, out, _ = runPolicyCmd("lint", missing)
	if want := missing + ": authorities[0].keyFile: reading keys/missing.pub: no such file or directory\n"; code != 1 || out != want {
		t.Errorf("missing key file: %d %q, want %q", code, out, want)
	}
	abs := writeKeyPolicy(t, strings.Replace(keyPolicy, "keys/release.pub", filepath.Join(filepath.Dir(path), "keys", "release.pub"), 1))
	if code, out, _ := runPolicyCmd("lint", abs); code != 0 {
		t.Errorf("absolute key file: %d %q", code, out)
	}
	huge := writeKeyPolicy(t, strings.Replace(keyPolicy, "keys/release.pub", "keys/huge.pub", 1))
	if err := os.WriteFile(filepath.Join(filepath.Dir(huge), "keys", "huge.pub"), bytes.Repeat([]byte("A"), 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runPolicyCmd("lint", huge)
	if want := huge + ": authorities[0].keyFile: reading keys/huge.pub: larger than 64 KiB; a public key is a few hundred bytes\n"; code != 1 || out != want {
		t.Errorf("huge key file: %d %q, want %q", code, out, want)
	}
}

func TestPolicyExplainSignatureRule(t *testing.T) {
	path := writeKeyPolicy(t, keyPolicy)
	d := "sha256:" + strings.Repeat("a", 64)
	code, out, errs := runPolicyCmd("explain", "--policy", path, "--action", "pull", "--host", "gw.example", "prod/app@"+d)
	for _, want := range []string{
		"verdict:      deny",
		"prod-signed  signature  signed by release",
		"assumes the image is unsigned: only the gateway reads and verifies signatures",
		"authorities:\n  release  keyFile keys/release.pub  sign with: cosign sign --key k8s://ci/release-key\n",
		"denied by policy (environment prod): [prod-signed] requires a signature by release; found no signature: sign it with release: cosign sign --key k8s://ci/release-key gw.example/prod/app@" + d,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("explain output lacks %q:\n%s\n%s", want, out, errs)
		}
	}
	if code != 0 {
		t.Errorf("exit %d", code)
	}
	// Pushes are not subject to signature rules.
	code, out, _ = runPolicyCmd("explain", "--policy", path, "--action", "push", "prod/app:1.0.0")
	if code != 0 || !strings.Contains(out, "verdict:      allow") || !strings.Contains(out, "action push is not one of [pull]") {
		t.Errorf("push: %d\n%s", code, out)
	}
}

// TestPolicyExplainBuiltinsWithoutContent: the built-in observe policy allows a prod push
// and pull (as the gateway does without a vulnerability database); starter denies the prod
// push and says what it assumed about the image's content.
func TestPolicyExplainBuiltinsWithoutContent(t *testing.T) {
	for _, tt := range []struct {
		policy, action, want string
	}{
		{"observe", "push", "verdict:      allow"},
		{"observe", "pull", "verdict:      allow"},
		{"starter", "push", "verdict:      deny"},
	} {
		code, out, stderr := runPolicyCmd("explain", "--policy", tt.policy, "--action", tt.action, "--now", "2026-12-01", "prod/payments/api:1.4.2")
		if code != 0 || !strings.Contains(out, tt.want) || !strings.Contains(out, "assumes:      the image's content could not be checked") {
			t.Errorf("%s %s: exit %d, want %q and what it assumed about the content:\n%s%s", tt.policy, tt.action, code, tt.want, out, stderr)
		}
	}
}
