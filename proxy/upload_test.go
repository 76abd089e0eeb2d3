package proxy_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/embedded"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/proxy"
	"github.com/portcullis-dev/portcullis/scan/layer"
	"github.com/portcullis-dev/portcullis/scan/vulndb"
	"github.com/portcullis-dev/portcullis/upstream"
)

// countingReader is the real upstream reader, counting the layer blobs the scanner reads
// back from the upstream.
type countingReader struct {
	*upstream.Client
	opened atomic.Int64
}

func (c *countingReader) OpenBlob(ctx context.Context, repo, digest string) (io.ReadCloser, error) {
	c.opened.Add(1)
	return c.Client.OpenBlob(ctx, repo, digest)
}

// teeEnv is a registry and a scanning gateway in front of it, with or without the tee.
type teeEnv struct {
	reg, gw string
	reader  *countingReader
	store   *cache.Memory
}

// newTeeEnv starts a registry and a scanning gateway reaching it via via; the gateway's own
// reads (the scanner's) go the same way.
func newTeeEnv(t *testing.T, via upstreamVia, withTee bool) teeEnv {
	t.Helper()
	reg := regtest.StartRegistry(t)
	if via == viaInProcess {
		// As "portcullis serve" runs: uploads go to the registry's handler directly, the
		// gateway's own reads through the transport.
		return newTeeEnvVia(t, withTee, reg.URL, embedded.InProcessURL, reg.Transport(nil), proxy.WithInProcessUpstream(reg.Handler()))
	}
	return newTeeEnvFor(t, withTee, reg.URL)
}

// newTeeEnvFor puts a scanning gateway in front of the registry at reg.
func newTeeEnvFor(t *testing.T, withTee bool, reg string) teeEnv {
	t.Helper()
	return newTeeEnvVia(t, withTee, reg, reg, nil)
}

// newTeeEnvVia puts a scanning gateway in front of the registry at reg (a URL for the
// test's own requests), reaching it at gwUpstream through rt (the network when nil), with
// extra gateway options.
func newTeeEnvVia(t *testing.T, withTee bool, reg, gwUpstream string, rt http.RoundTripper, extra ...proxy.Option) teeEnv {
	t.Helper()
	readRT := rt
	if readRT == nil {
		readRT = http.DefaultTransport
	}
	up, err := upstream.New(gwUpstream, readRT)
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse([]byte("version: 1\nrules:\n  - {id: vulns, type: vulnerability, mode: block, severity: critical}\n"))
	if err != nil {
		t.Fatal(err)
	}
	dbDir := filepath.Join(t.TempDir(), "vulndb")
	if _, err := vulndb.Import(dbDir, filepath.Join("..", "scan", "vulndb", "testdata", "debian")); err != nil {
		t.Fatal(err)
	}
	env := teeEnv{reg: reg, reader: &countingReader{Client: up}, store: cache.NewMemory(256 << 20)}
	scanner := gate.NewScanner(env.reader, cache.NewFlight(env.store), dbDir)
	g := gate.New(p, up, discardSink{}, gate.WithImages(up), gate.WithScanner(scanner), gate.WithLogger(quietLogger))
	opts := append([]proxy.Option{proxy.WithGate(g), testLogger(t)}, extra...)
	if withTee {
		opts = append(opts, proxy.WithUploadTee(gate.NewUploadTee(scanner, g.ScansPush, quietLogger)))
	}
	if rt == nil {
		env.gw = regtest.Gateway(t, reg, opts...).URL
		return env
	}
	env.gw = regtest.GatewayVia(t, gwUpstream, func(http.RoundTripper) http.RoundTripper { return rt }, opts...).URL
	return env
}

