package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// installHints says how to get each client the tests drive.
var installHints = map[string]string{
	"crane":        "GOBIN=$HOME/.cache/portcullis-tools/bin go install github.com/google/go-containerregistry/cmd/crane@v0.22.1",
	"cosign":       "GOBIN=$HOME/.cache/portcullis-tools/bin go install github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5 (or run .ci/run's tool step)",
	"skopeo":       "apt-get update && apt-get install -y skopeo",
	"redis-server": "apt-get update && apt-get install -y redis-server",
}

// requireTool finds a client in $PORTCULLIS_TOOLS/bin, $HOME/.cache/portcullis-tools/bin
// or PATH. When it is missing the test fails on CI (CI=true) and is skipped, loudly,
// elsewhere.
func requireTool(t testing.TB, name string) string {
	t.Helper()
	var dirs []string
	if d := os.Getenv("PORTCULLIS_TOOLS"); d != "" {
		dirs = append(dirs, filepath.Join(d, "bin"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, ".cache", "portcullis-tools", "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	msg := "\n" + strings.Repeat("!", 78) + "\n" +
		"!!! " + name + " NOT FOUND: this end-to-end test needs it and is NOT RUN.\n" +
		"!!! Install it with: " + installHints[name] + "\n" +
		"!!! (looked in " + strings.Join(dirs, ", ") + " and PATH)\n" +
		strings.Repeat("!", 78)
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// toolTimeout bounds one client invocation, against hangs.
const toolTimeout = 2 * time.Minute

// runTool runs a client and returns its stdout and stderr; a non-zero exit fails the test.
func runTool(t *testing.T, bin string, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, err := tryTool(bin, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(bin), strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout, stderr
}

// tryTool runs a client and returns its output and exit error.
func tryTool(bin string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+os.DevNull+".none") // no stored credentials
	err = cmd.Run()
	return o.String(), e.String(), err
}
