package cache

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// TTLGetter reads several keys, each with its remaining time to live, in one round trip.
// Near needs it so that a value copied into process memory never outlives its expiry in
// the store it came from.
type TTLGetter interface {
	// GetManyTTL is GetMany that also fills each found Lookup's TTL.
	GetManyTTL(ctx context.Context, keys ...string) ([]Lookup, error)
}

// GetManyTTL reads keys from memory with their remaining TTL.
func (s *Memory) GetManyTTL(ctx context.Context, keys ...string) ([]Lookup, error) {
	now := time.Now()
	out := make([]Lookup, len(keys))
	for i, k := range keys {
		v, expires, ok := s.getExpiry(k, now)
		s.m.lookup(ctx, "memory", k, ok)
		if ok {
			out[i] = Lookup{Value: v, OK: true}
			if !expires.IsZero() {
				out[i].TTL = expires.Sub(now)
			}
		}
	}
	return out, nil
}

// getExpiry is get that also returns the entry's expiry (zero: never).
func (s *Memory) getExpiry(key string, now time.Time) ([]byte, time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.items[key]
	if !ok {
		return nil, time.Time{}, false
	}
	e := el.Value.(*memEntry)
	if !e.expires.IsZero() && !now.Before(e.expires) {
		s.remove(el)
		return nil, time.Time{}, false
	}
	s.order.MoveToFront(el)
	return append([]byte{}, e.value...), e.expires, true
}

// GetManyTTL reads keys with GET and PTTL in one pipeline (split by node on a Cluster).
// A key that expires between its GET and its PTTL is reported missing.
func (r *Redis) GetManyTTL(ctx context.Context, keys ...string) ([]Lookup, error) {
	cctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	gets := make([]*redis.StringCmd, len(keys))
	ttls := make([]*redis.DurationCmd, len(keys))
	_, err := r.client.Pipelined(cctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			gets[i] = p.Get(cctx, k)
			ttls[i] = p.PTTL(cctx, k)
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
	for i := range keys {
		v, err := gets[i].Bytes()
		switch {
		case errors.Is(err, redis.Nil):
			r.m.lookup(ctx, "redis", keys[i], false)
			continue
		case err != nil:
			return nil, r.fail(ctx, "get", keys[i], err)
		}
		ttl, err := ttls[i].Result()
		if err != nil {
			return nil, r.fail(ctx, "pttl", keys[i], err)
		}
		// PTTL: -1 no expiry, -2 gone since the GET; go-redis keeps those as raw
		// durations of -1ns and -2ns.
		switch {
		case ttl == -2:
			r.m.lookup(ctx, "redis", keys[i], false)
			continue
		case ttl < 0:
			ttl = 0
		case ttl == 0:
			ttl = time.Millisecond // about to expire: keep it no longer than that
		}
		r.m.lookup(ctx, "redis", keys[i], true)
		out[i] = Lookup{Value: v, OK: true, TTL: ttl}
	}
	return out, nil
}

// GetManyTTL reads keys with their TTL from the primary while it is up, else from the
// fallback.
func (r *Resilient) GetManyTTL(ctx context.Context, keys ...string) ([]Lookup, error) {
	pt, ok := r.primary.(TTLGetter)
	if !ok {
		return nil, errors.New("primary store does not report TTLs")
	}
	var out []Lookup
	done, err := r.viaPrimary(ctx, func(ctx context.Context) (err error) {
		out, err = pt.GetManyTTL(ctx, keys...)
		return err
	})
	if err != nil || done {
		return out, err
	}
	if t, ok := r.fallback.(TTLGetter); ok {
		return t.GetManyTTL(ctx, keys...)
	}
	return nil, errors.New("fallback store does not report TTLs")
}
