package cache_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/internal/regtest"
)

// TestRedisCluster runs the store suite, Hold and the near cache's invalidations against
// a real Redis Cluster of three masters: keys of one call (GetMany, GetManyTTL) fall in
// different slots and nodes, and pub/sub crosses nodes.
func TestRedisCluster(t *testing.T) {
	addrs := regtest.RedisCluster(t, 3)
	newClient := func(t *testing.T, addrs []string) redis.UniversalClient {
		c, err := cache.NewRedisClient(cache.RedisOptions{Addrs: addrs, Cluster: true, DialTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	t.Run("Suite", func(t *testing.T) {
		c := newClient(t, addrs)
		cache.RunStoreSuite(t, func(t *testing.T) (cache.LockingStore, func(string) string) {
			return cache.NewRedis(c, cache.WithTimeout(5*time.Second)), cache.Keyspace(t)
		})
	})
	t.Run("SuiteResilient", func(t *testing.T) {
		c := newClient(t, addrs)
		cache.RunStoreSuite(t, func(t *testing.T) (cache.LockingStore, func(string) string) {
			r := cache.NewResilient(cache.NewRedis(c, cache.WithTimeout(5*time.Second)), cache.NewMemory(16<<20), cache.WithTimeout(5*time.Second))
			t.Cleanup(func() {
				if up, detail := r.Status(); !up {
					t.Errorf("the Cluster was marked down during the suite: %s", detail)
				}
				r.Close()
			})
			return r, cache.Keyspace(t)
		})
	})
	t.Run("SeedNodeOnly", func(t *testing.T) {
		// One seed address with cluster: true finds the whole Cluster.
		c := newClient(t, addrs[:1])
		s := cache.NewRedis(c, cache.WithTimeout(5*time.Second))
		key := cache.Keyspace(t)
		ctx := context.Background()
		var keys []string
		for i := range 30 {
			k := key(fmt.Sprint(i))
			keys = append(keys, k)
			if err := s.Set(ctx, k, []byte(k), time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.GetMany(ctx, keys...)
		if err != nil {
			t.Fatal(err)
		}
		for i, l := range got {
			if !l.OK || string(l.Value) != keys[i] {
				t.Fatalf("GetMany[%d] = %+v", i, l)
			}
		}
		// The 30 keys really are spread over the three masters.
		nodes := map[string]bool{}
		for _, k := range keys {
			slot, err := c.(*redis.ClusterClient).ClusterKeySlot(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			nodes[fmt.Sprint(slot*3/16384)] = true
		}
		if len(nodes) < 2 {
			t.Fatalf("keys all in one third of the slots; the test proves nothing about cross-slot reads")
		}
	})
	t.Run("Hold", func(t *testing.T) {
		c := newClient(t, addrs)
		cache.RunHoldExcludes(t, cache.NewRedis(c, cache.WithTimeout(5*time.Second)), cache.Keyspace(t)("hold"))
	})
	t.Run("NearInvalidation", func(t *testing.T) {
		// Each replica's client seeded with a different node.
		near := func(seed string) *cache.Near {
			c := newClient(t, []string{seed})
			res := cache.NewResilient(cache.NewRedis(c, cache.WithTimeout(5*time.Second)), cache.NewMemory(16<<20), cache.WithTimeout(5*time.Second))
			n := cache.NewNear(res, c, cache.NearOptions{MaxAge: time.Hour})
			t.Cleanup(func() { n.Close(); res.Close() })
			waitLive(t, n)
			return n
		}
		a, b := near(addrs[0]), near(addrs[2])
		ctx := context.Background()
		for i := range 10 {
			k := cache.TagKey("team/app-"+t.Name(), fmt.Sprint(i))
			heard := b.Heard()
			if err := a.Set(ctx, k, []byte("v1"), time.Hour); err != nil {
				t.Fatal(err)
			}
			waitUntil(t, "b heard a's write", func() bool { return b.Heard() > heard })
			wantNear(t, b, k, "v1")
			if err := a.Set(ctx, k, []byte("v2"), time.Hour); err != nil {
				t.Fatal(err)
			}
			waitUntil(t, "b sees a's second write", func() bool { v, _, _ := b.Get(ctx, k); return bytes.Equal(v, []byte("v2")) })
		}
	})
}

func waitLive(t *testing.T, n *cache.Near) {
	t.Helper()
	waitUntil(t, "the near cache subscribed", func() bool { ok, _ := n.Live(); return ok })
}

// waitUntil polls cond, failing after a generous deadline: a hang guard, not a speed test.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func wantNear(t *testing.T, s cache.Store, k, want string) {
	t.Helper()
	v, ok, err := s.Get(context.Background(), k)
	if err != nil || !ok || string(v) != want {
		t.Fatalf("Get(%s) = %q, %v, %v; want %q", k, v, ok, err, want)
	}
}
