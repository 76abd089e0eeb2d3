package proxy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/redis/go-redis/v9"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/proxy"
)

// BenchmarkManifestGetWarmCache GETs a manifest by an immutable tag straight from the
// registry and through a gateway with the real gate (immutable tags, audit events to
// io.Discard) and warm caches, which answers from the cache. It interleaves rounds of
// benchBatch concurrent requests down each path and reports both rates and
// gateway/direct (target >= 1.0), then times single sequential requests, alternating
// paths, and reports each path's p50 and p99 and what the gateway adds to them, in ms.
//
// store=memory gives the gateway an in-memory cache; store=redis gives it the store
// production replicas share, cache.Resilient over cache.Redis at regtest.RedisAddr (the
// benchmark is skipped, loudly, when no Redis answers there), and also reports how many
// Redis round trips one hit costs. store=redis+near puts the near cache (cache.Near, as
// portcullis serve does by default with Redis) in front of that: a warm hit costs no Redis
// round trip (target gateway/direct >= 1.5).
func BenchmarkManifestGetWarmCache(b *testing.B) {
	b.Run("store=memory", func(b *testing.B) {
		benchWarmCache(b, nil, nil)
	})
	b.Run("store=redis", func(b *testing.B) {
		client := benchRedis(b)
		counter := &redisCounter{client: client}
		client.AddHook(counter)
		opts := []cache.Option{cache.WithTimeout(500 * time.Millisecond)} // config.Cache's default
		res := cache.NewResilient(cache.NewRedis(client, opts...), cache.NewMemory(64<<20, opts...), opts...)
		b.Cleanup(res.Close)
		benchWarmCache(b, res, counter)
		// A Redis call that failed or timed out sends Resilient to its in-memory fallback,
		// and the figures would no longer be Redis's.
		if n := counter.failures.Load(); n > 0 {
			b.Fatalf("%d Redis calls failed during the run, the first with %v: Resilient served from memory, so the figures are not Redis's", n, *counter.first.Load())
		}
	})
	b.Run("store=redis+near", func(b *testing.B) {
		client := benchRedis(b)
		counter := &redisCounter{client: client}
		client.AddHook(counter)
		opts := []cache.Option{cache.WithTimeout(500 * time.Millisecond)}
		res := cache.NewResilient(cache.NewRedis(client, opts...), cache.NewMemory(64<<20, opts...), opts...)
		b.Cleanup(res.Close)
		near := cache.NewNear(res, client, cache.NearOptions{}) // config's defaults
		b.Cleanup(near.Close)
		for deadline := time.Now().Add(10 * time.Second); ; {
			if live, _ := near.Live(); live {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("the near cache never subscribed")
			}
			time.Sleep(10 * time.Millisecond)
		}
		benchWarmCache(b, near, counter)
		if n := counter.failures.Load(); n > 0 {
			b.Fatalf("%d Redis calls failed during the run, the first with %v", n, *counter.first.Load())
		}
		if live, why := near.Live(); !live {
			b.Fatalf("the near cache lost its subscription during the run (%s): the figures are not its own", why)
		}
	})
}

