package cache

import (
	"context"
	"sync"
	"testing"
	"time"
)

// ttlRecorder is a LockingStore that notes the TTL of every Set it passes on.
type ttlRecorder struct {
	LockingStore
	mu   sync.Mutex
	ttls map[string]time.Duration
}

func (r *ttlRecorder) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	r.mu.Lock()
	r.ttls[key] = ttl
	r.mu.Unlock()
	return r.LockingStore.Set(ctx, key, value, ttl)
}

func TestFlightTTLOfChoosesTheTTLOfEachValue(t *testing.T) {
	rec := &ttlRecorder{LockingStore: NewMemory(1 << 20), ttls: map[string]time.Duration{}}
	f := NewFlight(rec)
	o := FlightOptions{TTL: time.Hour, TTLOf: func(v []byte) time.Duration {
		if string(v) == "denied" {
			return 5 * time.Minute
		}
		return 0
	}}
	for key, value := range map[string]string{"good": "allowed", "bad": "denied"} {
		if _, err := f.Do(context.Background(), key, func(context.Context) ([]byte, error) { return []byte(value), nil }, o); err != nil {
			t.Fatal(err)
		}
	}
	if rec.ttls["good"] != time.Hour || rec.ttls["bad"] != 5*time.Minute {
		t.Fatalf("TTLs %v, want good 1h (TTLOf said 0: the default) and bad 5m", rec.ttls)
	}
}
