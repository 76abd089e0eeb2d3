package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/cosigntest"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/internal/scantest"
)

// computations sums a gateway's portcullis_cache_computations_total for kind.
func computations(t *testing.T, gw *gateway, kind string) int {
	t.Helper()
	resp, err := http.Get(gw.adminURL("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	total := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "portcullis_cache_computations_total{") || !strings.Contains(line, `kind="`+kind+`"`) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		total += int(v)
	}
	return total
}

func pullStatus(gw *gateway, repo, digest string) (int, error) {
	req, _ := http.NewRequest(http.MethodGet, gw.url("/v2/"+repo+"/manifests/"+digest), nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestTwoReplicasShareOneRedis runs two gateway processes in front of one registry with
// one Redis: a signature verified by either serves both, and twenty concurrent first pulls
// spread over both verify once.
func TestTwoReplicasShareOneRedis(t *testing.T) {
	crane := requireTool(t, "crane")
	regtest.Redis(t) // skips loudly, or fails on CI, without Redis
	reg := regtest.Registry(t)
	release := cosigntest.NewKey(t)
	dir := t.TempDir()
	policyPath := filepath.Join(dir, "policy.yaml")
	writeFile(t, policyPath, []byte(`version: 1
authorities:
`+release.AuthorityYAML(t, "release")+`environments:
  - name: prod
    repositories: ["prod/**"]
rules:
  - id: prod-signed
    type: signature
    mode: block
    environments: [prod]
    authorities: [release]
`))
	cfg := filepath.Join(dir, "portcullis.yaml")
	writeFile(t, cfg, []byte(fmt.Sprintf("cache:\n  redis:\n    addrs: [%q]\n", regtest.RedisAddr())))
	a := startGateway(t, "--config", cfg, "--policy", policyPath, "--upstream", reg)
	b := startGateway(t, "--config", cfg, "--policy", policyPath, "--upstream", reg)

	img := newImage(t)
	tarPath := filepath.Join(dir, "layer.tar")
	writeFile(t, tarPath, img.layerTar)
	out, _ := runTool(t, crane, "append", "--insecure", "--oci-empty-base", "-f", tarPath, "-t", a.addr+"/prod/app:1.0.0")
	_, digest, _ := strings.Cut(strings.TrimSpace(out), "@")
	regtest.Redis(t, "portcullis:v1:signature:"+digest+"*", "portcullis:v1:lock:portcullis:v1:signature:"+digest+"*")

	if code, err := pullStatus(b, "prod/app", digest); err != nil || code != http.StatusForbidden {
		t.Fatalf("unsigned pull through B: %d %v, want 403", code, err)
	}
	cosigntest.SignLegacy(t, a.addr, "prod/app", digest, release)

	before := computations(t, a, "signature") + computations(t, b, "signature")
	pullSpread(t, 20, "prod/app", digest, a, b)
	if n := computations(t, a, "signature") + computations(t, b, "signature") - before; n != 1 {
		t.Fatalf("%d signature verifications for 20 concurrent first pulls over two replicas, want 1", n)
	}
	onB := computations(t, b, "signature")
	for range 5 {
		if code, _ := pullStatus(b, "prod/app", digest); code != http.StatusOK {
			t.Fatalf("pull through B: %d", code)
		}
	}
	if n := computations(t, b, "signature") - onB; n != 0 {
		t.Fatalf("B verified %d more times; the shared result should serve it", n)
	}
}

// TestTwoReplicasScanOnce runs two gateway processes with one Redis and one vulnerability
// database: an image pushed through A is scanned there and served by B without a scan,
// and twenty concurrent first pulls of an image that did not come through the gateway,
// spread over both, scan it once.
func TestTwoReplicasScanOnce(t *testing.T) {
	crane := requireTool(t, "crane")
	regtest.Redis(t)
	reg := regtest.Registry(t)
	dir := t.TempDir()
	policyPath := filepath.Join(dir, "policy.yaml")
	writeFile(t, policyPath, []byte(`version: 1
environments:
  - name: prod
    repositories: ["prod/**"]
rules:
  - id: vulns
    type: vulnerability
    mode: warn
    environments: [prod]
    severity: critical
`))
	cfg := filepath.Join(dir, "portcullis.yaml")
	writeFile(t, cfg, []byte(fmt.Sprintf("cache:\n  redis:\n    addrs: [%q]\nscan:\n  db: %q\n", regtest.RedisAddr(), scantest.GoDB(t))))
	a := startGateway(t, "--config", cfg, "--policy", policyPath, "--upstream", reg)
	b := startGateway(t, "--config", cfg, "--policy", policyPath, "--upstream", reg)
	scans := func() int { return computations(t, a, "findings") + computations(t, b, "findings") }

	push := func(host string) string {
		img := newImage(t)
		regtest.Redis(t, "portcullis:v1:layer:"+sha256Digest(img.layerTar)+"*")
		p := filepath.Join(t.TempDir(), "layer.tar")
		writeFile(t, p, img.layerTar)
		out, _ := runTool(t, crane, "append", "--insecure", "--oci-empty-base", "-f", p, "-t", host+"/prod/app:"+randomBase62(t, 8))
		_, d, _ := strings.Cut(strings.TrimSpace(out), "@")
		regtest.Redis(t, "portcullis:v1:findings:"+d+"*", "portcullis:v1:lock:portcullis:v1:findings:"+d+"*")
		return d
	}

	before := scans()
	pushed := push(a.addr)
	if n := scans() - before; n != 1 {
		t.Fatalf("a push through A ran %d scans, want 1", n)
	}
	onB := computations(t, b, "findings")
	for range 5 {
		if code, err := pullStatus(b, "prod/app", pushed); err != nil || code != http.StatusOK {
			t.Fatalf("pull through B: %d %v", code, err)
		}
	}
	if n := computations(t, b, "findings") - onB; n != 0 {
		t.Fatalf("B scanned %d times an image A had scanned, want 0", n)
	}

	direct := push(strings.TrimPrefix(reg, "http://")) // around the gateway: never scanned
	before = scans()
	pullSpread(t, 20, "prod/app", direct, a, b)
	if n := scans() - before; n != 1 {
		t.Fatalf("%d scans for 20 concurrent first pulls over two replicas, want 1", n)
	}
}

// pullSpread pulls repo@digest n times concurrently, alternating over the gateways, and
// fails the test unless every pull is served (200).
func pullSpread(t *testing.T, n int, repo, digest string, gateways ...*gateway) {
	t.Helper()
	var wg sync.WaitGroup
	for i := range n {
		gw := gateways[i%len(gateways)]
		wg.Go(func() {
			if code, err := pullStatus(gw, repo, digest); err != nil || code != http.StatusOK {
				t.Errorf("concurrent pull %d through %s: %d %v, want 200", i, gw.addr, code, err)
			}
		})
	}
	wg.Wait()
}
