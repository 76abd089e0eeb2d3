package cache

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// Lookup is one key's answer to GetMany.
type Lookup struct {
	// Value is what is stored under the key, when OK.
	Value []byte
	// OK is false when nothing is stored under it.
	OK bool
	// TTL is the value's remaining time to live as GetManyTTL reports it; zero means no
	// expiry. GetMany leaves it zero.
	TTL time.Duration
}

// MultiGetter reads several keys in one round trip. The stores of this package implement
// it; a caller with keys it knows up front (the proxy's hot path) uses it to pay for one
// round trip instead of one per key.
type MultiGetter interface {
	// GetMany returns, for each key in order, what is stored under it.
	GetMany(ctx context.Context, keys ...string) ([]Lookup, error)
}

// Getter is the read half of a Store.
type Getter interface {
	Get(ctx context.Context, key string) (value []byte, ok bool, err error)
}

// GetMany reads keys from s in one round trip when s is a MultiGetter, else one by one.
func GetMany(ctx context.Context, s Getter, keys ...string) ([]Lookup, error) {
	if m, ok := s.(MultiGetter); ok {
		return m.GetMany(ctx, keys...)
	}
	out := make([]Lookup, len(keys))
	for i, k := range keys {
		v, ok, err := s.Get(ctx, k)
		if err != nil {
			return nil, err
		}
		out[i] = Lookup{Value: v, OK: ok}
	}
	return out, nil
}

// GetMany reads keys from memory.
func (s *Memory) GetMany(ctx context.Context, keys ...string) ([]Lookup, error) {
	out := make([]Lookup, len(keys))
	for i, k := range keys {
		v, ok, _ := s.Get(ctx, k)
		out[i] = Lookup{Value: v, OK: ok}
	}
	return out, nil
}

// GetMany reads keys in one pipeline of GETs: one round trip. It does not use MGET, which
// a Redis Cluster refuses for keys in different hash slots (CROSSSLOT); go-redis splits a
// pipeline by node instead.
func (r *Redis) GetMany(ctx context.Context, keys ...string) ([]Lookup, error) {
	cctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	cmds := make([]*redis.StringCmd, len(keys))
	_, err := r.client.Pipelined(cctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.Get(cctx, k)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		key := ""
		if len(keys) > 0 {
			key = keys[0]
		}
		return nil, r.fail(ctx, "get", key, err)
	}
	out := make([]Lookup, len(keys))
	for i, c := range cmds {
		v, err := c.Bytes()
		switch {
		case errors.Is(err, redis.Nil):
			r.m.lookup(ctx, "redis", keys[i], false)
		case err != nil:
			return nil, r.fail(ctx, "get", keys[i], err)
		default:
			r.m.lookup(ctx, "redis", keys[i], true)
			out[i] = Lookup{Value: v, OK: true}
		}
	}
	return out, nil
}

// GetMany reads keys from the primary in one round trip while it is up, else from the
// fallback, like Get.
func (r *Resilient) GetMany(ctx context.Context, keys ...string) ([]Lookup, error) {
	var out []Lookup
	done, err := r.viaPrimary(ctx, func(ctx context.Context) (err error) {
		out, err = GetMany(ctx, r.primary, keys...)
		return err
	})
	if err != nil || done {
		return out, err
	}
	return GetMany(ctx, r.fallback, keys...)
}
