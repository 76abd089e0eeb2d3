package e2e

import (
	"bufio"
	"bytes"
	"crypto/elliptic"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/portcullis-dev/portcullis/internal/cosigntest"
	"github.com/portcullis-dev/portcullis/internal/regtest"
)

// TestMirrorImportUnderPolicy carries a signed and an unsigned image from one registry to
// another with nothing between them but the bundle on disk, and imports it through a
// gateway whose policy requires the release key's signature under mirror/**: the signed
// image is pulled back through the gateway by tag, the unsigned one stays by digest only
// and is named in the report. A tampered bundle imports nothing, an import killed half-way
// resumes, and a third run sends no write to the registry.
func TestMirrorImportUnderPolicy(t *testing.T) {
	crane := requireTool(t, "crane")
	dir := t.TempDir()
	release := cosigntest.NewKey(t)

	// Connected side: a signed and an unsigned image.
	src := regtest.Registry(t)
	srcHost := strings.TrimPrefix(src, "http://")
	push := func(repoTag string) string {
		img, err := random.Image(2048, 2)
		if err != nil {
			t.Fatal(err)
		}
		d, _ := regtest.WriteImage(t, src, repoTag, img)
		return d
	}
	signed, unsigned, drifted := push("team/signed:1.0.0"), push("team/unsigned:1.0.0"), push("team/drifted:1.0.0")
	cosigntest.SignLegacy(t, srcHost, "team/signed", signed, release)
	cosigntest.SignLegacy(t, srcHost, "team/drifted", drifted, release)

	keyFile, pubFile := bundleKey(t, dir)
	mirrorFile := filepath.Join(dir, "mirror.yaml")
	writeFile(t, mirrorFile, []byte("version: 1\nsources:\n  - registry: "+srcHost+"\n    repositories:\n"+
		"      - {name: team/signed, tags: [\"1.0.0\"]}\n      - {name: team/unsigned, tags: [\"1.0.0\"]}\n"+
		"      - {name: team/drifted, tags: [\"1.0.0\"]}\n"))
	bundle := filepath.Join(dir, "bundle")
	portcullis(t, 0, []string{"COSIGN_PASSWORD=pw"}, "mirror", "collect", "--file", mirrorFile, "--out", bundle, "--key", keyFile, "--chunk-size", "1MiB")

	// Disconnected side: another registry, writes to it counted, a gateway in front.
	target := regtest.Registry(t)
	var writes, holdAfter atomic.Int64 // holdAfter > 0: writes past it wait for held
	held := make(chan struct{})
	tu, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(tu)
	counter := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if n, h := writes.Add(1), holdAfter.Load(); h > 0 && n > h {
				select {
				case <-held:
				case <-r.Context().Done():
					return
				}
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(counter.Close)
	policyPath := mirrorPolicy(t, dir, release)
	gw := startGateway(t, "--policy", policyPath, "--upstream", counter.URL, "--data-dir", filepath.Join(dir, "data"))
	mapped := "mirror/" + strings.ReplaceAll(srcHost, ":", "_") + "/team/"
	// On-prem, drifted:1.0.0 already names another (unsigned) image, which the gateway
	// refuses to serve: the import cannot even see where the tag points.
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	onPrem, _ := regtest.WriteImage(t, target, mapped+"drifted:1.0.0", img)
	written := writes.Load()
	journal, report := filepath.Join(dir, "journal.jsonl"), filepath.Join(dir, "report.json")
	importArgs := []string{"mirror", "import", "--bundle", bundle, "--key", pubFile, "--gateway", "http://" + gw.addr, "--journal", journal, "--report", report}

	// A tampered bundle imports nothing.
	bad := filepath.Join(dir, "bad")
	if err := os.MkdirAll(bad, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(bundle)
	for _, e := range entries {
		b := readFile(t, filepath.Join(bundle, e.Name()))
		if e.Name() == "bundle.tar.zst.0000" {
			b[len(b)/3] ^= 0x40
		}
		writeFile(t, filepath.Join(bad, e.Name()), b)
	}
	out := portcullis(t, 1, nil, "mirror", "import", "--bundle", bad, "--key", pubFile, "--gateway", "http://"+gw.addr, "--journal", filepath.Join(dir, "bad.jsonl"))
	if !strings.Contains(out, "nothing imported") || writes.Load() != written {
		t.Fatalf("tampered bundle: %d writes upstream; output:\n%s", writes.Load()-written, out)
	}

	// Killed half-way, then resumed: the registry holds every write after the first twelve
	// (so the import cannot run ahead and finish), and the importer is killed once it has
	// journalled a step. Twelve: a blob upload is three writes (POST, PATCH, PUT) and the
	// import pushes up to four blobs at once, so twelve writes finish at least one blob.
	holdAfter.Store(writes.Load() + 12)
	cmd := exec.Command(gatewayBin, importArgs...)
	cmd.Env = cleanEnv()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	steps := 0
	sc := bufio.NewScanner(stderr)
	for sc.Scan() && steps < 1 {
		var e struct{ Phase string }
		if json.Unmarshal(sc.Bytes(), &e) == nil && (e.Phase == "blob" || e.Phase == "manifest") {
			steps++
		}
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	holdAfter.Store(0)
	close(held)
	if steps < 1 {
		t.Fatalf("the import ended after %d steps, before it could be killed", steps)
	}
	killedAt := bytes.Count(readFile(t, journal), []byte("\n"))
	out = portcullis(t, 3, nil, importArgs...)
	if total := bytes.Count(readFile(t, journal), []byte("\n")); killedAt < 1 || killedAt >= total {
		t.Fatalf("journal: %d steps when killed, %d after the resumed run", killedAt, total)
	}
	var rep struct {
		Images []struct{ Name, Tag, Digest, Verdict, Message string }
	}
	if err := json.Unmarshal(readFile(t, report), &rep); err != nil {
		t.Fatal(err)
	}
	verdicts := map[string]string{}
	for _, r := range rep.Images {
		verdicts[r.Name] = r.Verdict
		if r.Name == mapped+"unsigned" && (!strings.Contains(r.Message, "mirror-signed") || r.Digest != unsigned) {
			t.Errorf("the report on the unsigned image does not name the rule: %+v", r)
		}
		if r.Name == mapped+"drifted" && !strings.Contains(r.Message, "immutable-tags") {
			t.Errorf("the report on the drifted tag does not give the gateway's refusal: %+v", r)
		}
	}
	if verdicts[mapped+"signed"] != "allow" || verdicts[mapped+"unsigned"] != "deny" || verdicts[mapped+"drifted"] != "drift" {
		t.Fatalf("verdicts %v\n%s", verdicts, out)
	}

	// The signed image is pulled back through the gateway by tag; the unsigned one's tag
	// does not exist, its manifest is held by digest (quarantine).
	got := craneOut(t, crane, "digest", "--insecure", gw.addr+"/"+mapped+"signed:1.0.0")
	if strings.TrimSpace(got) != signed {
		t.Fatalf("pulled %q through the gateway, want %s", got, signed)
	}
	if tagDigest(t, target, mapped+"unsigned:1.0.0") != "" {
		t.Fatal("the unsigned image's tag was published")
	}
	if tagDigest(t, target, mapped+"unsigned@"+unsigned) != unsigned {
		t.Fatal("the unsigned image is not held by digest")
	}

	if tagDigest(t, target, mapped+"drifted:1.0.0") != onPrem {
		t.Fatal("the drifted tag was moved")
	}

	// A third run changes nothing.
	lines, before := bytes.Count(readFile(t, journal), []byte("\n")), writes.Load()
	portcullis(t, 3, nil, importArgs...)
	if writes.Load() != before || bytes.Count(readFile(t, journal), []byte("\n")) != lines {
		t.Fatalf("third run: %d writes upstream, journal %d lines → %d", writes.Load()-before, lines, bytes.Count(readFile(t, journal), []byte("\n")))
	}
}

// portcullis runs the binary with args and wants exit status want; it returns stdout and
// stderr together.
func portcullis(t *testing.T, want int, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(gatewayBin, args...)
	cmd.Env = append(cleanEnv(), env...)
	out, err := cmd.CombinedOutput()
	if got := cmd.ProcessState.ExitCode(); got != want {
		t.Fatalf("portcullis %v: exit %d (%v), want %d\n%s", args, got, err, want, out)
	}
	return string(out)
}

func craneOut(t *testing.T, crane string, args ...string) string {
	t.Helper()
	out, err := exec.Command(crane, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("crane %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// tagDigest reads ref (repo:tag or repo@digest) straight from the registry at reg, ""
// when it is absent.
func tagDigest(t *testing.T, reg, ref string) string {
	t.Helper()
	r, err := name.ParseReference(strings.TrimPrefix(reg, "http://")+"/"+ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Head(r)
	if err != nil {
		return ""
	}
	return d.Digest.String()
}

// mirrorPolicy writes the import side's policy into dir: under mirror/** images need the
// release key's signature (fail closed), everywhere tags are immutable.
func mirrorPolicy(t *testing.T, dir string, release cosigntest.Key) string {
	t.Helper()
	path := filepath.Join(dir, "policy.yaml")
	writeFile(t, path, []byte(`version: 1
exceptionProcess: "ask the platform team"
authorities:
`+release.AuthorityYAML(t, "release")+`environments:
  - name: mirror
    repositories: ["mirror/**"]
    failMode: closed
  - name: dev
    repositories: ["**"]
rules:
  - {id: immutable-tags, type: immutable, mode: block}
  - {id: mirror-signed, type: signature, mode: block, environments: [mirror], authorities: [release]}
`))
	return path
}

// bundleKey writes a cosign-format key pair for signing bundles into dir (private key
// encrypted with the password "pw", which the tests pass as COSIGN_PASSWORD) and returns
// the two files' paths.
func bundleKey(tb testing.TB, dir string) (keyFile, pubFile string) {
	tb.Helper()
	priv, pub, err := cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), func(bool) ([]byte, error) { return []byte("pw"), nil })
	if err != nil {
		tb.Fatal(err)
	}
	keyFile, pubFile = filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub")
	writeFile(tb, keyFile, priv)
	writeFile(tb, pubFile, pub)
	return keyFile, pubFile
}