func (e teeEnv) ref(t *testing.T, base, repo string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(strings.TrimPrefix(base, "http://")+"/"+repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// cachedAnalysis returns the cached analysis of a layer, if any.
func (e teeEnv) cachedAnalysis(t *testing.T, l v1.Layer) (layer.Result, bool) {
	t.Helper()
	diffID, err := l.DiffID()
	if err != nil {
		t.Fatal(err)
	}
	blob, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	raw, ok, err := e.store.Get(context.Background(), cache.LayerKey(blob.String(), diffID.String(), layer.AnalyzerVersion))
	if err != nil || !ok {
		return layer.Result{}, false
	}
	var res layer.Result
	return res, cache.Decode(raw, cache.KindLayer, 2, &res)
}

func TestUploadTeeAnalysesLayersAsTheyStream(t *testing.T) {
	eachVia(t, testUploadTeeAnalysesLayersAsTheyStream)
}

func testUploadTeeAnalysesLayersAsTheyStream(t *testing.T, via upstreamVia) {
	img, err := random.Image(2<<20, 3)
	if err != nil {
		t.Fatal(err)
	}
	with, without := newTeeEnv(t, via, true), newTeeEnv(t, via, false)
	if err := remote.Write(with.ref(t, with.gw, "app/tee:1"), img); err != nil {
		t.Fatalf("push through the gateway with the tee: %v", err)
	}
	if err := remote.Write(without.ref(t, without.gw, "app/tee:1"), img); err != nil {
		t.Fatalf("push through the gateway without the tee: %v", err)
	}
	if n := with.reader.opened.Load(); n != 0 {
		t.Errorf("with the tee, the scanner read %d layer blobs back from the upstream; want 0", n)
	}
	if n := without.reader.opened.Load(); n != 3 {
		t.Errorf("without the tee, the scanner read %d layer blobs back; want 3", n)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range layers {
		res, ok := with.cachedAnalysis(t, l)
		d, _ := l.Digest()
		if !ok || res.Digest != d.String() {
			t.Errorf("layer %d: cached analysis %v (digest %s), want one for %s", i, ok, res.Digest, d)
		}
	}
}

// upload sends blob to repo through base in the given chunks (a POST, one PATCH per chunk
// with its Content-Range, then the PUT with the digest) and returns the PUT's status.
func upload(t *testing.T, base, repo string, blob []byte, digest string, chunks ...int) int {
	t.Helper()
	resp, err := http.Post(base+"/v2/"+repo+"/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST upload: %s", resp.Status)
	}
	loc := resp.Header.Get("Location")
	off := 0
	for _, n := range chunks {
		req, _ := http.NewRequest(http.MethodPatch, resolve(base, loc), bytes.NewReader(blob[off:off+n]))
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", off, off+n-1))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("PATCH %d-%d: %s", off, off+n-1, resp.Status)
		}
		loc = resp.Header.Get("Location")
		off += n
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	req, _ := http.NewRequest(http.MethodPut, resolve(base, loc)+sep+"digest="+digest, bytes.NewReader(blob[off:]))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// resolve makes an upload Location absolute against base.
func resolve(base, loc string) string {
	if strings.HasPrefix(loc, "http") {
		return loc
	}
	return base + loc
}

// layerBytes returns a random layer's compressed bytes and digest.
func layerBytes(t *testing.T) (v1.Layer, []byte, string) {
	t.Helper()
	l, err := random.Layer(1<<20, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return l, b, d.String()
}

func TestUploadTeeFollowsChunkedUploads(t *testing.T) { eachVia(t, testUploadTeeFollowsChunkedUploads) }

func testUploadTeeFollowsChunkedUploads(t *testing.T, via upstreamVia) {
	e := newTeeEnv(t, via, true)
	l, blob, digest := layerBytes(t)
	// Three PATCHes and a PUT carrying the last bytes.
	third := len(blob) / 3
	if st := upload(t, e.gw, "app/chunked", blob, digest, third, third, 1000); st != http.StatusCreated {
		t.Fatalf("PUT: status %d", st)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(e.ref(t, e.gw, "app/chunked:1"), img); err != nil {
		t.Fatal(err)
	}
	if n := e.reader.opened.Load(); n != 0 {
		t.Errorf("the scanner read %d layer blobs back after a chunked upload through the tee; want 0", n)
	}
	if _, ok := e.cachedAnalysis(t, l); !ok {
		t.Error("no cached analysis of the chunked layer")
	}
}

func TestUploadTeeDropsWhatItCannotFollow(t *testing.T) {
	eachVia(t, testUploadTeeDropsWhatItCannotFollow)
}

func testUploadTeeDropsWhatItCannotFollow(t *testing.T, via upstreamVia) {
	e := newTeeEnv(t, via, true)

	// A session opened directly at the upstream: the gateway never saw it open, so its
	// chunks through the gateway are not followed; the upload still succeeds.
	l, blob, digest := layerBytes(t)
	resp, err := http.Post(e.reg+"/v2/app/drop/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	u := resolve(e.gw, strings.TrimPrefix(loc, e.reg))
	req, _ := http.NewRequest(http.MethodPut, u+"&digest="+digest, bytes.NewReader(blob))
	if !strings.Contains(u, "?") {
		req, _ = http.NewRequest(http.MethodPut, u+"?digest="+digest, bytes.NewReader(blob))
	}
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT through the gateway of a session opened at the upstream: %s", resp.Status)
	}
	if _, ok := e.cachedAnalysis(t, l); ok {
		t.Error("a session the gateway never saw open was analysed")
	}

	// Out-of-order chunks: the registry refuses the second PATCH; the tee drops the session.
	l2, blob2, digest2 := layerBytes(t)
	resp, err = http.Post(e.gw+"/v2/app/drop/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc = resp.Header.Get("Location")
	patch := func(from, to int, loc string) *http.Response {
		req, _ := http.NewRequest(http.MethodPatch, resolve(e.gw, loc), bytes.NewReader(blob2[from:to]))
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", from, to-1))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp = patch(0, 1000, loc)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("first PATCH: %s", resp.Status)
	}
	if bad := patch(5000, 6000, resp.Header.Get("Location")); bad.StatusCode == http.StatusAccepted {
		t.Fatalf("the registry accepted an out-of-order chunk")
	}
	// A PUT with a wrong digest is refused by the registry: nothing is stored for it.
	if st := upload(t, e.gw, "app/drop", blob2, "sha256:"+strings.Repeat("0", 64)); st == http.StatusCreated {
		t.Fatal("the registry accepted a blob under the wrong digest")
	}
	if _, ok := e.cachedAnalysis(t, l2); ok {
		t.Error("a layer whose upload failed was analysed and stored")
	}
	// The same layer, uploaded properly, is followed.
	if st := upload(t, e.gw, "app/drop", blob2, digest2, len(blob2)); st != http.StatusCreated {
		t.Fatalf("PUT: status %d", st)
	}
	img, err := mutate.AppendLayers(empty.Image, l2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(e.ref(t, e.gw, "app/drop:1"), img); err != nil {
		t.Fatal(err)
	}
	if n := e.reader.opened.Load(); n != 0 {
		t.Errorf("the scanner read %d layer blobs back; want 0", n)
	}
}

func TestUploadTeeMonolithicPost(t *testing.T) {
	// distribution answers a POST with a digest by opening a session; go-containerregistry's
	// registry, like several others, takes the blob in that one request.
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	e := newTeeEnvFor(t, true, srv.URL)
	l, blob, digest := layerBytes(t)
	resp, err := http.Post(e.gw+"/v2/app/mono/blobs/uploads/?digest="+digest, "application/octet-stream", bytes.NewReader(blob))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("monolithic POST: %s", resp.Status)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(e.ref(t, e.gw, "app/mono:1"), img); err != nil {
		t.Fatal(err)
	}
	if n := e.reader.opened.Load(); n != 0 {
		t.Errorf("the scanner read %d layer blobs back after a monolithic upload; want 0", n)
	}
}
