package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// dockerEngine is the real Docker engine (scripts/client-daemons starts one with its own
// data root and socket), driven through its own client with a config directory of the
// test's own. Every image a test makes carries the label runLabel=run, so that the test
// can remove exactly its images from the shared daemon.
type dockerEngine struct {
	bin, host string
	config    string // DOCKER_CONFIG: no stored credentials, room for manifest lists
	run       string // this test's token, in every repository name and label
}

// runLabel labels every image a test builds or imports with the test's token.
const runLabel = "org.portcullis.e2e.run"

// requireDocker finds the Docker engine named by PORTCULLIS_DOCKER (the client) and
// PORTCULLIS_DOCKER_HOST (the daemon's socket). When they are unset or the daemon does not
// answer the test fails on CI (CI=true) and is skipped, loudly, elsewhere. The images the
// test makes are removed when it ends.
func requireDocker(t *testing.T) *dockerEngine {
	t.Helper()
	bin, host := os.Getenv("PORTCULLIS_DOCKER"), os.Getenv("PORTCULLIS_DOCKER_HOST")
	if bin == "" || host == "" {
		skipLoudly(t, "THE DOCKER ENGINE IS NOT CONFIGURED (PORTCULLIS_DOCKER, PORTCULLIS_DOCKER_HOST unset)")
	}
	var token [4]byte
	_, _ = rand.Read(token[:])
	d := &dockerEngine{bin: bin, host: host, config: t.TempDir(), run: "dk" + hex.EncodeToString(token[:])}
	out, err := d.try("version", "--format", "{{.Server.Version}}")
	if err != nil {
		skipLoudly(t, "THE DOCKER ENGINE AT "+host+" DOES NOT ANSWER ("+err.Error()+": "+strings.TrimSpace(out)+")")
	}
	t.Logf("Docker engine %s at %s; this test's images are labelled %s=%s", strings.TrimSpace(out), host, runLabel, d.run)
	t.Cleanup(func() { d.removeImages(t) })
	return d
}

// skipLoudly skips the test with a message that says how to get the Docker engine, or
// fails it on CI (CI=true).
func skipLoudly(t *testing.T, what string) {
	t.Helper()
	msg := "\n" + strings.Repeat("!", 78) + "\n" +
		"!!! " + what + ": this end-to-end test is NOT RUN.\n" +
		"!!! Start it with: eval \"$(scripts/client-daemons --print-env)\"\n" +
		strings.Repeat("!", 78)
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// try runs the docker client and returns what it printed (stdout then stderr) and its
// exit error. The classic builder and the experimental client commands (docker manifest)
// are enabled.
func (d *dockerEngine) try(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.bin, append([]string{"-H", d.host}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.Env = append(cleanEnv(), "DOCKER_CONFIG="+d.config, "DOCKER_BUILDKIT=0", "DOCKER_CLI_EXPERIMENTAL=enabled")
	err := cmd.Run()
	return out.String() + errOut.String(), err
}

// must runs the docker client and fails the test when it exits non-zero.
func (d *dockerEngine) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := d.try(args...)
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// refuses runs the docker client and fails the test when it exits zero; it returns what
// docker printed.
func (d *dockerEngine) refuses(t *testing.T, args ...string) string {
	t.Helper()
	out, err := d.try(args...)
	if err == nil {
		t.Fatalf("docker %s succeeded, want it refused:\n%s", strings.Join(args, " "), out)
	}
	t.Logf("docker %s prints:\n%s", strings.Join(args, " "), out)
	return out
}

// importImage makes a single-layer image holding files, tagged ref, with docker import
// (no container runs), running as user 65532.
func (d *dockerEngine) importImage(t *testing.T, ref string, files map[string][]byte) {
	t.Helper()
	layer := writeTar(t, t.TempDir(), "layer.tar", files)
	d.must(t, "import", "--change", "LABEL "+runLabel+"="+d.run, "--change", "USER 65532", layer, ref)
}

// build builds dockerfile (FROM scratch, COPY, ADD, USER and LABEL only: nothing runs)
// with the classic builder in a context holding files, for platform when not empty, and
// tags it ref.
func (d *dockerEngine) build(t *testing.T, ref, platform, dockerfile string, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, b := range files {
		writeFile(t, filepath.Join(dir, name), b)
	}
	writeFile(t, filepath.Join(dir, "Dockerfile"), []byte(dockerfile+"\nLABEL "+runLabel+"="+d.run+"\n"))
	args := []string{"build", "-t", ref}
	if platform != "" {
		args = append(args, "--platform", platform)
	}
	return d.must(t, append(args, dir)...)
}

// digestOf is the repository digest docker printed for a push ("TAG: digest: sha256:…
// size: N") or a pull ("Digest: sha256:…"); "" when it printed none.
func digestOf(out string) string {
	for _, line := range strings.Split(out, "\n") {
		for _, marker := range []string{"digest: ", "Digest: "} {
			if _, rest, ok := strings.Cut(line, marker); ok {
				return strings.Fields(rest)[0]
			}
		}
	}
	return ""
}

// removeImages removes every image of this test from the daemon: those labelled with its
// token and those in its repositories (a pull by digest has no tag).
func (d *dockerEngine) removeImages(t *testing.T) {
	ids := map[string]bool{}
	labelled, err := d.try("images", "--all", "--quiet", "--no-trunc", "--filter", "label="+runLabel+"="+d.run)
	named, err2 := d.try("images", "--all", "--no-trunc", "--format", "{{.ID}} {{.Repository}}")
	if err != nil || err2 != nil {
		t.Errorf("listing the docker images to remove: %v %v\n%s\n%s", err, err2, labelled, named)
		return
	}
	for _, id := range strings.Fields(labelled) {
		ids[id] = true
	}
	for _, line := range strings.Split(named, "\n") {
		if f := strings.Fields(line); len(f) == 2 && strings.Contains(f[1], d.run) {
			ids[f[0]] = true
		}
	}
	for id := range ids {
		if out, err := d.try("rmi", "--force", id); err != nil && !strings.Contains(out, "No such image") {
			t.Errorf("docker rmi -f %s: %v\n%s", id, err, out)
		}
	}
	if out, err := d.try("image", "prune", "--force", "--filter", "label="+runLabel+"="+d.run); err != nil {
		t.Errorf("docker image prune: %v\n%s", err, out)
	}
	if out, _ := d.try("images", "--all", "--quiet", "--filter", "label="+runLabel+"="+d.run); strings.TrimSpace(out) != "" {
		t.Errorf("images of this test left in the daemon after the cleanup:\n%s", out)
	}
}
