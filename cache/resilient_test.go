package cache

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// within runs one call with a deadline far beyond every timeout involved and fails the
// test if the call reports an error or returned only because that deadline passed.
func within(t *testing.T, what string, call func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := call(ctx); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("%s returned only after the caller's deadline", what)
	}
}

// rawClient returns a client of addr whose own timeouts exceed every test deadline, so that
// only the store's per-call timeouts can bound a call to a hung server.
func rawClient(t *testing.T, addr string) redis.UniversalClient {
	c, err := NewRedisClient(RedisOptions{Addrs: []string{addr}, DialTimeout: time.Minute, ReadTimeout: time.Minute, WriteTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func wantStatus(t *testing.T, r *Resilient, up bool) {
	t.Helper()
	eventually(t, map[bool]string{true: "Status is up", false: "Status is down"}[up], func() bool {
		got, _ := r.Status()
		return got == up
	})
}

func TestResilientFailsOverAndBack(t *testing.T) {
	srv := startRedisServer(t)
	direct := rawClient(t, srv.addr)
	reader, mp := newMeter(t)
	mem := NewMemory(16 << 20)
	r := NewResilient(NewRedis(rawClient(t, srv.addr), WithTimeout(300*time.Millisecond), WithMeterProvider(mp)), mem,
		WithTimeout(300*time.Millisecond), WithProbeBackoff(20*time.Millisecond, 200*time.Millisecond), WithCheckInterval(time.Hour))
	t.Cleanup(r.Close)
	key := keyspace(t, nil)
	get := func(k string) (v []byte, ok bool) {
		within(t, "Get "+k, func(ctx context.Context) (err error) { v, ok, err = r.Get(ctx, k); return err })
		return v, ok
	}

	wantStatus(t, r, true)
	within(t, "Set while up", func(ctx context.Context) error { return r.Set(ctx, key("before"), []byte("v1"), time.Hour) })
	if got, err := direct.Get(bg(t), key("before")).Result(); err != nil || got != "v1" {
		t.Fatalf("the write did not reach Redis: %q, %v", got, err)
	}

	srv.kill()
	if v, ok := get(key("before")); !ok || string(v) != "v1" {
		t.Fatalf("Get after the crash = %q, %v; want v1 from memory", v, ok)
	}
	up, detail := r.Status()
	if up || !strings.Contains(detail, "unreachable") {
		t.Fatalf("Status after a failed call = %v, %q; want down", up, detail)
	}
	within(t, "Set while down", func(ctx context.Context) error { return r.Set(ctx, key("during"), []byte("v2"), time.Hour) })
	if v, ok := get(key("during")); !ok || string(v) != "v2" {
		t.Fatalf("Get while down = %q, %v; want v2", v, ok)
	}
	within(t, "Delete while down", func(ctx context.Context) error { return r.Delete(ctx, key("before")) })
	if _, ok := get(key("before")); ok {
		t.Fatal("a value deleted while down is still served")
	}
	var token string
	within(t, "Lock while down", func(ctx context.Context) (err error) {
		var ok bool
		if token, ok, err = r.Lock(ctx, key("lock"), time.Hour); err == nil && !ok {
			err = errors.New("not taken")
		}
		return err
	})
	within(t, "second Lock while down", func(ctx context.Context) error {
		if _, ok, err := r.Lock(ctx, key("lock"), time.Hour); err != nil || ok {
			return errors.New("the in-process lock is not exclusive")
		}
		return nil
	})
	if counter(t, reader, "portcullis.cache.redis.errors") == 0 {
		t.Error("no Redis error was counted")
	}

	srv.start() // same port, empty
	wantStatus(t, r, true)
	within(t, "Unlock of a lock taken while down", func(ctx context.Context) error { return r.Unlock(ctx, key("lock"), token) })
	if _, ok := mustLock(t, mem, key("lock"), time.Second); !ok {
		t.Fatal("the in-process lock was not released after recovery")
	}
	within(t, "Set after recovery", func(ctx context.Context) error { return r.Set(ctx, key("after"), []byte("v3"), time.Hour) })
	if got, err := direct.Get(bg(t), key("after")).Result(); err != nil || got != "v3" {
		t.Fatalf("after recovery the write did not reach Redis: %q, %v", got, err)
	}
	if _, ok := get(key("during")); ok {
		t.Fatal("after recovery a value only in memory was served: reads should go to Redis")
	}
	within(t, "Lock after recovery", func(ctx context.Context) error {
		_, ok, err := r.Lock(ctx, key("lock2"), time.Hour)
		if err == nil && !ok {
			err = errors.New("not taken")
		}
		return err
	})
	if n, err := direct.Exists(bg(t), key("lock2")).Result(); err != nil || n != 1 {
		t.Fatalf("after recovery the lock was not taken in Redis: %d, %v", n, err)
	}
}

func TestResilientHungRedis(t *testing.T) {
	srv := startRedisServer(t)
	// Neither the client nor the Redis store gives up before the caller's deadline: only
	// the Resilient's own per-call timeout can.
	r := NewResilient(NewRedis(rawClient(t, srv.addr), WithTimeout(time.Minute)), NewMemory(16<<20),
		WithTimeout(300*time.Millisecond), WithProbeBackoff(20*time.Millisecond, 200*time.Millisecond), WithCheckInterval(time.Hour))
	t.Cleanup(r.Close)
	key := keyspace(t, nil)
	wantStatus(t, r, true)
	within(t, "Set", func(ctx context.Context) error { return r.Set(ctx, key("k"), []byte("v"), time.Hour) })

	srv.pause()
	t.Cleanup(srv.resume)
	within(t, "Get from a hung Redis", func(ctx context.Context) error {
		v, ok, err := r.Get(ctx, key("k"))
		if err == nil && (!ok || string(v) != "v") {
			err = errors.New("value not served from memory")
		}
		return err
	})
	if up, _ := r.Status(); up {
		t.Fatal("a timed-out call did not mark Redis down")
	}

	srv.resume()
	wantStatus(t, r, true)
	within(t, "Get after resume", func(ctx context.Context) error {
		v, ok, err := r.Get(ctx, key("k"))
		if err == nil && (!ok || string(v) != "v") {
			err = errors.New("value not read back")
		}
		return err
	})
}

func TestResilientNoticesOutageWithoutCalls(t *testing.T) {
	srv := startRedisServer(t)
	r := NewResilient(NewRedis(rawClient(t, srv.addr)), NewMemory(1<<20),
		WithTimeout(300*time.Millisecond), WithProbeBackoff(20*time.Millisecond, 200*time.Millisecond), WithCheckInterval(20*time.Millisecond))
	t.Cleanup(r.Close)
	wantStatus(t, r, true)
	srv.kill()
	wantStatus(t, r, false)
	srv.start()
	wantStatus(t, r, true)
}

func TestResilientCallerCancelIsNotAnOutage(t *testing.T) {
	c := requireRedis(t)
	r := NewResilient(NewRedis(c), NewMemory(1<<20))
	t.Cleanup(r.Close)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := r.Get(ctx, keyspace(t, c)("k")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get with a cancelled context = %v, want context.Canceled", err)
	}
	if up, detail := r.Status(); !up {
		t.Fatalf("a caller's cancellation marked Redis down: %s", detail)
	}
}

func TestRedisCallTimeout(t *testing.T) {
	srv := startRedisServer(t)
	s := NewRedis(rawClient(t, srv.addr), WithTimeout(300*time.Millisecond))
	mustSet(t, s, "k", []byte("v"), time.Hour)
	srv.pause()
	t.Cleanup(srv.resume)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _, err := s.Get(ctx, "k")
	if !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		t.Fatalf("Get from a hung Redis = %v (caller's context: %v); want the per-call deadline to end it", err, ctx.Err())
	}
}

func TestResilientCloseLeavesNoGoroutines(t *testing.T) {
	addr := redisAddr()
	requireRedis(t)
	for _, tc := range []struct{ name, addr string }{{"up", addr}, {"down", closedAddr(t)}} {
		t.Run(tc.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			c, err := NewRedisClient(RedisOptions{Addrs: []string{tc.addr}, DialTimeout: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			r := NewResilient(NewRedis(c), NewMemory(1<<20), WithTimeout(200*time.Millisecond),
				WithProbeBackoff(time.Millisecond, 5*time.Millisecond), WithCheckInterval(time.Millisecond))
			key := keyspace(t, nil)
			_ = r.Set(bg(t), key("k"), []byte("v"), time.Second)
			_, _, _ = r.Get(bg(t), key("k"))
			_ = r.Delete(bg(t), key("k"))
			r.Close()
			r.Close()
			_ = c.Close()
			eventually(t, "goroutines return to their number before", func() bool {
				return runtime.NumGoroutine() <= before
			})
		})
	}
}
