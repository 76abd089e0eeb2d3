package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisAddr is the shared Redis the tests use: $REDIS_ADDR or 127.0.0.1:6379.
func redisAddr() string {
	if a := os.Getenv("REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// unavailable skips the test loudly, or fails it on CI (CI=true), when a real component
// it needs is missing.
func unavailable(t *testing.T, what, hint string) {
	t.Helper()
	msg := "\n" + strings.Repeat("!", 78) + "\n" +
		"!!! " + what + ": this test needs it and is NOT RUN.\n" +
		"!!! " + hint + "\n" +
		strings.Repeat("!", 78)
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// requireRedis returns a client of the shared Redis, which the test's keys are removed
// from at the end, or skips/fails per unavailable.
func requireRedis(t *testing.T) redis.UniversalClient {
	t.Helper()
	addr := redisAddr()
	c, err := NewRedisClient(RedisOptions{Addrs: []string{addr}, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		unavailable(t, "NO REDIS AT "+addr+" ("+err.Error()+")",
			`Start one: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no, or set REDIS_ADDR.`)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// keyspace returns a function naming keys unique to this test, and removes every key
// containing its id (including lock keys) from c, if not nil, when the test ends.
func keyspace(t *testing.T, c redis.UniversalClient) func(name string) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	id := "t" + hex.EncodeToString(b[:])
	if c != nil {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			iter := c.Scan(ctx, 0, "*"+id+"*", 1000).Iterator()
			for iter.Next(ctx) {
				c.Del(ctx, iter.Val())
			}
			if err := iter.Err(); err != nil {
				t.Logf("cleaning up keys %s: %v", id, err)
			}
		})
	}
	return func(name string) string { return "portcullis:test:" + id + ":" + name }
}

// eventually calls cond until it returns true, failing the test if that takes longer than
// a generous deadline; it guards against hangs and measures nothing.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// bg returns a context for one store call, with a deadline far beyond any call's timeout.
func bg(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}
