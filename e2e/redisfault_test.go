package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portcullis-dev/portcullis/internal/cosigntest"
)

// privateRedis runs a redis-server of the test's own on a fixed port, so it can be killed
// and started again at the same address.
type privateRedis struct {
	bin, port string
	cmd       *exec.Cmd
}

func (r *privateRedis) start(t *testing.T) {
	t.Helper()
	r.cmd = exec.Command(r.bin, "--port", r.port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + r.port})
	defer c.Close()
	if !poll(10*time.Second, func() bool { return c.Ping(context.Background()).Err() == nil }) {
		t.Fatal("private redis-server did not start")
	}
}

func (r *privateRedis) kill() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Signal(syscall.SIGKILL)
		_ = r.cmd.Wait()
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// goroutines reads go_goroutines from the gateway's /metrics.
func goroutines(t *testing.T, gw *gateway) int {
	t.Helper()
	resp, err := http.Get(gw.adminURL("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var n float64
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "go_goroutines ") {
			n, _ = strconv.ParseFloat(strings.TrimPrefix(line, "go_goroutines "), 64)
		}
	}
	return int(n)
}

// TestRedisFailsMidLoad kills the gateway's Redis in the middle of a load of pulls and
// starts it again: every request is answered correctly and in time, the gateway reports
// the outage in /readyz and uses Redis again once it is back, without leaking goroutines.
func TestRedisFailsMidLoad(t *testing.T) {
	crane := requireTool(t, "crane")
	rdb := &privateRedis{bin: requireTool(t, "redis-server"), port: freePort(t)}
	rdb.start(t)
	t.Cleanup(rdb.kill)

	release := cosigntest.NewKey(t)
	dir := t.TempDir()
	policyPath := filepath.Join(dir, "policy.yaml")
	writeFile(t, policyPath, []byte("version: 1\nauthorities:\n"+release.AuthorityYAML(t, "release")+
		"environments:\n  - name: prod\n    repositories: [\"prod/**\"]\nrules:\n  - id: prod-signed\n    type: signature\n    mode: block\n    environments: [prod]\n    authorities: [release]\n"))
	cfg := filepath.Join(dir, "portcullis.yaml")
	writeFile(t, cfg, []byte("cache:\n  timeout: 200ms\n  redis:\n    addrs: [\"127.0.0.1:"+rdb.port+"\"]\n"))
	gw := startGateway(t, "--config", cfg, "--policy", policyPath)

	push := func(tag string) string {
		img := newImage(t)
		p := filepath.Join(dir, tag+".tar")
		writeFile(t, p, img.layerTar)
		out, _ := runTool(t, crane, "append", "--insecure", "--oci-empty-base", "-f", p, "-t", gw.addr+"/prod/app:"+tag)
		_, d, _ := strings.Cut(strings.TrimSpace(out), "@")
		return d
	}
	signed, unsigned := push("1.0.0"), push("1.0.1")
	cosigntest.SignLegacy(t, gw.addr, "prod/app", signed, release)
	if code, _ := pullStatus(gw, "prod/app", signed); code != http.StatusOK {
		t.Fatalf("signed pull before the fault: %d", code)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	// Warm up with the same load, so that pools (Redis, upstream keep-alives) are at their
	// working size before the baseline is taken; then let idle client connections go.
	var warm sync.WaitGroup
	for range 4 {
		warm.Go(func() {
			for range 50 {
				for _, d := range []string{signed, unsigned} {
					req, _ := http.NewRequest(http.MethodGet, gw.url("/v2/prod/app/manifests/"+d), nil)
					req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
					if resp, err := client.Do(req); err == nil {
						resp.Body.Close()
					}
				}
			}
		})
	}
	warm.Wait()
	client.CloseIdleConnections()
	time.Sleep(time.Second)
	baseline := goroutines(t, gw)

	var stop atomic.Bool
	var wrong, failed, total atomic.Int64
	var mu sync.Mutex
	var firstProblem string
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				d, want := signed, http.StatusOK
				if (i+w)%2 == 1 {
					d, want = unsigned, http.StatusForbidden
				}
				req, _ := http.NewRequest(http.MethodGet, gw.url("/v2/prod/app/manifests/"+d), nil)
				req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
				resp, err := client.Do(req)
				total.Add(1)
				if err != nil {
					failed.Add(1)
					mu.Lock()
					firstProblem = fmt.Sprint(err)
					mu.Unlock()
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != want {
					wrong.Add(1)
					mu.Lock()
					firstProblem = fmt.Sprintf("%s: %d, want %d", d, resp.StatusCode, want)
					mu.Unlock()
				}
			}
		})
	}
	cacheInfo := func() string { return readyInfo(t, gw)["cache"] }
	time.Sleep(time.Second)
	rdb.kill()
	if !poll(20*time.Second, func() bool { return strings.Contains(cacheInfo(), "DOWN") }) {
		t.Errorf("/readyz does not report Redis down: %q", cacheInfo())
	}
	time.Sleep(time.Second)
	rdb.start(t)
	// Back up, and the near cache subscribed again (it dropped its copies when Redis went).
	if !poll(30*time.Second, func() bool { return strings.Contains(cacheInfo(), ": up; near cache: on") }) {
		t.Errorf("/readyz does not report Redis back up with the near cache on: %q", cacheInfo())
	}
	time.Sleep(time.Second)
	stop.Store(true)
	wg.Wait()
	if wrong.Load() > 0 || failed.Load() > 0 {
		t.Fatalf("%d of %d pulls answered wrongly and %d failed (last: %s)", wrong.Load(), total.Load(), failed.Load(), firstProblem)
	}

	// Redis is used again: a newly signed image's verification lands in it.
	fresh := push("1.0.2")
	cosigntest.SignLegacy(t, gw.addr, "prod/app", fresh, release)
	if code, _ := pullStatus(gw, "prod/app", fresh); code != http.StatusOK {
		t.Fatalf("signed pull after Redis returned: %d", code)
	}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + rdb.port})
	defer c.Close()
	keys, err := c.Keys(context.Background(), "portcullis:v1:signature:"+fresh+"*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("no signature result in Redis after it returned: %v %v", keys, err)
	}
	if gw.log.contains("panic") {
		t.Fatalf("the gateway panicked:\n%s", gw.log.tail(40))
	}
	client.CloseIdleConnections()
	var after int
	poll(10*time.Second, func() bool { after = goroutines(t, gw); return after <= baseline+10 })
	if after > baseline+10 {
		t.Fatalf("goroutines grew from %d to %d across the outage", baseline, after)
	}
	t.Logf("%d pulls across the outage, all answered correctly; goroutines %d → %d", total.Load(), baseline, after)
}