// benchWarmCache runs BenchmarkManifestGetWarmCache with store as the gateway's cache
// (nil: newHotEnv's in-memory one). With a counter, it also reports the Redis commands
// and round trips per gateway hit, counted over the sequential requests.
func benchWarmCache(b *testing.B, store proxy.Cache, counter *redisCounter) {
	opts := []proxy.Option{proxy.WithLogger(quietLogger)}
	if store != nil {
		opts = append(opts, proxy.WithCache(store)) // after newHotEnv's, so it wins
	}
	env := newHotEnv(b, opts...)
	reg, gatewayURL := env.upstream, env.gateway
	c := perfClient(b)
	// A repository and a manifest of this run alone, so runs sharing a Redis neither read
	// nor delete each other's keys.
	nonce := benchNonce(b)
	repo := "prod/bench-" + nonce
	manifest, d, err := warmImage(c, reg, gatewayURL, repo, "1.0.0", nonce)
	if err != nil {
		b.Fatal(err)
	}
	if counter != nil {
		benchRedisCleanup(b, counter.client, repo, d)
	}
	urls := map[string]string{"direct": reg + "/v2/" + repo + "/manifests/1.0.0", "gateway": gatewayURL + "/v2/" + repo + "/manifests/1.0.0"}
	for _, u := range urls {
		// Checks the bytes, and warms the gateway's cache.
		if err := perfGetManifest(c, u, d, manifest); err != nil {
			b.Fatal(err)
		}
	}
	if err := warmHit(c, urls["gateway"]); err != nil {
		b.Fatal(err)
	}
	var direct, gateway time.Duration
	var ratios []float64
	for i := 0; b.Loop(); i++ {
		order := []string{"direct", "gateway"}
		if i%2 == 1 {
			order = []string{"gateway", "direct"}
		}
		took := map[string]time.Duration{}
		for _, path := range order {
			t, err := perfManifestBatch(c, urls[path], d, benchBatch)
			if err != nil {
				b.Fatal(err)
			}
			took[path] = t
		}
		direct += took["direct"]
		gateway += took["gateway"]
		ratios = append(ratios, took["direct"].Seconds()/took["gateway"].Seconds())
	}
	reqs := float64(benchBatch * len(ratios))
	b.ReportMetric(reqs/direct.Seconds(), "direct-req/s")
	b.ReportMetric(reqs/gateway.Seconds(), "gateway-req/s")
	b.ReportMetric(perfMedian(ratios), "gateway/direct")

	const sequential = 2000
	var cmds, trips int64
	if counter != nil {
		cmds, trips = counter.commands.Load(), counter.roundTrips.Load()
	}
	lat := map[string][]time.Duration{}
	for i := range sequential {
		for _, path := range [][]string{{"direct", "gateway"}, {"gateway", "direct"}}[i%2] {
			start := time.Now()
			if err := perfGetManifest(c, urls[path], d, nil); err != nil {
				b.Fatal(err)
			}
			lat[path] = append(lat[path], time.Since(start))
		}
	}
	if counter != nil {
		b.ReportMetric(float64(counter.commands.Load()-cmds)/sequential, "redis-cmds/hit")
		b.ReportMetric(float64(counter.roundTrips.Load()-trips)/sequential, "redis-rtt/hit")
	}
	quantile := func(xs []time.Duration, q int) float64 {
		slices.Sort(xs)
		return float64(xs[len(xs)*q/100].Microseconds()) / 1000
	}
	for _, q := range []struct {
		name string
		q    int
	}{{"p50", 50}, {"p99", 99}} {
		pd, pg := quantile(lat["direct"], q.q), quantile(lat["gateway"], q.q)
		b.ReportMetric(pd, "direct-"+q.name+"-ms")
		b.ReportMetric(pg, "gateway-"+q.name+"-ms")
		b.ReportMetric(pg-pd, "added-"+q.name+"-ms")
	}
}

// warmImage pushes perfImage's blobs straight to the registry at reg, then, through the
// gateway, a manifest for them annotated with nonce at repo:tag, so its digest is this
// run's alone. It returns the manifest's bytes and digest.
func warmImage(c *http.Client, reg, gateway, repo, tag, nonce string) ([]byte, digest.Digest, error) {
	base, _, err := perfImage(c, reg, repo, "base")
	if err != nil {
		return nil, "", err
	}
	var m map[string]any
	if err := json.Unmarshal(base, &m); err != nil {
		return nil, "", err
	}
	m["annotations"] = map[string]string{"org.opencontainers.image.source": "https://example.com/portcullis/bench", "dev.portcullis.bench.run": nonce}
	manifest, err := json.Marshal(m)
	if err != nil {
		return nil, "", err
	}
	req, err := http.NewRequest(http.MethodPut, gateway+"/v2/"+repo+"/manifests/"+tag, bytes.NewReader(manifest))
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	if _, err := perfDo(c, req, http.StatusCreated); err != nil {
		return nil, "", err
	}
	return manifest, digest.FromBytes(manifest), nil
}

