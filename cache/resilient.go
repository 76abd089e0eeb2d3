package cache

import (
	"context"
	"strings"
	"sync"
	"time"
)

// Primary is the shared store a Resilient prefers, usually Redis.
type Primary interface {
	LockingStore
	// Ping reports whether the store answers.
	Ping(ctx context.Context) error
}

// Resilient is a LockingStore that uses a shared primary (Redis) while it answers and an
// in-process fallback (Memory) while it does not. Every write also goes to the fallback,
// so values this process wrote stay readable during an outage. A failed or slow primary
// call marks the primary down; from then on calls go straight to the fallback, and locks
// exclude only this process, until a background probe finds the primary answering again.
// Writes and deletes made meanwhile stay in this process: they never reach the primary.
type Resilient struct {
	primary    Primary
	fallback   LockingStore
	timeout    time.Duration
	probeMin   time.Duration
	probeMax   time.Duration
	checkEvery time.Duration

	mu     sync.Mutex
	up     bool
	since  time.Time
	reason string

	wake   chan struct{} // the primary was just marked down
	cancel context.CancelFunc
	done   chan struct{}
}

// Lock tokens name the store that issued them, so Extend and Unlock go back to it.
const (
	primaryToken  = "p."
	fallbackToken = "f."
)

// NewResilient returns a Resilient over primary and fallback and starts its probe; Close
// stops the probe (primary and fallback stay open, their owner closes them).
func NewResilient(primary Primary, fallback LockingStore, opts ...Option) *Resilient {
	s := newSettings(opts)
	ctx, cancel := context.WithCancel(context.Background())
	r := &Resilient{
		primary: primary, fallback: fallback, timeout: s.timeout,
		probeMin: s.probeMin, probeMax: s.probeMax, checkEvery: s.checkEvery,
		up: true, since: time.Now(),
		wake: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{}),
	}
	go r.watch(ctx)
	return r
}

// Get reads from the primary, or from the fallback while the primary is down.
func (r *Resilient) Get(ctx context.Context, key string) ([]byte, bool, error) {
	var v []byte
	var ok bool
	done, err := r.viaPrimary(ctx, func(ctx context.Context) (err error) {
		v, ok, err = r.primary.Get(ctx, key)
		return err
	})
	if err != nil || done {
		return v, ok, err
	}
	return r.fallback.Get(ctx, key)
}

// Set writes to the fallback and, while it is up, to the primary.
func (r *Resilient) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := r.fallback.Set(ctx, key, value, ttl); err != nil {
		return err
	}
	_, err := r.viaPrimary(ctx, func(ctx context.Context) error { return r.primary.Set(ctx, key, value, ttl) })
	return err
}

// Delete removes key from the fallback and, while it is up, from the primary.
func (r *Resilient) Delete(ctx context.Context, key string) error {
	if err := r.fallback.Delete(ctx, key); err != nil {
		return err
	}
	_, err := r.viaPrimary(ctx, func(ctx context.Context) error { return r.primary.Delete(ctx, key) })
	return err
}

// Lock takes key in the primary, or in the fallback (this process only) while it is down.
func (r *Resilient) Lock(ctx context.Context, key string, ttl time.Duration) (string, bool, error) {
	if ttl <= 0 {
		return "", false, errLockTTL
	}
	var token string
	var ok bool
	done, err := r.viaPrimary(ctx, func(ctx context.Context) (err error) {
		token, ok, err = r.primary.Lock(ctx, key, ttl)
		return err
	})
	if err != nil {
		return "", false, err
	}
	if done {
		if !ok {
			return "", false, nil
		}
		return primaryToken + token, true, nil
	}
	token, ok, err = r.fallback.Lock(ctx, key, ttl)
	if err != nil || !ok {
		return "", false, err
	}
	return fallbackToken + token, true, nil
}

// Extend renews a lock in the store that issued token; a primary lock cannot be renewed
// while the primary is down.
func (r *Resilient) Extend(ctx context.Context, key, token string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, errLockTTL
	}
	if t, ok := strings.CutPrefix(token, fallbackToken); ok {
		return r.fallback.Extend(ctx, key, t, ttl)
	}
	t, ok := strings.CutPrefix(token, primaryToken)
	if !ok {
		return false, nil
	}
	var extended bool
	_, err := r.viaPrimary(ctx, func(ctx context.Context) (err error) {
		extended, err = r.primary.Extend(ctx, key, t, ttl)
		return err
	})
	return extended, err
}

// Unlock releases a lock in the store that issued token; a primary lock left behind while
// the primary is down expires by itself.
func (r *Resilient) Unlock(ctx context.Context, key, token string) error {
	if t, ok := strings.CutPrefix(token, fallbackToken); ok {
		return r.fallback.Unlock(ctx, key, t)
	}
	t, ok := strings.CutPrefix(token, primaryToken)
	if !ok {
		return nil
	}
	_, err := r.viaPrimary(ctx, func(ctx context.Context) error { return r.primary.Unlock(ctx, key, t) })
	return err
}

// viaPrimary runs call against the primary if it is up, bounded by the timeout, and
// reports whether it succeeded. A failure marks the primary down and is swallowed, so the
// caller falls back; only the caller's own ctx ending is returned as an error.
func (r *Resilient) viaPrimary(ctx context.Context, call func(context.Context) error) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if !r.isUp() {
		return false, nil
	}
	pctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	err := call(pctx)
	if err == nil {
		return true, nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return false, cerr
	}
	r.markDown(err)
	return false, nil
}
