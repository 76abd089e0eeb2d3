package pullthrough

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// budget is a source's request budget in this replica: a token bucket refilled at
// RequestsPerMinute (a minute's worth at most), and the floor on the pulls the source says
// remain (Docker Hub's ratelimit-remaining header).
type budget struct {
	perMinute int
	floor     int

	mu     sync.Mutex
	tokens float64
	last   time.Time

	// remaining is the last ratelimit-remaining the source sent; -1 when none yet.
	remaining atomic.Int64
}

func newBudget(perMinute, floor int) *budget {
	b := &budget{perMinute: perMinute, floor: floor, tokens: float64(perMinute), last: time.Now()}
	b.remaining.Store(-1)
	return b
}

// take spends one request, waiting for one when wait is set (bounded by ctx); without
// wait it reports false when none is left.
func (b *budget) take(ctx context.Context, wait bool) bool {
	if b.perMinute <= 0 {
		return true
	}
	for {
		b.mu.Lock()
		now := time.Now()
		b.tokens = min(float64(b.perMinute), b.tokens+now.Sub(b.last).Minutes()*float64(b.perMinute))
		b.last = now
		if b.tokens >= 1 {
			b.tokens--
			b.mu.Unlock()
			return true
		}
		need := time.Duration((1 - b.tokens) / float64(b.perMinute) * float64(time.Minute))
		b.mu.Unlock()
		if !wait {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(need):
		}
	}
}

// belowFloor reports the remaining pulls when the source said fewer remain than the floor.
func (b *budget) belowFloor() (int64, bool) {
	r := b.remaining.Load()
	return r, b.floor > 0 && r >= 0 && r < int64(b.floor)
}

// observe reads the source's ratelimit-remaining header ("76;w=21600").
func (b *budget) observe(h http.Header) {
	v := h.Get("Ratelimit-Remaining")
	if v == "" {
		return
	}
	v, _, _ = strings.Cut(v, ";")
	if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && n >= 0 {
		b.remaining.Store(n)
	}
}

// noWaitKey marks a context whose source requests must not wait for the budget.
type noWaitKey struct{}

// budgetTransport spends the budget on every request to the source and reads the
// rate-limit headers of its answers.
type budgetTransport struct {
	b    *budget
	next http.RoundTripper
}

func (t budgetTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	_, nowait := req.Context().Value(noWaitKey{}).(bool)
	if !t.b.take(req.Context(), !nowait) {
		if err := req.Context().Err(); err != nil {
			return nil, err
		}
		return nil, errBudget
	}
	resp, err := t.next.RoundTrip(req)
	if err == nil {
		t.b.observe(resp.Header)
	}
	return resp, err
}
