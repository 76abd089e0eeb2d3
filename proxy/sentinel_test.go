package proxy_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/proxy"
)

// TestSentinelFailoverUnderLoad: a gateway whose cache is Redis behind Sentinel (master,
// replica, three Sentinels, all real processes) with the near cache in front, serving a
// load of pulls while a Sentinel fails the master over. Every pull gets the right answer
// (the kept tag's exact bytes, the deleted tag's and the unknown tag's 404) or a clear
// 503, none hangs, and afterwards the gateway is back on Redis, answering from its cache.
func TestSentinelFailoverUnderLoad(t *testing.T) {
	g := regtest.RedisSentinel(t)
	client, err := cache.NewRedisClient(cache.RedisOptions{
		Addrs: g.Sentinels, MasterName: g.MasterName,
		DialTimeout: 500 * time.Millisecond, ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	opts := []cache.Option{cache.WithTimeout(500 * time.Millisecond), cache.WithProbeBackoff(50*time.Millisecond, 500*time.Millisecond)}
	res := cache.NewResilient(cache.NewRedis(client, opts...), cache.NewMemory(16<<20), opts...)
	near := cache.NewNear(res, client, cache.NearOptions{PingEvery: 500 * time.Millisecond})
	t.Cleanup(func() { near.Close(); res.Close() })
	waitFor(t, "the near cache subscribed", func() bool { ok, _ := near.Live(); return ok })
	env := newHotEnvOn(t, regtest.Registry(t), proxy.WithCache(near), proxy.WithLogger(quietLogger))

	repo := "prod/sentinel-" + benchNonce(t)
	for _, r := range []string{repo + "/kept", repo + "/gone"} {
		if resp := putManifest(t, env.gateway, r, "1.0.0"); resp.StatusCode != http.StatusCreated {
			t.Fatalf("push %s: %s", r, resp.Status)
		}
	}
	kept, keptBody := getManifest(t, env.gateway+"/v2/"+repo+"/kept/manifests/1.0.0", "")
	dgst := kept.Header.Get("Docker-Content-Digest")
	if kept.StatusCode != http.StatusOK || dgst == "" {
		t.Fatalf("pull: %s", kept.Status)
	}
	getManifest(t, env.gateway+"/v2/"+repo+"/gone/manifests/1.0.0", "")
	if resp, _ := getManifest(t, env.gateway+"/v2/"+repo+"/gone/manifests/1.0.0", ""); resp.Header.Get("Portcullis-Cache") != "hit" {
		t.Fatal("the tag to delete was not served from the cache before its delete: the test would prove nothing")
	}
	req, _ := http.NewRequest(http.MethodDelete, env.gateway+"/v2/"+repo+"/gone/manifests/"+dgst, nil)
	del, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	del.Body.Close()
	if del.StatusCode != http.StatusAccepted {
		t.Fatalf("delete: %s", del.Status)
	}
	// The delete is on the replica before the failover (Redis replicates asynchronously: a
	// write acknowledged just before a failover can be lost; docs/SCALING.md says so).
	master := redis.NewClient(&redis.Options{Addr: g.Master.Addr})
	defer master.Close()
	if n, err := master.Wait(context.Background(), 1, 5*time.Second).Result(); err != nil || n < 1 {
		t.Fatalf("WAIT for the replica: %d, %v", n, err)
	}

	type want struct {
		path   string
		status int
		body   []byte
	}
	wants := []want{
		{"/v2/" + repo + "/kept/manifests/1.0.0", http.StatusOK, keptBody},
		{"/v2/" + repo + "/gone/manifests/1.0.0", http.StatusNotFound, nil},
		{"/v2/" + repo + "/kept/manifests/9.9.9", http.StatusNotFound, nil},
	}
	hc := &http.Client{Timeout: 30 * time.Second} // a hang guard
	var (
		stop                    atomic.Bool
		ok, unavailable, served atomic.Int64
		slowest                 atomic.Int64
		mu                      sync.Mutex
		wrong                   []string
	)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; !stop.Load(); i++ {
				wt := wants[i%len(wants)]
				r, _ := http.NewRequest(http.MethodGet, env.gateway+wt.path, nil)
				r.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
				start := time.Now()
				resp, err := hc.Do(r)
				var body []byte
				if err == nil {
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				took := time.Since(start)
				for s := slowest.Load(); int64(took) > s && !slowest.CompareAndSwap(s, int64(took)); s = slowest.Load() {
				}
				switch {
				case err != nil:
					mu.Lock()
					wrong = append(wrong, fmt.Sprintf("GET %s: %v after %v", wt.path, err, took))
					mu.Unlock()
				case resp.StatusCode == http.StatusServiceUnavailable:
					unavailable.Add(1)
				case resp.StatusCode != wt.status || (wt.body != nil && !bytes.Equal(body, wt.body)) ||
					(wt.status == http.StatusOK && resp.Header.Get("Docker-Content-Digest") != dgst):
					mu.Lock()
					wrong = append(wrong, fmt.Sprintf("GET %s: %s (cache %q), want %d", wt.path, resp.Status, resp.Header.Get("Portcullis-Cache"), wt.status))
					mu.Unlock()
				default:
					ok.Add(1)
					if resp.Header.Get("Portcullis-Cache") == "hit" {
						served.Add(1)
					}
				}
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	before := ok.Load()
	if err := g.Failover(context.Background()); err != nil {
		t.Fatalf("SENTINEL FAILOVER: %v", err)
	}
	waitFor(t, "the Sentinels promote the replica", func() bool {
		a, err := g.MasterAddr(context.Background())
		return err == nil && a == g.Replica.Addr
	})
	// The gateway follows the new master: writes reach Redis again.
	probe := cache.Prefix + "test:probe:" + benchNonce(t)
	waitFor(t, "the gateway writes to the new master", func() bool {
		up, _ := res.Status()
		if !up || res.Set(context.Background(), probe, []byte("x"), time.Minute) != nil {
			return false
		}
		c := redis.NewClient(&redis.Options{Addr: g.Replica.Addr})
		defer c.Close()
		v, err := c.Get(context.Background(), probe).Result()
		return err == nil && v == "x"
	})
	time.Sleep(time.Second) // load on the new master too
	stop.Store(true)
	wg.Wait()

	if len(wrong) > 0 {
		t.Fatalf("%d wrong answers during the failover, the first: %s", len(wrong), strings.Join(wrong[:min(5, len(wrong))], "\n"))
	}
	t.Logf("%d right answers (%d during and after the failover, %d from the cache), %d 503s, slowest %v",
		ok.Load(), ok.Load()-before, served.Load(), unavailable.Load(), time.Duration(slowest.Load()))
	if ok.Load() == before {
		t.Fatal("no pull succeeded once the failover started")
	}
	// Back on Redis, with the near cache subscribed again: the kept tag is a cache hit.
	waitFor(t, "the near cache subscribed again", func() bool { live, _ := near.Live(); return live })
	waitFor(t, "the kept tag is served from the cache", func() bool {
		resp, body := getManifest(t, env.gateway+wants[0].path, "")
		return resp.StatusCode == http.StatusOK && bytes.Equal(body, keptBody) && resp.Header.Get("Portcullis-Cache") == "hit"
	})
	if resp, _ := getManifest(t, env.gateway+wants[1].path, ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("the deleted tag after the failover: %s", resp.Status)
	}
}

// waitFor polls cond, failing after a generous deadline: a hang guard, not a speed test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
