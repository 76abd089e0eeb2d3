package cache

import (
	"context"
	"fmt"
	"time"
)

// Status reports whether the primary is in use, and why not, for /readyz.
func (r *Resilient) Status() (up bool, detail string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.up {
		return true, "shared cache reachable"
	}
	return false, fmt.Sprintf("shared cache unreachable since %s (%s); serving from the in-process cache",
		r.since.UTC().Format(time.RFC3339), r.reason)
}

// Close stops the background probe and waits for it to end; it is safe to call twice.
func (r *Resilient) Close() {
	r.cancel()
	<-r.done
}

func (r *Resilient) isUp() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.up
}

// markDown routes calls to the fallback and wakes the probe.
func (r *Resilient) markDown(err error) {
	r.mu.Lock()
	if r.up {
		r.up, r.since = false, time.Now()
	}
	r.reason = err.Error()
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *Resilient) markUp() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.up {
		r.up, r.since, r.reason = true, time.Now(), ""
	}
}

// watch pings the primary: every checkEvery while it is up, and with growing, jittered
// delays while it is down, until it answers.
func (r *Resilient) watch(ctx context.Context) {
	defer close(r.done)
	if err := r.ping(ctx); err != nil && ctx.Err() == nil {
		r.markDown(err)
	}
	delay := r.probeMin
	for ctx.Err() == nil {
		if r.isUp() {
			t := time.NewTimer(r.checkEvery)
			select {
			case <-ctx.Done():
			case <-r.wake:
			case <-t.C:
				if err := r.ping(ctx); err != nil && ctx.Err() == nil {
					r.markDown(err)
				}
			}
			t.Stop()
			continue
		}
		if sleep(ctx, jitter(delay)) != nil {
			return
		}
		err := r.ping(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			r.markUp()
			delay = r.probeMin
		default:
			r.markDown(err)
			delay = min(2*delay, r.probeMax)
		}
	}
}

func (r *Resilient) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	return r.primary.Ping(ctx)
}
