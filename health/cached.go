package health

import (
	"context"
	"sync"
	"time"
)

// Cached returns a check that runs c at most once per ttl and answers with its last
// outcome meanwhile, for checks that cost the dependency something (a probe that fetches
// an upstream token) while readiness is polled every few seconds by every replica. A
// check that did not finish (ctx ended) is not remembered.
func Cached(ttl time.Duration, c Check) Check {
	var (
		mu   sync.Mutex
		at   time.Time
		last error
		done bool
	)
	return func(ctx context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		if done && time.Since(at) < ttl {
			return last
		}
		err := c(ctx)
		if ctx.Err() != nil {
			return err
		}
		at, last, done = time.Now(), err, true
		return err
	}
}
