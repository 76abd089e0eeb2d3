package scantest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// GoProgram is a Go program built against pinned module versions: a main package that
// imports (blank) one package of each module it requires, so that every required module
// is compiled in and recorded in the binary's build information.
type GoProgram struct {
	// Name names the program and its binary.
	Name string
	// Require maps module path to the version the program requires.
	Require map[string]string
	// Replace maps a required module path to the module "path version" it is replaced by
	// (a go.mod replace directive).
	Replace map[string]string
	// Imports are the packages main imports.
	Imports []string
}

// AdvisoryPrograms are Go programs built against module versions with real advisories in
// the Go vulnerability database: golang.org/x/text v0.3.5 (GO-2021-0113, GO-2022-1059),
// golang.org/x/net v0.10.0 (HTTP/2 and html advisories, and x/text v0.9.0 through it),
// golang.org/x/crypto v0.30.0 (GO-2024-3321 and later ssh advisories), an x/crypto
// pseudo-version from 2020 with gopkg.in/yaml.v2 v2.2.2, and x/text replaced by
// v0.3.6 with a replace directive. Each is built by the local toolchain, so each also
// carries the local standard library.
func AdvisoryPrograms() []GoProgram {
	return []GoProgram{
		{
			Name:    "xtext",
			Require: map[string]string{"golang.org/x/text": "v0.3.5"},
			Imports: []string{"golang.org/x/text/language"},
		},
		{
			Name:    "xnet",
			Require: map[string]string{"golang.org/x/net": "v0.10.0"},
			Imports: []string{"golang.org/x/net/http2", "golang.org/x/net/html"},
		},
		{
			Name:    "xcrypto",
			Require: map[string]string{"golang.org/x/crypto": "v0.30.0"},
			Imports: []string{"golang.org/x/crypto/ssh"},
		},
		{
			Name: "pseudo",
			Require: map[string]string{
				"golang.org/x/crypto": "v0.0.0-20201216223049-8b5274cf687f",
				"gopkg.in/yaml.v2":    "v2.2.2",
			},
			Imports: []string{"golang.org/x/crypto/ssh", "gopkg.in/yaml.v2"},
		},
		{
			Name:    "replaced",
			Require: map[string]string{"golang.org/x/text": "v0.3.0"},
			Replace: map[string]string{"golang.org/x/text": "golang.org/x/text v0.3.6"},
			Imports: []string{"golang.org/x/text/language"},
		},
	}
}

// BuildGoProgram builds p with the local Go toolchain (GOTOOLCHAIN=local, CGO_ENABLED=0,
// -trimpath) and returns the binary's path. The required modules are downloaded first
// through GOPROXY (or found in the module cache); when that fails the test is skipped,
// loudly, or failed when the CI environment variable is "true". A build failure after
// that fails the test.
func BuildGoProgram(tb testing.TB, p GoProgram) string {
	tb.Helper()
	var mods []string
	for m, v := range p.Require {
		mods = append(mods, m+"@"+v)
	}
	for _, r := range p.Replace {
		mods = append(mods, strings.Replace(r, " ", "@", 1))
	}
	sort.Strings(mods)
	download := exec.Command("go", append([]string{"mod", "download", "-json"}, mods...)...)
	download.Dir = os.TempDir() // outside any module: no go.mod is read or changed
	download.Env = append(os.Environ(), "GOTOOLCHAIN=local", "GOFLAGS=")
	if out, err := download.Output(); err != nil {
		msg := fmt.Sprintf("GO MODULES UNAVAILABLE: go mod download %s failed: %v", strings.Join(mods, " "), err)
		var info struct{ Error string }
		for dec := json.NewDecoder(strings.NewReader(string(out))); dec.Decode(&info) == nil; {
			if info.Error != "" {
				msg += "; " + info.Error
			}
		}
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}

	dir := filepath.Join(tb.TempDir(), p.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	var gomod strings.Builder
	fmt.Fprintf(&gomod, "module example.com/%s\n\ngo 1.22\n\nrequire (\n", p.Name)
	for _, m := range sortedKeys(p.Require) {
		fmt.Fprintf(&gomod, "\t%s %s\n", m, p.Require[m])
	}
	gomod.WriteString(")\n")
	for _, m := range sortedKeys(p.Replace) {
		fmt.Fprintf(&gomod, "\nreplace %s => %s\n", m, p.Replace[m])
	}
	var src strings.Builder
	src.WriteString("package main\n\nimport (\n")
	for _, imp := range p.Imports {
		fmt.Fprintf(&src, "\t_ %q\n", imp)
	}
	src.WriteString(")\n\nfunc main() {}\n")
	for n, c := range map[string]string{"go.mod": gomod.String(), "main.go": src.String()} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	cmd := exec.Command("go", "build", "-trimpath", "-o", p.Name, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod", "GOWORK=off", "GOTOOLCHAIN=local", "GOSUMDB=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("building %s: %v\n%s\ngo.mod:\n%s", p.Name, err, out, gomod.String())
	}
	return filepath.Join(dir, p.Name)
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
