package loadgen

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/embedded"
)

// startRegistry serves a real distribution registry in process for the test.
func startRegistry(t *testing.T) string {
	t.Helper()
	cfg, err := embedded.Config(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg, err := embedded.Start(context.Background(), cfg, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = reg.Close(ctx)
	})
	return reg.URL
}

func pushSmall(t *testing.T, base string) *Image {
	t.Helper()
	img, err := PushImage(context.Background(), &http.Client{}, base, ImageSpec{
		Repository: "bench/smoke", Tag: "v1", LayerSizes: []int64{300 << 10, 64 << 10, 1}, Seed: 7,
	})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestRolloutSmoke: three nodes pull a pushed multi-platform image from a real registry;
// every node fetches exactly the amd64 manifest's blobs, with no failure.
func TestRolloutSmoke(t *testing.T) {
	base := startRegistry(t)
	img := pushSmall(t, base)
	if len(img.Layers) != 3 || img.Index.MediaType != MediaTypeIndex {
		t.Fatalf("pushed %+v", img)
	}
	res, err := Rollout(context.Background(), RolloutOptions{Nodes: 3, Targets: []string{base}, Repository: "bench/smoke", Tag: "v1", VerifyNodes: 3})
	if err != nil {
		t.Fatal(err)
	}
	if res.FailedRequests != 0 || res.FailedNodes != 0 {
		t.Fatalf("failures: %d requests, %d nodes: %v", res.FailedRequests, res.FailedNodes, res.Errors)
	}
	if res.ManifestRequests != 9 || len(res.Manifest) != 9 {
		t.Errorf("manifest requests %d (%d latencies), want 3 per node (HEAD tag, GET index, GET manifest)", res.ManifestRequests, len(res.Manifest))
	}
	if want := 3 * (1 + len(img.Layers)); res.BlobRequests != want {
		t.Errorf("blob requests %d, want %d (config and layers per node)", res.BlobRequests, want)
	}
	if want := 3 * img.BlobBytes; res.BlobBytes != want {
		t.Errorf("blob bytes %d, want %d (the amd64 blobs, three times)", res.BlobBytes, want)
	}
	for _, step := range []string{StepHeadTag, StepGetIndex, StepGetManifest} {
		if len(res.Steps[step]) != 3 {
			t.Errorf("%s: %d latencies, want one per node", step, len(res.Steps[step]))
		}
	}
	for i := 1; i < len(res.Manifest); i++ {
		if res.Manifest[i] < res.Manifest[i-1] {
			t.Fatal("manifest latencies not sorted")
		}
	}
}

// TestPushIsReproducible: the same spec gives the same digests, another seed others.
func TestPushIsReproducible(t *testing.T) {
	base := startRegistry(t)
	a := pushSmall(t, base)
	b := pushSmall(t, base)
	if a.Index.Digest != b.Index.Digest {
		t.Errorf("same spec, index digests %s and %s", a.Index.Digest, b.Index.Digest)
	}
	c, err := PushImage(context.Background(), &http.Client{}, base, ImageSpec{Repository: "bench/smoke", Tag: "v2", LayerSizes: []int64{300 << 10, 64 << 10, 1}, Seed: 8})
	if err != nil {
		t.Fatal(err)
	}
	if c.Layers[0].Digest == a.Layers[0].Digest {
		t.Error("another seed gave the same layer")
	}
}

// TestRolloutCountsFailures: a tag the registry does not have fails every node's first
// request, and the rollout says so instead of reporting a fast success.
func TestRolloutCountsFailures(t *testing.T) {
	base := startRegistry(t)
	pushSmall(t, base)
	res, err := Rollout(context.Background(), RolloutOptions{Nodes: 2, Targets: []string{base}, Repository: "bench/smoke", Tag: "missing"})
	if err != nil {
		t.Fatal(err)
	}
	if res.FailedRequests != 2 || res.FailedNodes != 2 || res.BlobRequests != 0 {
		t.Fatalf("failed %d requests, %d nodes, %d blob requests; want 2, 2, 0", res.FailedRequests, res.FailedNodes, res.BlobRequests)
	}
	if len(res.Errors) == 0 || !strings.Contains(res.Errors[0], "404") {
		t.Errorf("errors %q, want the 404", res.Errors)
	}
}

// flipByte corrupts one byte of whatever it reads, at offset at.
type flipByte struct {
	io.ReadCloser
	at, off int64
}

func (f *flipByte) Read(p []byte) (int, error) {
	n, err := f.ReadCloser.Read(p)
	if f.at >= f.off && f.at < f.off+int64(n) {
		p[f.at-f.off] ^= 0xff
	}
	f.off += int64(n)
	return n, err
}

// TestPullDetectsCorruptLayer: through a proxy that flips one byte of every blob (no real
// registry does that, hence the hand-written corrupter), a node that verifies layers fails
// its pull, one that does not still checks the size of what it got, and a failure of
// either kind is counted.
func TestPullDetectsCorruptLayer(t *testing.T) {
	base := startRegistry(t)
	img := pushSmall(t, base)
	up, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(up)
	rp.ModifyResponse = func(resp *http.Response) error {
		if strings.Contains(resp.Request.URL.Path, "/blobs/") && resp.StatusCode == http.StatusOK && resp.ContentLength > 1000 {
			resp.Body = &flipByte{ReadCloser: resp.Body, at: 1000}
		}
		return nil
	}
	corrupt := httptest.NewServer(rp)
	defer corrupt.Close()

	res, err := Rollout(context.Background(), RolloutOptions{Nodes: 2, Targets: []string{corrupt.URL}, Repository: "bench/smoke", Tag: "v1", VerifyNodes: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Node 0 verifies: its layers (tars, all over 1000 bytes) fail; the config (under 1000
	// bytes) passes. Node 1 only checks layer sizes, which are right.
	if img.Config.Size > 1000 || img.Layers[2].Size <= 1000 {
		t.Fatalf("sizes changed: config %d, smallest layer %d", img.Config.Size, img.Layers[2].Size)
	}
	if res.FailedRequests != len(img.Layers) || res.FailedNodes != 1 {
		t.Fatalf("failed %d requests, %d nodes, want %d and 1: %v", res.FailedRequests, res.FailedNodes, len(img.Layers), res.Errors)
	}
	if !strings.Contains(res.Errors[0], "content has digest") {
		t.Errorf("error %q, want the digest mismatch", res.Errors[0])
	}

	n := &node{ctx: context.Background(), client: NewNodeClient(3), base: base + "/v2/bench/smoke", record: func(Sample) {}}
	wrongSize := img.Layers[0]
	wrongSize.Size--
	if err := n.blob(wrongSize, false); err == nil || !strings.Contains(err.Error(), "want") {
		t.Errorf("a blob longer than its descriptor was accepted: %v", err)
	}
	wrongSize.Size += 2
	if err := n.blob(wrongSize, false); err == nil || !strings.Contains(err.Error(), "want") {
		t.Errorf("a blob shorter than its descriptor was accepted: %v", err)
	}
}

// TestBenchInterleavesAndMeasures: two paths, two rounds, in order a, b, a, b, with the
// registry's CPU read from /proc (the registry runs in this process).
func TestBenchInterleavesAndMeasures(t *testing.T) {
	base := startRegistry(t)
	img := pushSmall(t, base)
	results, err := Bench(context.Background(), BenchOptions{
		Paths:    []Path{{Name: Direct, Targets: []string{base}}, {Name: "other", Targets: []string{base, base}, Servers: []int{os.Getpid()}}},
		Registry: os.Getpid(), Rounds: 2, WarmupTimeout: time.Second,
		Rollout: RolloutOptions{Nodes: 3, Repository: "bench/smoke", Tag: "v1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, r := range results {
		order = append(order, r.Path)
		if r.FailedRequests != 0 || r.BlobBytes != 3*img.BlobBytes {
			t.Errorf("round %d %s: %d failed, %d bytes", r.Round, r.Path, r.FailedRequests, r.BlobBytes)
		}
		if r.Path == "other" && (len(r.ProxyPeakRSS) != 1 || r.ProxyPeakRSS[0] <= 0) {
			t.Errorf("round %d: proxy peak RSS %v, want this process's VmHWM", r.Round, r.ProxyPeakRSS)
		}
	}
	if got := strings.Join(order, ","); got != "direct,other,direct,other" {
		t.Errorf("order %s, want interleaved rounds", got)
	}
	sums := Summarize(results)
	if len(sums) != 2 || sums[1].VsDirect == nil || sums[0].VsDirect != nil {
		t.Fatalf("summaries %+v", sums)
	}
}
