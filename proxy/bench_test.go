package proxy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/embedded"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/proxy"
)

// The benchmarks compare pulling straight from an in-process distribution registry with
// pulling the same content through the gateway in front of it, in one process and one run.
// Every result that matters is a ratio measured from interleaved requests, so background
// noise on a shared machine hits both paths alike. docs/BENCHMARKS.md has the commands
// and the figures.

const (
	// benchBlobSize is the size of the blob BenchmarkBlobPull pulls.
	benchBlobSize = 256 << 20
	// benchConcurrency is how many goroutines share one keep-alive client in
	// BenchmarkManifestGet, like a node pulling many images at once.
	benchConcurrency = 16
	// benchBatch is how many manifest GETs one interleaved round sends down each path.
	benchBatch = 8 * benchConcurrency
)

// perfEnv is an upstream registry, a gateway in front of it and a client for both.
type perfEnv struct {
	client  *http.Client
	direct  string // upstream base URL
	gateway string // gateway base URL
}

// perfPath is one way of reaching the registry.
type perfPath struct {
	name string
	base string
}

func (e perfEnv) paths() []perfPath {
	return []perfPath{{"direct", e.direct}, {"gateway", e.gateway}}
}

// newPerfEnv starts a real registry and a plain pass-through gateway (no admission gate)
// in front of it. The gateway's access log is formatted as JSON, as in production, and
// thrown away.
func newPerfEnv(tb testing.TB) perfEnv {
	tb.Helper()
	up := regtest.Registry(tb)
	gw := regtest.Gateway(tb, up, proxy.WithLogger(slog.New(slog.NewJSONHandler(io.Discard, nil))))
	return perfEnv{client: perfClient(tb), direct: up, gateway: gw.URL}
}

// perfClient is a puller's HTTP client: keep-alive with room for benchConcurrency
// connections per host, no transparent compression.
func perfClient(tb testing.TB) *http.Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        8 * benchConcurrency,
		MaxIdleConnsPerHost: 2 * benchConcurrency,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// perfRandom returns size bytes of incompressible, seed-determined data.
func perfRandom(seed uint64, size int64) io.Reader {
	var key [32]byte
	key[0] = byte(seed)
	key[1] = byte(seed >> 8)
	return io.LimitReader(rand.NewChaCha8(key), size)
}

// perfResolve turns a Location header into an absolute URL against base.
func perfResolve(base, location string) (*url.URL, error) {
	b, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	l, err := url.Parse(location)
	if err != nil {
		return nil, fmt.Errorf("location %q: %w", location, err)
	}
	return b.ResolveReference(l), nil
}

// perfDo sends req and returns an error unless the answer has status want. The body is
// drained and closed; the headers remain.
func perfDo(c *http.Client, req *http.Request, want int) (*http.Response, error) {
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return nil, fmt.Errorf("%s %s: %s (want %d): %s", req.Method, req.URL.Path, resp.Status, want, bytes.TrimSpace(msg))
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp, nil
}

// perfStartUpload opens a blob upload session and returns its absolute URL.
func perfStartUpload(c *http.Client, base, repo string) (*url.URL, error) {
	req, err := http.NewRequest(http.MethodPost, base+"/v2/"+repo+"/blobs/uploads/", nil)
	if err != nil {
		return nil, err
	}
	resp, err := perfDo(c, req, http.StatusAccepted)
	if err != nil {
		return nil, err
	}
	return perfResolve(base, resp.Header.Get("Location"))
}

