package cache

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// Flight runs each computation once across every replica sharing its store: callers in
// one process share a single attempt, and replicas take turns through the store's lock.
type Flight struct {
	store        LockingStore
	group        singleflight.Group
	pollMin      time.Duration
	pollMax      time.Duration
	computations atomic.Int64
	m            *metrics
}

// FlightOptions tune one Do call; zero fields take the documented defaults.
type FlightOptions struct {
	// TTL is how long a computed value is stored; default 24h.
	TTL time.Duration
	// TTLOf, when set, chooses the TTL of each computed value (TTL when it returns zero or
	// less): e.g. a short one for a negative answer, so it is remembered only briefly.
	TTLOf func(value []byte) time.Duration
	// LockTTL is how long a lock outlives a holder that died; the holder renews it every
	// LockTTL/3 while computing. Keep it well below ComputeTimeout; default 15s.
	LockTTL time.Duration
	// ComputeTimeout bounds one computation; default 5m.
	ComputeTimeout time.Duration
	// MaxWait bounds the wait for another holder's value; default ComputeTimeout+LockTTL.
	MaxWait time.Duration
}

func (o FlightOptions) withDefaults() FlightOptions {
	if o.TTL <= 0 {
		o.TTL = 24 * time.Hour
	}
	if o.LockTTL <= 0 {
		o.LockTTL = 15 * time.Second
	}
	o.LockTTL = max(o.LockTTL, 3*time.Millisecond)
	if o.ComputeTimeout <= 0 {
		o.ComputeTimeout = 5 * time.Minute
	}
	if o.MaxWait <= 0 {
		o.MaxWait = o.ComputeTimeout + o.LockTTL
	}
	return o
}

// NewFlight returns a Flight coordinating through store (usually a Resilient).
func NewFlight(store LockingStore, opts ...Option) *Flight {
	s := newSettings(opts)
	return &Flight{store: store, pollMin: s.pollMin, pollMax: s.pollMax, m: newMetrics(s.meter)}
}

// Computations returns how many times this Flight has called a compute function.
func (f *Flight) Computations() int64 { return f.computations.Load() }

// Do returns the value stored under key, computing and storing it first if needed. When
// the value is missing, one attempt per process runs (callers joining it share the options
// of the caller that started it); it takes the lock LockKey(key), or
// polls for the value while another replica holds it, taking over if that lock expires
// with no value. The attempt continues (bounded by MaxWait and ComputeTimeout) when every
// caller gives up, so its value still lands; a caller whose ctx ends gets ctx.Err() at
// once. If the store fails, compute runs anyway and its value is returned. Errors from
// compute are returned, never stored. The returned slice is the caller's own.
func (f *Flight) Do(ctx context.Context, key string, compute func(context.Context) ([]byte, error), o FlightOptions) ([]byte, error) {
	if v, ok, err := f.store.Get(ctx, key); err == nil && ok {
		return v, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	detached := context.WithoutCancel(ctx)
	ch := f.group.DoChan(key, func() (any, error) {
		return f.attempt(detached, key, compute, o)
	})
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		v := r.Val.([]byte)
		if r.Shared {
			v = bytes.Clone(v)
		}
		return v, nil
	}
}

// attempt gets the value for key by computing it under the lock or waiting for it.
func (f *Flight) attempt(ctx context.Context, key string, compute func(context.Context) ([]byte, error), o FlightOptions) ([]byte, error) {
	wctx, cancel := context.WithTimeout(ctx, o.MaxWait)
	defer cancel()
	lockKey := LockKey(key)
	delay := f.pollMin
	for waited := false; ; {
		if v, ok, err := f.store.Get(wctx, key); err == nil && ok {
			return v, nil
		}
		token, locked, err := f.store.Lock(wctx, lockKey, o.LockTTL)
		if err != nil {
			if werr := wctx.Err(); werr != nil {
				return nil, fmt.Errorf("waiting for %s: %w", key, werr)
			}
			// No coordination possible: compute here rather than fail.
			return f.computeAndStore(ctx, key, "", compute, o)
		}
		if locked {
			// The value may have landed between Get and Lock.
			if v, ok, err := f.store.Get(wctx, key); err == nil && ok {
				_ = f.store.Unlock(ctx, lockKey, token)
				return v, nil
			}
			return f.computeAndStore(ctx, key, token, compute, o)
		}
		if !waited {
			waited = true
			kinded(ctx, f.m.lockWaits, key)
		}
		if err := sleep(wctx, jitter(delay)); err != nil {
			return nil, fmt.Errorf("waiting for %s: %w", key, err)
		}
		delay = min(2*delay, f.pollMax)
	}
}

// computeAndStore runs compute while renewing the lock held by token (if any), stores a
// successful value and then releases the lock, so waiters find the value first.
func (f *Flight) computeAndStore(ctx context.Context, key, token string, compute func(context.Context) ([]byte, error), o FlightOptions) ([]byte, error) {
	lockKey := LockKey(key)
	stop := func() {}
	if token != "" {
		stop = f.renew(ctx, lockKey, token, o.LockTTL)
	}
	v, err := f.run(ctx, key, compute, o.ComputeTimeout)
	stop()
	if err == nil {
		ttl := o.TTL
		if o.TTLOf != nil {
			if d := o.TTLOf(v); d > 0 {
				ttl = d
			}
		}
		_ = f.store.Set(ctx, key, v, ttl) // the value is good even if it cannot be shared
	}
	if token != "" {
		_ = f.store.Unlock(ctx, lockKey, token)
	}
	return v, err
}

// run calls compute once, bounded by timeout, turning a panic into an error.
func (f *Flight) run(ctx context.Context, key string, compute func(context.Context) ([]byte, error), timeout time.Duration) (v []byte, err error) {
	f.computations.Add(1)
	kinded(ctx, f.m.computations, key)
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			v, err = nil, fmt.Errorf("computing %s: panic: %v", key, p)
		}
	}()
	v, err = compute(cctx)
	if err != nil {
		return nil, fmt.Errorf("computing %s: %w", key, err)
	}
	return v, nil
}

// renew extends the lock every ttl/3 until the returned stop is called.
func (f *Flight) renew(ctx context.Context, lockKey, token string, ttl time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_, _ = f.store.Extend(ctx, lockKey, token, ttl)
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// jitter returns a random duration between d/2 and d.
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}
