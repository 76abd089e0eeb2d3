package cache

import (
	"net"
	"testing"
	"time"
)

func TestMemoryStore(t *testing.T) {
	testStore(t, func(t *testing.T) (LockingStore, func(string) string) {
		return NewMemory(64 << 20), keyspace(t, nil)
	})
}

func TestRedisStore(t *testing.T) {
	c := requireRedis(t)
	testStore(t, func(t *testing.T) (LockingStore, func(string) string) {
		return NewRedis(c, WithTimeout(5*time.Second)), keyspace(t, c)
	})
}

func TestResilientStore(t *testing.T) {
	c := requireRedis(t)
	testStore(t, func(t *testing.T) (LockingStore, func(string) string) {
		r := NewResilient(NewRedis(c, WithTimeout(5*time.Second)), NewMemory(64<<20), WithTimeout(5*time.Second))
		t.Cleanup(r.Close)
		key := keyspace(t, c)
		t.Cleanup(func() {
			if up, detail := r.Status(); !up {
				t.Errorf("Redis marked down during the suite: %s", detail)
			}
		})
		return r, key
	})
}

// TestResilientStoreWithoutPrimary runs the suite against a Resilient whose Redis never
// answers: everything is served by the in-process fallback.
func TestResilientStoreWithoutPrimary(t *testing.T) {
	c, err := NewRedisClient(RedisOptions{Addrs: []string{closedAddr(t)}, DialTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	testStore(t, func(t *testing.T) (LockingStore, func(string) string) {
		r := NewResilient(NewRedis(c), NewMemory(64<<20), WithTimeout(time.Second))
		t.Cleanup(r.Close)
		return r, keyspace(t, nil)
	})
}

// closedAddr returns a loopback address nothing listens on (it was free a moment ago).
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}
