package cache

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Redis is a LockingStore in a Redis server, Sentinel group or Cluster, shared by every
// replica. Each call is bounded by the WithTimeout duration; for that bound to reach the
// socket, the client needs ContextTimeoutEnabled (NewRedisClient sets it).
type Redis struct {
	client  redis.UniversalClient
	timeout time.Duration
	m       *metrics
}

// unlockScript deletes a lock only while it still holds the caller's token.
var unlockScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0`)

// extendScript renews a lock's expiry (ARGV[2] ms) only while it holds the caller's token.
var extendScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0`)

// NewRedis returns a Redis store over client; the caller keeps ownership of client and
// closes it.
func NewRedis(client redis.UniversalClient, opts ...Option) *Redis {
	s := newSettings(opts)
	return &Redis{client: client, timeout: s.timeout, m: newMetrics(s.meter)}
}

// Get returns the value under key.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, bool, error) {
	cctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	v, err := r.client.Get(cctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		r.m.lookup(ctx, "redis", key, false)
		return nil, false, nil
	}
	if err != nil {
		return nil, false, r.fail(ctx, "get", key, err)
	}
	r.m.lookup(ctx, "redis", key, true)
	return v, true, nil
}

// Set stores value under key for ttl (no expiry if ttl <= 0).
func (r *Redis) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	cctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if err := r.client.Set(cctx, key, value, millis(ttl)).Err(); err != nil {
		return r.fail(ctx, "set", key, err)
	}
	return nil
}

// Delete removes key.
func (r *Redis) Delete(ctx context.Context, key string) error {
	cctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if err := r.client.Del(cctx, key).Err(); err != nil {
		return r.fail(ctx, "delete", key, err)
	}
	return nil
}

// Lock takes key with SET key token NX PX ttl.
func (r *Redis) Lock(ctx context.Context, key string, ttl time.Duration) (string, bool, error) {
	if ttl <= 0 {
		return "", false, errLockTTL
	}
	cctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	token := newToken()
	ok, err := r.client.SetNX(cctx, key, token, millis(ttl)).Result()
	if err != nil {
		return "", false, r.fail(ctx, "lock", key, err)
	}
	if !ok {
		return "", false, nil
	}
	return token, true, nil
}

// Extend renews key's expiry with a compare-and-pexpire script.
func (r *Redis) Extend(ctx context.Context, key, token string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, errLockTTL
	}
	cctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	n, err := extendScript.Run(cctx, r.client, []string{key}, token, millis(ttl).Milliseconds()).Int64()
	if err != nil {
		return false, r.fail(ctx, "extend", key, err)
	}
	return n == 1, nil
}

// Unlock releases key with a compare-and-delete script, so it never removes a lock that
// expired and was taken by someone else.
func (r *Redis) Unlock(ctx context.Context, key, token string) error {
	cctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if err := unlockScript.Run(cctx, r.client, []string{key}, token).Err(); err != nil {
		return r.fail(ctx, "unlock", key, err)
	}
	return nil
}

// Ping checks that Redis answers.
func (r *Redis) Ping(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if err := r.client.Ping(cctx).Err(); err != nil {
		return r.fail(ctx, "ping", "", err)
	}
	return nil
}

// fail counts a Redis error, unless the caller cancelled the call, and wraps it. A call
// that ran out of time counts: a slow Redis is a failing one.
func (r *Redis) fail(ctx context.Context, op, key string, err error) error {
	if !errors.Is(ctx.Err(), context.Canceled) {
		r.m.redisErrors.Add(ctx, 1, metric.WithAttributes(attribute.String("op", op)))
	}
	if key == "" {
		return fmt.Errorf("redis %s: %w", op, err)
	}
	return fmt.Errorf("redis %s %s: %w", op, key, err)
}

// millis rounds a positive ttl up to whole milliseconds, the resolution of PX; zero or
// less stays zero (no expiry).
func millis(ttl time.Duration) time.Duration {
	if ttl <= 0 {
		return 0
	}
	return (ttl + time.Millisecond - 1).Truncate(time.Millisecond)
}
