package pullthrough_test

import (
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/portcullis-dev/portcullis/policy"
)

// benchWorld is the test world with a policy that treats mirrored and on-prem images the
// same (immutable tags: the hot path, and nothing else), so the paths differ only by
// pull-through.
func benchWorld(b *testing.B) *world {
	w := newWorld(b, nil)
	p, err := policy.Parse([]byte("version: 1\nrules:\n  - id: immutable-tags\n    type: immutable\n    mode: block\n"))
	if err != nil {
		b.Fatal(err)
	}
	w.pol = p
	return w
}

// pullAll pulls ref's index, every child manifest and every blob, bodies discarded.
func pullAll(b *testing.B, ref string, opts ...remote.Option) {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		b.Fatal(err)
	}
	idx, err := remote.Index(r, opts...)
	if err != nil {
		b.Fatalf("pull %s: %v", ref, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		b.Fatal(err)
	}
	for _, m := range im.Manifests {
		img, err := idx.Image(m.Digest)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := img.RawConfigFile(); err != nil {
			b.Fatal(err)
		}
		layers, err := img.Layers()
		if err != nil {
			b.Fatal(err)
		}
		for _, l := range layers {
			readLayer(b, l)
		}
	}
}

func readLayer(b *testing.B, l v1.Layer) {
	rc, err := l.Compressed()
	if err != nil {
		b.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); err != nil {
		b.Fatal(err)
	}
}

// manifestRound GETs url n times over client and returns the time taken, counting the
// answers not served by the hot path in misses (its access memo lasts a minute, so one
// pull a minute asks the upstream, on both paths).
func manifestRound(b *testing.B, client *http.Client, url string, n int, misses *int) time.Duration {
	start := time.Now()
	for range n {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("GET %s: %d", url, resp.StatusCode)
		}
		if resp.Header.Get("Portcullis-Cache") != "hit" {
			*misses++
		}
	}
	return time.Since(start)
}

// coldLayerBytes is the size of each of the four layers (two per platform) of a cold image.
const coldLayerBytes = 4 << 20

// BenchmarkPullThrough measures in one run, as ratios: warm, a manifest pull by tag of a
// mirrored image against one of an on-prem image through the same gateway (both answered
// by the hot path); cold, a first pull of a new public image through the gateway (HEAD at
// the source, fetch into the upstream, judge, serve, then every blob) against pulling the
// same image straight from the stand-in source. Each iteration pushes a new image to the
// source (untimed) and alternates which path goes first.
func BenchmarkPullThrough(b *testing.B) {
	w := benchWorld(b)
	gw := w.gateway(gatewayOpts{freshness: time.Hour})
	multiArch(b, hostOf(w.upstream), "team/app", "1.0", nil)
	multiArch(b, w.hubHost, "library/nginx", "1.27", nil)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	warmMirror := gw + "/v2/mirror/docker.io/library/nginx/manifests/1.27"
	warmOnprem := gw + "/v2/team/app/manifests/1.0"
	for _, u := range []string{warmMirror, warmOnprem} { // fill the hot path
		for range 2 {
			req, _ := http.NewRequest(http.MethodGet, u, nil)
			req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json")
			resp, err := client.Do(req)
			if err != nil || resp.StatusCode != 200 {
				b.Fatalf("warming %s: %v %v", u, err, resp)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	const round = 64
	b.ReportMetric(float64(4*coldLayerBytes)/(1<<20), "cold-image-MiB")
	var warmM, warmO, coldGW, coldDirect time.Duration
	var missM, missO int
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		repo := fmt.Sprintf("library/cold%d", i)
		multiArchSized(b, w.hubHost, repo, "1", nil, coldLayerBytes)
		b.StartTimer()
		viaGW := func() {
			start := time.Now()
			pullAll(b, hostOf(gw)+"/mirror/docker.io/"+repo+":1")
			coldGW += time.Since(start)
		}
		direct := func() {
			start := time.Now()
			pullAll(b, hostOf(w.hub.srv.URL)+"/"+repo+":1")
			coldDirect += time.Since(start)
		}
		if i%2 == 0 {
			warmM += manifestRound(b, client, warmMirror, round, &missM)
			warmO += manifestRound(b, client, warmOnprem, round, &missO)
			direct()
			viaGW()
		} else {
			warmO += manifestRound(b, client, warmOnprem, round, &missO)
			warmM += manifestRound(b, client, warmMirror, round, &missM)
			viaGW()
			direct()
		}
	}
	b.StopTimer()
	n := float64(b.N * round)
	b.ReportMetric(n/warmM.Seconds(), "mirrored-req/s")
	b.ReportMetric(n/warmO.Seconds(), "onprem-req/s")
	b.ReportMetric(warmM.Seconds()/warmO.Seconds(), "warm-mirrored/onprem")
	b.ReportMetric(float64(missM), "mirrored-misses")
	b.ReportMetric(float64(missO), "onprem-misses")
	b.ReportMetric(float64(coldGW.Milliseconds())/float64(b.N), "cold-gateway-ms")
	b.ReportMetric(float64(coldDirect.Milliseconds())/float64(b.N), "cold-direct-ms")
	b.ReportMetric(coldGW.Seconds()/coldDirect.Seconds(), "cold-gateway/direct")
}
