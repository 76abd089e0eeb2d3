package proxy_test

import (
	"context"
	"net/http"
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