// perfFinishUpload closes an upload session with a PUT naming the digest, carrying body
// (which may be empty).
func perfFinishUpload(c *http.Client, base string, loc *url.URL, d digest.Digest, body []byte) error {
	q := loc.Query()
	q.Set("digest", d.String())
	u := *loc
	u.RawQuery = q.Encode()
	req, err := http.NewRequest(http.MethodPut, u.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	_, err = perfDo(c, req, http.StatusCreated)
	return err
}

// perfPushBlob uploads a small blob in two requests (POST, then PUT with the bytes).
func perfPushBlob(c *http.Client, base, repo string, data []byte) (digest.Digest, error) {
	loc, err := perfStartUpload(c, base, repo)
	if err != nil {
		return "", err
	}
	d := digest.FromBytes(data)
	return d, perfFinishUpload(c, base, loc, d, data)
}

// perfCountingReader counts the bytes read through it.
type perfCountingReader struct {
	r io.Reader
	n int64
}

func (c *perfCountingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// perfPushBlobStreamed uploads everything r yields the way docker push does: POST to open a
// session, one PATCH whose body streams r with chunked transfer encoding (no length, no
// buffering), and a PUT naming the digest computed on the way. It returns the digest and
// the size.
func perfPushBlobStreamed(c *http.Client, base, repo string, r io.Reader) (digest.Digest, int64, error) {
	loc, err := perfStartUpload(c, base, repo)
	if err != nil {
		return "", 0, err
	}
	dg := digest.SHA256.Digester()
	cr := &perfCountingReader{r: io.TeeReader(r, dg.Hash())}
	req, err := http.NewRequest(http.MethodPatch, loc.String(), io.NopCloser(cr))
	if err != nil {
		return "", 0, err
	}
	req.ContentLength = -1 // chunked
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := perfDo(c, req, http.StatusAccepted)
	if err != nil {
		return "", 0, err
	}
	if loc, err = perfResolve(base, resp.Header.Get("Location")); err != nil {
		return "", 0, err
	}
	return dg.Digest(), cr.n, perfFinishUpload(c, base, loc, dg.Digest(), nil)
}

// perfWriterOnly hides io.Discard's ReadFrom, so io.CopyBuffer uses our large buffer rather
// than io.Discard's 8 KiB reads.
type perfWriterOnly struct{ io.Writer }

// perfPullBuffers are 1 MiB copy buffers, the size containerd copies content with.
var perfPullBuffers = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// perfPullBlob GETs a blob and reads it to the end, checking the size and, when verify is
// set, the digest.
func perfPullBlob(c *http.Client, base, repo string, d digest.Digest, size int64, verify bool) error {
	req, err := http.NewRequest(http.MethodGet, base+"/v2/"+repo+"/blobs/"+d.String(), nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return fmt.Errorf("GET %s: %s: %s", req.URL.Path, resp.Status, bytes.TrimSpace(msg))
	}
	var dst io.Writer = io.Discard
	var v digest.Verifier
	if verify {
		v = d.Verifier()
		dst = v
	}
	buf := perfPullBuffers.Get().(*[]byte)
	defer perfPullBuffers.Put(buf)
	n, err := io.CopyBuffer(perfWriterOnly{dst}, resp.Body, *buf)
	if err != nil {
		return fmt.Errorf("GET %s: after %d bytes: %w", req.URL.Path, n, err)
	}
	if n != size {
		return fmt.Errorf("GET %s: got %d bytes, want %d", req.URL.Path, n, size)
	}
	if verify && !v.Verified() {
		return fmt.Errorf("GET %s: content does not match its digest", req.URL.Path)
	}
	return nil
}

// perfMedian returns the median of xs (which it sorts).
func perfMedian(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	m := len(xs) / 2
	if len(xs)%2 == 1 {
		return xs[m]
	}
	return (xs[m-1] + xs[m]) / 2
}

// BenchmarkBlobPull pulls a 256 MiB random blob straight from the registry and through
// the gateway. direct and gateway measure each path on its own (MB/s); interleaved
// alternates the two, one pull each per iteration in alternating order, and reports both
// throughputs and gateway/direct, the median over iterations of the ratio of the two
// pulls' throughputs. The blob is generated and uploaded once per process; every
// sub-benchmark first pulls it once per path, untimed, verifying its digest.
func BenchmarkBlobPull(b *testing.B) {
	env := newPerfEnv(b)
	const repo = "bench/blob"
	d, size, err := perfPushBlobStreamed(env.client, env.direct, repo, perfRandom(1, benchBlobSize))
	if err != nil {
		b.Fatal(err)
	}
	pull := func(b *testing.B, base string, verify bool) time.Duration {
		start := time.Now()
		if err := perfPullBlob(env.client, base, repo, d, size, verify); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	for _, p := range env.paths() {
		b.Run(p.name, func(b *testing.B) {
			pull(b, p.base, true)
			b.SetBytes(size)
			for b.Loop() {
				pull(b, p.base, false)
			}
		})
	}
	b.Run("interleaved", func(b *testing.B) {
		pull(b, env.direct, true)
		pull(b, env.gateway, true)
		var direct, gateway time.Duration
		var ratios []float64
		for i := 0; b.Loop(); i++ {
			var td, tg time.Duration
			if i%2 == 0 {
				td = pull(b, env.direct, false)
				tg = pull(b, env.gateway, false)
			} else {
				tg = pull(b, env.gateway, false)
				td = pull(b, env.direct, false)
			}
			direct += td
			gateway += tg
			ratios = append(ratios, td.Seconds()/tg.Seconds())
		}
		mb := float64(size) * float64(len(ratios)) / 1e6
		b.ReportMetric(mb/direct.Seconds(), "direct-MB/s")
		b.ReportMetric(mb/gateway.Seconds(), "gateway-MB/s")
		b.ReportMetric(perfMedian(ratios), "gateway/direct")
	})
}

// BenchmarkEmbeddedBlobPull is the embedded default against the registry served alone:
// one registry listens on loopback (direct) and is the upstream of three gateways: one that
// hands blob requests to its handler with the client's response writer, as "portcullis
// serve" runs it with no upstream configured (embedded); one that reaches it only through the in-process RoundTripper and its bounded pipe, as
// the embedded default did before (roundtrip); and one that reaches it over loopback HTTP
// (loopback). It pulls a 256 MiB random blob down the four paths, interleaved, one each
// per iteration in rotating order, and reports each path's throughput and the CPU time
// this process (client, gateway and registry together) spent per GiB on it, and each
// gateway path's ratio to direct, the median over iterations of the ratio of the pulls'
// throughputs. Each path's first pull verifies the digest, untimed.
func BenchmarkEmbeddedBlobPull(b *testing.B) {
	reg := regtest.StartRegistry(b)
	quiet := proxy.WithLogger(slog.New(slog.NewJSONHandler(io.Discard, nil)))
	paths := []perfPath{
		{"direct", reg.URL},
		{"embedded", regtest.GatewayInProcess(b, reg, quiet).URL},
		{"roundtrip", regtest.GatewayVia(b, embedded.InProcessURL, reg.Transport, quiet).URL},
		{"loopback", regtest.Gateway(b, reg.URL, quiet).URL},
	}
	client := perfClient(b)
	const repo = "bench/embedded"
	d, size, err := perfPushBlobStreamed(client, reg.URL, repo, perfRandom(2, benchBlobSize))
	if err != nil {
		b.Fatal(err)
	}
	pull := func(b *testing.B, base string, verify bool) time.Duration {
		start := time.Now()
		if err := perfPullBlob(client, base, repo, d, size, verify); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	for _, p := range paths {
		pull(b, p.base, true)
	}
	total := make([]time.Duration, len(paths))
	cpu := make([]time.Duration, len(paths))
	ratios := make([][]float64, len(paths))
	took := make([]time.Duration, len(paths))
	n := 0
	for i := 0; b.Loop(); i++ {
		for k := range paths {
			j := (i + k) % len(paths)
			before := perfProcessCPU(b)
			took[j] = pull(b, paths[j].base, false)
			cpu[j] += perfProcessCPU(b) - before
			total[j] += took[j]
		}
		for j := 1; j < len(paths); j++ {
			ratios[j] = append(ratios[j], took[0].Seconds()/took[j].Seconds())
		}
		n++
	}
	mb := float64(size) * float64(n) / 1e6
	gib := float64(size) * float64(n) / (1 << 30)
	for j, p := range paths {
		b.ReportMetric(mb/total[j].Seconds(), p.name+"-MB/s")
		b.ReportMetric(cpu[j].Seconds()/gib, p.name+"-cpu-s/GiB")
		if j > 0 {
			b.ReportMetric(perfMedian(ratios[j]), p.name+"/direct")
		}
	}
}

// perfProcessCPU is the user and system CPU time this process has used so far.
func perfProcessCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// perfImage pushes a small image (a config and four layers) to repo at base with tag
// and returns the manifest's bytes and digest.
func perfImage(c *http.Client, base, repo, tag string) ([]byte, digest.Digest, error) {
	type descriptor struct {
		MediaType string        `json:"mediaType"`
		Digest    digest.Digest `json:"digest"`
		Size      int64         `json:"size"`
	}
	push := func(mediaType string, data []byte) (descriptor, error) {
		d, err := perfPushBlob(c, base, repo, data)
		return descriptor{mediaType, d, int64(len(data))}, err
	}
	config, err := push("application/vnd.oci.image.config.v1+json",
		[]byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{}}`))
	if err != nil {
		return nil, "", err
	}
	var layers []descriptor
	for i := range 4 {
		data, _ := io.ReadAll(perfRandom(uint64(100+i), 4<<10))
		l, err := push("application/vnd.oci.image.layer.v1.tar+gzip", data)
		if err != nil {
			return nil, "", err
		}
		layers = append(layers, l)
	}
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        config,
		"layers":        layers,
		"annotations":   map[string]string{"org.opencontainers.image.source": "https://example.com/portcullis/bench"},
	})
	if err != nil {
		return nil, "", err
	}
	req, err := http.NewRequest(http.MethodPut, base+"/v2/"+repo+"/manifests/"+tag, bytes.NewReader(manifest))
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	if _, err := perfDo(c, req, http.StatusCreated); err != nil {
		return nil, "", err
	}
	return manifest, digest.FromBytes(manifest), nil
}

// perfManifestAccept lists the media types containerd accepts when it resolves a reference.
const perfManifestAccept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, " +
	"application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, */*"

// perfGetManifest GETs a manifest and checks the status and the advertised digest, and, when
// body is not nil, that the bytes are exactly body.
func perfGetManifest(c *http.Client, u string, want digest.Digest, body []byte) error {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", perfManifestAccept)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", u, resp.Status, bytes.TrimSpace(got))
	}
	if h := resp.Header.Get("Docker-Content-Digest"); h != want.String() {
		return fmt.Errorf("GET %s: Docker-Content-Digest %q, want %s", u, h, want)
	}
	if body != nil && !bytes.Equal(got, body) {
		return fmt.Errorf("GET %s: body differs from the manifest pushed", u)
	}
	return nil
}

// perfManifestBatch sends n GETs of u from benchConcurrency goroutines sharing c and returns
// how long they took.
func perfManifestBatch(c *http.Client, u string, want digest.Digest, n int) (time.Duration, error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, benchConcurrency)
	start := time.Now()
	for range benchConcurrency {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if err := perfGetManifest(c, u, want, nil); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	return elapsed, <-errs
}

// BenchmarkManifestGet GETs a small image manifest, by tag and by digest, straight from
// the registry and through the gateway (which reads every manifest whole and checks its
// digest before serving it), from benchConcurrency goroutines sharing one keep-alive
// client. direct and gateway measure each path on its own (req/s); interleaved runs
// rounds of benchBatch requests down each path in alternating order and reports both
// rates and gateway/direct, the median over rounds of the ratio of the two rates.
func BenchmarkManifestGet(b *testing.B) {
	env := newPerfEnv(b)
	const repo = "bench/manifest"
	manifest, d, err := perfImage(env.client, env.direct, repo, "v1")
	if err != nil {
		b.Fatal(err)
	}
	for _, ref := range []struct{ name, ref string }{{"tag", "v1"}, {"digest", d.String()}} {
		b.Run(ref.name, func(b *testing.B) {
			urls := map[string]string{}
			for _, p := range env.paths() {
				urls[p.name] = p.base + "/v2/" + repo + "/manifests/" + ref.ref
			}
			check := func(b *testing.B) {
				for _, u := range urls {
					if err := perfGetManifest(env.client, u, d, manifest); err != nil {
						b.Fatal(err)
					}
				}
			}
			for _, p := range env.paths() {
				b.Run(p.name, func(b *testing.B) {
					check(b)
					u := urls[p.name]
					// RunParallel starts parallelism × GOMAXPROCS goroutines.
					procs := runtime.GOMAXPROCS(0)
					b.SetParallelism((benchConcurrency + procs - 1) / procs)
					b.ResetTimer()
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if err := perfGetManifest(env.client, u, d, nil); err != nil {
								b.Error(err)
								return
							}
						}
					})
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
				})
			}
			b.Run("interleaved", func(b *testing.B) {
				check(b)
				var direct, gateway time.Duration
				var ratios []float64
				batch := func(path string) time.Duration {
					t, err := perfManifestBatch(env.client, urls[path], d, benchBatch)
					if err != nil {
						b.Fatal(err)
					}
					return t
				}
				for i := 0; b.Loop(); i++ {
					var td, tg time.Duration
					if i%2 == 0 {
						td = batch("direct")
						tg = batch("gateway")
					} else {
						tg = batch("gateway")
						td = batch("direct")
					}
					direct += td
					gateway += tg
					ratios = append(ratios, td.Seconds()/tg.Seconds())
				}
				reqs := float64(benchBatch * len(ratios))
				b.ReportMetric(reqs/direct.Seconds(), "direct-req/s")
				b.ReportMetric(reqs/gateway.Seconds(), "gateway-req/s")
				b.ReportMetric(perfMedian(ratios), "gateway/direct")
			})
		})
	}
}
