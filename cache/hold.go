package cache

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrLockWait is returned by Hold when the lock stayed taken for the whole wait.
var ErrLockWait = errors.New("lock held by another holder for the whole wait")

// Hold takes key in l, waiting at most wait for a holder to release it, and keeps it
// (extending it every ttl/3) until the returned release is called. A holder that dies
// blocks the key for at most ttl. It fails when l fails, when ctx ends, or with
// ErrLockWait.
func Hold(ctx context.Context, l Locker, key string, ttl, wait time.Duration) (release func(), err error) {
	deadline := time.Now().Add(wait)
	var token string
	for pause := 5 * time.Millisecond; ; pause = min(2*pause, 200*time.Millisecond) {
		t, ok, err := l.Lock(ctx, key, ttl)
		if err != nil {
			return nil, fmt.Errorf("taking lock %s: %w", key, err)
		}
		if ok {
			token = t
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("taking lock %s: %w (%s)", key, ErrLockWait, wait)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("taking lock %s: %w", key, ctx.Err())
		case <-time.After(pause):
		}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(ttl / 3)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				_, _ = l.Extend(context.WithoutCancel(ctx), key, token, ttl)
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		_ = l.Unlock(context.WithoutCancel(ctx), key, token)
	}, nil
}
