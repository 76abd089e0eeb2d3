package proxy_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/proxy"
)

// nearStore is one replica's cache as portcullis serve builds it with Redis: a near cache
// over Resilient over Redis, on a client of its own whose commands counter counts.
func nearStore(tb testing.TB) (*cache.Near, *redisCounter) {
	tb.Helper()
	client := regtest.Redis(tb)
	counter := &redisCounter{client: client}
	client.AddHook(counter)
	opts := []cache.Option{cache.WithTimeout(2 * time.Second)}
	res := cache.NewResilient(cache.NewRedis(client, opts...), cache.NewMemory(16<<20), opts...)
	near := cache.NewNear(res, client, cache.NearOptions{})
	tb.Cleanup(func() { near.Close(); res.Close() })
	deadline := time.Now().Add(20 * time.Second)
	for live, why := near.Live(); !live; live, why = near.Live() {
		if time.Now().After(deadline) {
			tb.Fatalf("near cache never subscribed: %s", why)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return near, counter
}

// TestNearCacheAcrossReplicas: two gateways share one registry and one Redis, each with
// its near cache. A warm pull costs no Redis command; a delete through one replica is seen
// by the other, which then answers the upstream's 404 instead of its copy.
func TestNearCacheAcrossReplicas(t *testing.T) {
	reg := regtest.Registry(t)
	nearA, _ := nearStore(t)
	nearB, counterB := nearStore(t)
	a := newHotEnvOn(t, reg, proxy.WithCache(nearA), proxy.WithLogger(quietLogger))
	b := newHotEnvOn(t, reg, proxy.WithCache(nearB), proxy.WithLogger(quietLogger))
	repo := "prod/near-" + benchNonce(t)
	t.Cleanup(func() {
		ctx := context.Background()
		for _, tag := range []string{"1.0.0", "@generation"} {
			_ = nearA.Delete(ctx, cache.TagKey(repo, tag))
		}
	})

	if resp := putManifest(t, a.gateway, repo, "1.0.0"); resp.StatusCode != http.StatusCreated {
		t.Fatalf("push through a: %s", resp.Status)
	}
	url := "/v2/" + repo + "/manifests/1.0.0"
	first, _ := getManifest(t, b.gateway+url, "")
	dgst := first.Header.Get("Docker-Content-Digest")
	if first.StatusCode != http.StatusOK || dgst == "" {
		t.Fatalf("first pull through b: %s", first.Status)
	}
	// Warm b's near cache, then count what a hit costs.
	for range 2 {
		getManifest(t, b.gateway+url, "")
	}
	before, upBefore := counterB.commands.Load(), b.up.manifests.Load()
	for range 20 {
		resp, _ := getManifest(t, b.gateway+url, "")
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Portcullis-Cache") != "hit" || resp.Header.Get("Docker-Content-Digest") != dgst {
			t.Fatalf("warm pull through b: %s, cache %q", resp.Status, resp.Header.Get("Portcullis-Cache"))
		}
	}
	if n := counterB.commands.Load() - before; n != 0 {
		t.Errorf("20 warm hits sent %d Redis commands, want 0: the near cache did not answer", n)
	}
	if n := b.up.manifests.Load() - upBefore; n != 0 {
		t.Errorf("20 warm hits asked the upstream %d times, want 0", n)
	}

	// Deleted through a: b stops serving its copy.
	req, _ := http.NewRequest(http.MethodDelete, a.gateway+"/v2/"+repo+"/manifests/"+dgst, nil)
	del, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	del.Body.Close()
	if del.StatusCode != http.StatusAccepted {
		t.Fatalf("delete through a: %s", del.Status)
	}
	deleted := time.Now()
	deadline := deleted.Add(20 * time.Second) // a hang guard; the bound is one second
	for {
		resp, _ := getManifest(t, b.gateway+url, "")
		if resp.Header.Get("Portcullis-Cache") != "hit" {
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("pull through b after the delete: %s, want the upstream's 404", resp.Status)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("b kept serving the deleted manifest's tag from its near cache")
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("b saw the delete through a %v after a answered it", time.Since(deleted))
}

// TestNearCacheDeleteThenRepushAcrossReplicas: a tag deleted through one replica and
// pushed again with other content (or refused, if the immutability ledger forbids it) is
// never answered by the other replica with the old content from its near cache.
func TestNearCacheDeleteThenRepushAcrossReplicas(t *testing.T) {
	reg := regtest.Registry(t)
	nearA, _ := nearStore(t)
	nearB, _ := nearStore(t)
	a := newHotEnvOn(t, reg, proxy.WithCache(nearA), proxy.WithLogger(quietLogger))
	b := newHotEnvOn(t, reg, proxy.WithCache(nearB), proxy.WithLogger(quietLogger))
	repo := "prod/repush-" + benchNonce(t)
	t.Cleanup(func() {
		for _, tag := range []string{"1.0.0", "@generation"} {
			_ = nearA.Delete(context.Background(), cache.TagKey(repo, tag))
		}
	})
	if resp := putManifest(t, a.gateway, repo, "1.0.0"); resp.StatusCode != http.StatusCreated {
		t.Fatalf("push: %s", resp.Status)
	}
	url := b.gateway + "/v2/" + repo + "/manifests/1.0.0"
	getManifest(t, url, "")
	warm, _ := getManifest(t, url, "")
	old := warm.Header.Get("Docker-Content-Digest")
	if warm.Header.Get("Portcullis-Cache") != "hit" {
		t.Fatal("b did not answer from its cache before the delete: the test would prove nothing")
	}
	req, _ := http.NewRequest(http.MethodDelete, a.gateway+"/v2/"+repo+"/manifests/"+old, nil)
	del, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	del.Body.Close()
	if del.StatusCode != http.StatusAccepted {
		t.Fatalf("delete: %s", del.Status)
	}
	// Other content under the same tag, through a (same empty config, another annotation).
	body := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[],"annotations":{"v":"2"}}`
	put, _ := http.NewRequest(http.MethodPut, a.gateway+"/v2/"+repo+"/manifests/1.0.0", strings.NewReader(body))
	put.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	repush, err := http.DefaultClient.Do(put)
	if err != nil {
		t.Fatal(err)
	}
	repush.Body.Close()
	right := func() (bool, string) {
		resp, got := getManifest(t, url, "")
		desc := fmt.Sprintf("%s digest %s (old %s), cache %q", resp.Status, resp.Header.Get("Docker-Content-Digest"), old, resp.Header.Get("Portcullis-Cache"))
		if repush.StatusCode == http.StatusCreated { // the new content, never the old
			return resp.StatusCode == http.StatusOK && resp.Header.Get("Docker-Content-Digest") != old && strings.Contains(string(got), `"v":"2"`), desc
		}
		return resp.StatusCode == http.StatusNotFound, desc // refused: the tag stays gone
	}
	// b hears of the delete and the re-push by pub/sub (milliseconds); from then on it must
	// never answer with the old content again (a copy kept from a racing read would).
	waitFor(t, "b follows the delete and the re-push", func() bool { ok, _ := right(); return ok })
	for i := range 50 {
		if ok, desc := right(); !ok {
			t.Fatalf("pull %d through b after the delete and the re-push (%s): %s", i, repush.Status, desc)
		}
	}
	t.Logf("re-push with other content: %s", repush.Status)
}
