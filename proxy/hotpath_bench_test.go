package proxy_test

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/proxy"
	"github.com/portcullis-dev/portcullis/upstream"
)

// BenchmarkManifestGetWarmCache GETs a manifest by an immutable tag straight from the
// registry and through a gateway with the real gate (immutable tags, audit events to
// io.Discard) and warm caches, which answers from the cache. It interleaves rounds of
// benchBatch concurrent requests down each path and reports both rates and
// gateway/direct (target >= 1.0), then times single sequential requests, alternating
// paths, and reports each path's p99 and the gateway's added p99 latency in ms.
func BenchmarkManifestGetWarmCache(b *testing.B) {
	reg := regtest.Registry(b)
	p, err := policy.Parse([]byte(hotPolicy))
	if err != nil {
		b.Fatal(err)
	}
	tr, err := proxy.NewTransport(proxy.TransportOptions{Timeout: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	client, err := upstream.New(reg, tr)
	if err != nil {
		b.Fatal(err)
	}
	g := gate.New(p, client, discardSink{}, gate.WithLogger(slog.New(slog.NewJSONHandler(io.Discard, nil))))
	px, err := proxy.New(reg, tr, proxy.WithGate(g), proxy.WithCache(cache.NewMemory(64<<20)),
		proxy.WithLogger(slog.New(slog.NewJSONHandler(io.Discard, nil))))
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(px)
	b.Cleanup(srv.Close)
	c := perfClient(b)
	const repo = "prod/bench"
	manifest, d, err := perfImage(c, srv.URL, repo, "1.0.0")
	if err != nil {
		b.Fatal(err)
	}
	urls := map[string]string{"direct": reg + "/v2/" + repo + "/manifests/1.0.0", "gateway": srv.URL + "/v2/" + repo + "/manifests/1.0.0"}
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