// warmHit checks that the gateway now answers u from its cache, so the benchmark
// measures the hot path and not a pass-through.
func warmHit(c *http.Client, u string) error {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", perfManifestAccept)
	resp, err := perfDo(c, req, http.StatusOK)
	if err != nil {
		return err
	}
	if h := resp.Header.Get("Portcullis-Cache"); h != "hit" {
		return errors.New("GET " + u + ": Portcullis-Cache " + h + ", want hit: the gateway did not answer from its cache")
	}
	return nil
}

func benchNonce(tb testing.TB) string {
	var n [6]byte
	if _, err := rand.Read(n[:]); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(n[:])
}

// benchRedis returns a client of the Redis at regtest.RedisAddr, closed when b ends. When
// none answers, b is skipped with a loud message, also under CI=true: a benchmark is
// never a gate, unlike the tests regtest.Redis serves.
func benchRedis(b *testing.B) redis.UniversalClient {
	b.Helper()
	addr := regtest.RedisAddr()
	client, err := cache.NewRedisClient(cache.RedisOptions{Addrs: []string{addr}, DialTimeout: 2 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		msg := "\n" + strings.Repeat("!", 78) + "\n!!! NO REDIS AT " + addr + " (" + err.Error() + "): " + b.Name() + " is NOT MEASURED.\n" +
			"!!! Start one: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save \"\" --appendonly no, or set REDIS_ADDR.\n" +
			strings.Repeat("!", 78)
		// go test shows a skipped benchmark's message only with -v; a missing line of
		// figures must not go unnoticed.
		fmt.Fprintln(os.Stderr, msg)
		b.Skip(msg)
	}
	b.Cleanup(func() { _ = client.Close() })
	return client
}

// benchRedisCleanup deletes, when b ends, every key of repo and the manifest d: all the
// hot path writes for this run.
func benchRedisCleanup(b *testing.B, client redis.UniversalClient, repo string, d digest.Digest) {
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		keys := []string{cache.ManifestKey(d.String())}
		iter := client.Scan(ctx, 0, cache.Prefix+"*"+repo+"*", 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := errors.Join(iter.Err(), client.Del(ctx, keys...).Err()); err != nil {
			b.Logf("cleaning up Redis keys of %s: %v", repo, err)
		}
	})
}

// redisCounter is a go-redis hook counting the store's commands, its round trips (a
// pipeline is one) and its failed commands (a miss is not a failure).
type redisCounter struct {
	client                         redis.UniversalClient
	commands, roundTrips, failures atomic.Int64
	first                          atomic.Pointer[error] // the first failure
}

func (r *redisCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *redisCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if housekeeping(cmd) {
			return next(ctx, cmd)
		}
		r.commands.Add(1)
		r.roundTrips.Add(1)
		err := next(ctx, cmd)
		r.failed(err)
		return err
	}
}

func (r *redisCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !slices.ContainsFunc(cmds, func(c redis.Cmder) bool { return !housekeeping(c) }) {
			return next(ctx, cmds)
		}
		r.commands.Add(int64(len(cmds)))
		r.roundTrips.Add(1)
		err := next(ctx, cmds)
		r.failed(err)
		return err
	}
}

// housekeeping reports whether cmd is one the store never sends for a caller: go-redis's
// connection set-up (HELLO, CLIENT SETINFO, which older servers refuse harmlessly) and
// Resilient's health-check PING.
func housekeeping(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "hello", "client", "auth", "select", "ping":
		return true
	}
	return false
}

func (r *redisCounter) failed(err error) {
	if err != nil && !errors.Is(err, redis.Nil) {
		if r.failures.Add(1) == 1 {
			r.first.Store(&err)
		}
	}
}
