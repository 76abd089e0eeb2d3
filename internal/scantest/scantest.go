package scantest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// VulnerableGoBinary builds a Go program that uses golang.org/x/text v0.3.5, which has real
// advisories (GO-2021-0113 fixed in 0.3.7, GO-2022-1059 fixed in 0.3.8). The module comes
// from the Go module proxy (or the module cache).
func VulnerableGoBinary(tb testing.TB) []byte {
	tb.Helper()
	dir := tb.TempDir()
	files := map[string]string{
		"go.mod":  "module example.com/vuln\n\ngo 1.22\n\nrequire golang.org/x/text v0.3.5\n",
		"main.go": "package main\n\nimport (\n\t\"fmt\"\n\n\t\"golang.org/x/text/language\"\n)\n\nfunc main() { fmt.Println(language.English) }\n",
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	cmd := exec.Command("go", "build", "-trimpath", "-o", "app", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod", "GOWORK=off", "GOTOOLCHAIN=local", "GOSUMDB=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("building the vulnerable program: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "app"))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
