package proxy_test

import (
	"slices"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/proxy"
)

// BenchmarkManifestGetWarmCache GETs a manifest by an immutable tag straight from the
// registry and through a gateway with the real gate (immutable tags, audit events to
// io.Discard) and warm caches, which answers from the cache. It interleaves rounds of
// benchBatch concurrent requests down each path and reports both rates and
// gateway/direct (target >= 1.0), then times single sequential requests, alternating
// paths, and reports each path's p99 and the gateway's added p99 latency in ms.
func BenchmarkManifestGetWarmCache(b *testing.B) {
	env := newHotEnv(b, proxy.WithLogger(quietLogger))
	reg, gatewayURL := env.upstream, env.gateway
	c := perfClient(b)
	const repo = "prod/bench"
	manifest, d, err := perfImage(c, gatewayURL, repo, "1.0.0")
	if err != nil {
		b.Fatal(err)
	}
	urls := map[string]string{"direct": reg + "/v2/" + repo + "/manifests/1.0.0", "gateway": gatewayURL + "/v2/" + repo + "/manifests/1.0.0"}
	for _, u := range urls {
		// Checks the bytes, and warms the gateway's cache.
		if err := perfGetManifest(c, u, d, manifest); err != nil {
			b.Fatal(err)
		}
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

	lat := map[string][]time.Duration{}
	for i := range 2000 {
		for _, path := range [][]string{{"direct", "gateway"}, {"gateway", "direct"}}[i%2] {
			start := time.Now()
			if err := perfGetManifest(c, urls[path], d, nil); err != nil {
				b.Fatal(err)
			}
			lat[path] = append(lat[path], time.Since(start))
		}
	}
	p99 := func(xs []time.Duration) float64 {
		slices.Sort(xs)
		return float64(xs[len(xs)*99/100].Microseconds()) / 1000
	}
	pd, pg := p99(lat["direct"]), p99(lat["gateway"])
	b.ReportMetric(pd, "direct-p99-ms")
	b.ReportMetric(pg, "gateway-p99-ms")
	b.ReportMetric(pg-pd, "added-p99-ms")
}
