package regtest

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portcullis-dev/portcullis/cache"
)

// RedisAddr is the Redis tests use: $REDIS_ADDR, or 127.0.0.1:6379.
func RedisAddr() string {
	if a := os.Getenv("REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// Redis returns a client of the real Redis at RedisAddr. When none answers the test is
// skipped with a loud message, or fails when CI=true. Keys matching any of cleanup
// (glob patterns) are deleted when the test ends.
func Redis(tb testing.TB, cleanup ...string) redis.UniversalClient {
	tb.Helper()
	addr := RedisAddr()
	c, err := cache.NewRedisClient(cache.RedisOptions{Addrs: []string{addr}, DialTimeout: 2 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		msg := "\n" + strings.Repeat("!", 78) + "\n!!! NO REDIS AT " + addr + " (" + err.Error() + "): this test is NOT RUN.\n" +
			"!!! Start one: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save \"\" --appendonly no, or set REDIS_ADDR.\n" +
			strings.Repeat("!", 78)
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, pattern := range cleanup {
			iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
			for iter.Next(ctx) {
				c.Del(ctx, iter.Val())
			}
		}
		_ = c.Close()
	})
	return c
}
