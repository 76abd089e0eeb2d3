package cache

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// nearReplica is one replica's near cache over its own client of the Redis at addr: the
// way two gateway processes share one Redis.
func nearReplica(t *testing.T, addr string, o NearOptions) (*Near, redis.UniversalClient) {
	t.Helper()
	c, err := NewRedisClient(RedisOptions{Addrs: []string{addr}, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	res := NewResilient(NewRedis(c, WithTimeout(2*time.Second)), NewMemory(8<<20), WithTimeout(2*time.Second))
	n := NewNear(res, c, o)
	t.Cleanup(func() { n.Close(); res.Close(); _ = c.Close() })
	waitLive(t, n)
	return n, c
}

func waitLive(t *testing.T, n *Near) {
	t.Helper()
	eventually(t, "the near cache's subscription is confirmed", func() bool { ok, _ := n.Live(); return ok })
}

// settled runs write on a and waits until b has heard the invalidations it published, so
// that none arrives later to drop a copy the test expects b to keep.
func settled(t *testing.T, b *Near, messages uint64, write func()) {
	t.Helper()
	before := b.heard.Load()
	write()
	eventually(t, "b heard the invalidation", func() bool { return b.heard.Load() >= before+messages })
}

// allKinds keeps copies of every key, the test suite's included.
var allKinds = []string{KindOther, KindTag, KindManifest, KindAccess}

// TestNearConformance runs the store suite against a Near over Redis that keeps copies of
// every key.
func TestNearConformance(t *testing.T) {
	c := requireRedis(t)
	testStore(t, func(t *testing.T) (LockingStore, func(string) string) {
		n, _ := nearReplica(t, redisAddr(), NearOptions{Kinds: allKinds, Channel: "portcullis:test:near:" + newToken()})
		return n, keyspace(t, c)
	})
}

// TestNearServesWithoutRedis: a copy is served without asking Redis (a value changed
// behind Near's back is not seen), until a write through any replica invalidates it.
func TestNearServesWithoutRedis(t *testing.T) {
	raw := requireRedis(t)
	key := keyspace(t, raw)
	ch := "portcullis:test:near:" + newToken()
	a, _ := nearReplica(t, redisAddr(), NearOptions{Kinds: allKinds, Channel: ch, MaxAge: time.Hour})
	b, _ := nearReplica(t, redisAddr(), NearOptions{Kinds: allKinds, Channel: ch, MaxAge: time.Hour})
	k := key("tag")
	settled(t, b, 1, func() { mustSet(t, a, k, []byte("v1"), time.Hour) })
	wantValue(t, b, k, []byte("v1")) // b keeps a copy
	if err := raw.Set(bg(t), k, "behind-its-back", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	wantValue(t, b, k, []byte("v1")) // served from the copy: no Redis read
	settled(t, b, 1, func() { mustSet(t, a, k, []byte("v2"), time.Hour) })
	wantValue(t, b, k, []byte("v2"))
	// A delete through a replica is seen too; so is a flush.
	settled(t, b, 1, func() {
		if err := a.Delete(bg(t), k); err != nil {
			t.Fatal(err)
		}
	})
	wantMiss(t, b, k)
	// The miss is kept too (no Redis read for it), until a write invalidates it.
	if err := raw.Set(bg(t), k, "behind-its-back", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	wantMiss(t, b, k)
	mustSet(t, a, k, []byte("v3"), time.Hour)
	eventually(t, "b sees a's write after a kept miss", func() bool { v, _ := mustGet(t, b, k); return string(v) == "v3" })
	if err := raw.Set(bg(t), k, "v4", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(bg(t)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b drops its copies on a flush", func() bool { v, _ := mustGet(t, b, k); return string(v) == "v4" })
}

// TestNearCopyNeverOutlivesTTL: a copy read from Redis expires no later than the value in
// Redis (an access memo must not outlive a revoked credential's memo), nor after MaxAge.
func TestNearCopyNeverOutlivesTTL(t *testing.T) {
	raw := requireRedis(t)
	key := keyspace(t, raw)
	n, _ := nearReplica(t, redisAddr(), NearOptions{Kinds: allKinds, Channel: "portcullis:test:near:" + newToken(), MaxAge: time.Hour})
	k := key("access")
	setAt := time.Now()
	if err := raw.Set(bg(t), k, "1", 2*time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	wantValue(t, n, k, []byte("1")) // copied with what is left of its TTL, about 1s
	// A copy kept with a fresh full TTL would live until about 3s after the Set.
	time.Sleep(time.Until(setAt.Add(2200 * time.Millisecond)))
	wantMiss(t, n, k)

	// MaxAge bounds copies of values without an expiry.
	short, _ := nearReplica(t, redisAddr(), NearOptions{Kinds: allKinds, Channel: "portcullis:test:near:" + newToken(), MaxAge: 200 * time.Millisecond})
	k2 := key("noexpiry")
	if err := raw.Set(bg(t), k2, "old", 0).Err(); err != nil {
		t.Fatal(err)
	}
	wantValue(t, short, k2, []byte("old"))
	if err := raw.Set(bg(t), k2, "new", 0).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	wantValue(t, short, k2, []byte("new"))
}

// TestNearKindsOnly: keys of other kinds are never copied.
func TestNearKindsOnly(t *testing.T) {
	raw := requireRedis(t)
	n, _ := nearReplica(t, redisAddr(), NearOptions{Channel: "portcullis:test:near:" + newToken()})
	k := FindingsKey("sha256:"+newToken()+newToken(), "rev")
	t.Cleanup(func() { raw.Del(context.Background(), k) })
	mustSet(t, n, k, []byte("a"), time.Minute)
	wantValue(t, n, k, []byte("a"))
	if err := raw.Set(bg(t), k, "b", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	wantValue(t, n, k, []byte("b"))
}

// TestNearRacingWrites: readers on one replica race writers on another; once the writes
// stop, the reader's replica must converge on the last value and keep it. A copy kept from
// a read that raced an invalidation would stay stale (MaxAge is an hour here).
func TestNearRacingWrites(t *testing.T) {
	raw := requireRedis(t)
	key := keyspace(t, raw)
	ch := "portcullis:test:near:" + newToken()
	a, _ := nearReplica(t, redisAddr(), NearOptions{Kinds: allKinds, Channel: ch, MaxAge: time.Hour})
	b, _ := nearReplica(t, redisAddr(), NearOptions{Kinds: allKinds, Channel: ch, MaxAge: time.Hour})
	keys := []string{key("k0"), key("k1"), key("k2")}
	const writes = 150
	var stop atomic.Bool
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				_, _ = b.GetMany(context.Background(), keys[r%len(keys)], keys[(r+1)%len(keys)])
			}
		}()
	}
	var wwg sync.WaitGroup
	for _, k := range keys {
		wwg.Add(1)
		go func() {
			defer wwg.Done()
			for i := range writes {
				if err := a.Set(context.Background(), k, []byte(strconv.Itoa(i)), time.Hour); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wwg.Wait()
	last := []byte(strconv.Itoa(writes - 1))
	for _, k := range keys {
		eventually(t, "b converges on "+k, func() bool { v, _ := mustGet(t, b, k); return bytes.Equal(v, last) })
	}
	stop.Store(true)
	wg.Wait()
	for _, k := range keys {
		wantValue(t, b, k, last)
	}
}

// TestNearDropsCopiesWhenSubscriptionLost: a replica whose subscription is cut may have
// missed invalidations, so it drops every copy and reads Redis until it has resubscribed.
func TestNearDropsCopiesWhenSubscriptionLost(t *testing.T) {
	srv := startRedisServer(t)
	raw := redis.NewClient(&redis.Options{Addr: srv.addr})
	t.Cleanup(func() { _ = raw.Close() })
	n, _ := nearReplica(t, srv.addr, NearOptions{Kinds: allKinds, MaxAge: time.Hour, PingEvery: 200 * time.Millisecond})
	k := TagKey("team/app", "1.0.0")
	if err := raw.Set(bg(t), k, "v1", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	wantValue(t, n, k, []byte("v1"))
	// A write no replica was told about, then the subscription is cut (as by a network
	// failure or a Redis restart): the invalidation for it could have been lost there.
	if err := raw.Set(bg(t), k, "v2", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	wantValue(t, n, k, []byte("v1"))
	if err := raw.ClientKillByFilter(bg(t), "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the replica drops its copies", func() bool { v, _ := mustGet(t, n, k); return string(v) == "v2" })
	waitLive(t, n) // resubscribed

	// A frozen Redis (no error, no answer): the unanswered ping counts as a loss.
	wantValue(t, n, k, []byte("v2"))
	srv.pause()
	eventually(t, "a frozen subscription counts as lost", func() bool { ok, _ := n.Live(); return !ok })
	srv.resume()
	waitLive(t, n)
	if err := raw.Set(bg(t), k, "v3", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	wantValue(t, n, k, []byte("v3"))
}

// TestNearHostileMessages: a malformed or unknown message on the channel (anyone with
// access to Redis can publish) drops every copy; it never keeps a stale one or panics.
func TestNearHostileMessages(t *testing.T) {
	raw := requireRedis(t)
	key := keyspace(t, raw)
	ch := "portcullis:test:near:" + newToken()
	n, _ := nearReplica(t, redisAddr(), NearOptions{Kinds: allKinds, Channel: ch, MaxAge: time.Hour})
	k := key("k")
	for i, msg := range []string{"", " ", "x", "x y", "x del", "x del\n", "x flush\n" + k, "\x00\xff", fmt.Sprintf("%0100000d", 1)} {
		// n hears its own invalidation before the copy is read, so that no message of an
		// earlier round is still on its way to drop it.
		settled(t, n, 1, func() { mustSet(t, n, k, []byte("old"), time.Hour) })
		wantValue(t, n, k, []byte("old"))
		if err := raw.Set(bg(t), k, "new"+strconv.Itoa(i), time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
		settled(t, n, 1, func() {
			if err := raw.Publish(bg(t), ch, msg).Err(); err != nil {
				t.Fatal(err)
			}
		})
		want := "new" + strconv.Itoa(i)
		if msg == "x del" || msg == "x del\n" {
			// A delete naming no key drops nothing, and the copy stays: nothing wrong was
			// claimed.
			want = "old"
		}
		if v, _ := mustGet(t, n, k); string(v) != want {
			t.Fatalf("after message %q: Get = %q, want %q", trunc([]byte(msg)), trunc(v), want)
		}
	}
}

// TestNearWithRedisDown: with no Redis, Near reads and writes through to the fallback,
// keeps no copies and does not try to tell other replicas of writes that stay here.
func TestNearWithRedisDown(t *testing.T) {
	c, err := NewRedisClient(RedisOptions{Addrs: []string{closedAddr(t)}, DialTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	res := NewResilient(NewRedis(c), NewMemory(1<<20), WithTimeout(time.Second))
	n := NewNear(res, c, NearOptions{Kinds: allKinds})
	t.Cleanup(func() { n.Close(); res.Close() })
	k := keyspace(t, nil)("k")
	_, _, _ = res.Get(bg(t), k) // marks Redis down
	if up, _ := res.Status(); up {
		t.Fatal("Resilient still thinks the closed address is up")
	}
	if err := n.Set(bg(t), k, []byte("v"), time.Minute); err != nil {
		t.Fatalf("Set with Redis down: %v (the write stays in this process: nothing to publish)", err)
	}
	wantValue(t, n, k, []byte("v"))
	if live, why := n.Live(); live || why == "" {
		t.Fatalf("Live() = %v, %q with no Redis", live, why)
	}
}
