package e2e

import (
	"context"
	"crypto/elliptic"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/portcullis-dev/portcullis/internal/regtest"
)

// TestMirrorMemoryIsFlat collects and imports a small and a four times larger image with
// the real commands and compares the peak resident memory of each process: streaming
// keeps it independent of the size. Each image has two layers of a quarter and three
// quarters of its size (ChaCha8, one in four bytes compressible text), generated from a
// seed while they are uploaded, never held in memory; the layers grow with the image, so
// a command that held a whole layer, or the bundle, would grow by hundreds of MiB between
// the runs.
//
// Sizes: 512 MiB and 2 GiB, or $PORTCULLIS_MEMTEST_MIB and four times that. The larger
// run needs about 8 times its size on the temporary directory's disk (source registry,
// bundle, extracted layout, target registry, each held until the test ends); with less
// free space the test scales the sizes down and says so.
func TestMirrorMemoryIsFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("moves several GiB through real registries; skipped with -short")
	}
	small := int64(512)
	if s := os.Getenv("PORTCULLIS_MEMTEST_MIB"); s != "" {
		if _, err := fmt.Sscan(s, &small); err != nil || small < 16 {
			t.Fatalf("PORTCULLIS_MEMTEST_MIB=%q: want a size in MiB, at least 16", s)
		}
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(os.TempDir(), &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * int64(st.Bsize) >> 20
	for small > 16 && 10*(small+4*small) > free { // both runs, with room to spare
		small /= 2
		t.Logf("only %d MiB free in %s: scaling the runs down to %d and %d MiB", free, os.TempDir(), small, 4*small)
	}
	smallRun := mirrorMemoryRun(t, small<<20)
	largeRun := mirrorMemoryRun(t, 4*small<<20)
	for _, cmd := range []string{"collect", "import"} {
		s, l := smallRun[cmd], largeRun[cmd]
		t.Logf("%s: peak RSS %.1f MiB moving %d MiB, %.1f MiB moving %d MiB (×%.2f)", cmd, mib(s), small, mib(l), 4*small, float64(l)/float64(s))
		// Four times the bytes may cost a little more memory (GC pacing, buffers), never
		// a share of the size: the larger run's smaller layer alone is `small` MiB.
		if l > s*5/4+16<<20 {
			t.Errorf("%s: peak RSS grew from %.1f MiB to %.1f MiB when the content grew from %d to %d MiB: it is not streamed in bounded memory", cmd, mib(s), mib(l), small, 4*small)
		}
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// mirrorMemoryRun pushes an image of size bytes to a fresh registry, collects it into a
// bundle and imports that through a gateway into another registry, and returns the peak
// RSS in bytes of the collect and import processes.
func mirrorMemoryRun(t *testing.T, size int64) map[string]int64 {
	dir := t.TempDir()
	src := strings.TrimPrefix(regtest.Registry(t), "http://")
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	var layers []v1.Layer
	for i, quarters := range []int64{1, 3} { // a quarter of text, three of random bytes
		layers = append(layers, newGenLayer(t, uint64(size)+uint64(i), size*quarters/4, i == 0))
	}
	img, err := mutate.AppendLayers(img, layers...)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(src+"/big/image:1.0.0", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	keyFile, pubFile, mirrorFile := filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub"), filepath.Join(dir, "mirror.yaml")
	priv, pub, err := cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), func(bool) ([]byte, error) { return []byte("pw"), nil })
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, keyFile, priv)
	writeFile(t, pubFile, pub)
	writeFile(t, mirrorFile, []byte("version: 1\nsources:\n  - registry: "+src+"\n    repositories:\n      - {name: big/image, tags: [\"1.0.0\"]}\n"))
	bundle := filepath.Join(dir, "bundle")
	peak := map[string]int64{}
	peak["collect"] = peakRSS(t, []string{"COSIGN_PASSWORD=pw"}, "mirror", "collect", "--file", mirrorFile, "--out", bundle, "--key", keyFile)

	target := regtest.Registry(t)
	policyPath := filepath.Join(dir, "policy.yaml")
	writeFile(t, policyPath, []byte(mbenchPolicy))
	gw := startGateway(t, "--policy", policyPath, "--upstream", target, "--data-dir", filepath.Join(dir, "data"))
	work := filepath.Join(dir, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	peak["import"] = peakRSS(t, nil, "mirror", "import", "--bundle", bundle, "--key", pubFile, "--gateway", "http://"+gw.addr,
		"--journal", filepath.Join(dir, "journal.jsonl"), "--workdir", work)
	mapped := "mirror/" + strings.ReplaceAll(src, ":", "_") + "/big/image:1.0.0"
	if got := tagDigest(t, target, mapped); got != want.String() {
		t.Fatalf("after the import %s is %q, want %s", mapped, got, want)
	}
	return peak
}

// peakRSS runs the portcullis binary to success and returns its peak resident set size:
// the kernel's high-water mark (VmHWM) of the process, read every 10 ms while it runs.
// (The rusage of the finished child is no use: it counts the RSS of this test process,
// whose memory the child shared between fork and exec.)
func peakRSS(t *testing.T, env []string, args ...string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gatewayBin, args...)
	cmd.Env = append(cleanEnv(), env...)
	var out lastLines
	out.w = &strings.Builder{}
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var peak int64
	status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				s := out.String()
				if len(s) > 4000 {
					s = s[len(s)-4000:]
				}
				t.Fatalf("portcullis %s: %v\n%s", strings.Join(args, " "), err, s)
			}
			if peak == 0 {
				t.Fatalf("portcullis %s: no memory reading", args[0])
			}
			return peak
		case <-tick.C:
			if hwm := vmHWM(status); hwm > peak {
				peak = hwm
			}
		}
	}
}

// vmHWM reads the peak resident set size in bytes from a /proc/<pid>/status file; 0 when
// it cannot (the process has gone).
func vmHWM(path string) int64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kib int64
			if _, err := fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kib); err == nil {
				return kib << 10
			}
		}
	}
	return 0
}
