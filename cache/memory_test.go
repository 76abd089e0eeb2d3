package cache

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

func TestMemoryEvictsLeastRecentlyUsed(t *testing.T) {
	v := bytes.Repeat([]byte("x"), 100)
	entry := int64(len("k0") + len(v) + entryOverhead)
	s := NewMemory(3 * entry) // room for three entries
	for i := range 3 {
		mustSet(t, s, fmt.Sprint("k", i), v, time.Hour)
	}
	mustGet(t, s, "k0") // k0 is now the most recently used, k1 the least
	mustSet(t, s, "k3", v, time.Hour)
	wantMiss(t, s, "k1")
	for _, k := range []string{"k0", "k2", "k3"} {
		wantValue(t, s, k, v)
	}
}

func TestMemoryByteBudget(t *testing.T) {
	s := NewMemory(10_000)
	for i := range 1000 {
		mustSet(t, s, fmt.Sprint("key", i), bytes.Repeat([]byte{byte(i)}, i%300), time.Hour)
		if s.used > s.maxBytes {
			t.Fatalf("after %d sets: %d bytes used, budget %d", i+1, s.used, s.maxBytes)
		}
	}
	var sum int64
	for el := s.order.Front(); el != nil; el = el.Next() {
		sum += el.Value.(*memEntry).size()
	}
	if sum != s.used || len(s.items) != s.order.Len() {
		t.Fatalf("accounting: %d bytes in %d entries, recorded %d bytes in %d", sum, s.order.Len(), s.used, len(s.items))
	}
}

func TestMemoryTooLargeValueIsNotKept(t *testing.T) {
	s := NewMemory(1000)
	mustSet(t, s, "k", []byte("small"), time.Hour)
	mustSet(t, s, "other", []byte("kept"), time.Hour)
	mustSet(t, s, "k", make([]byte, 2000), time.Hour)
	wantMiss(t, s, "k") // never the stale small value
	wantValue(t, s, "other", []byte("kept"))
}

func TestMemoryLocksAreNotEvicted(t *testing.T) {
	s := NewMemory(200)
	if _, ok := mustLock(t, s, "lock", time.Hour); !ok {
		t.Fatal("Lock failed")
	}
	for i := range 100 {
		mustSet(t, s, fmt.Sprint("k", i), make([]byte, 100), time.Hour)
	}
	if _, ok := mustLock(t, s, "lock", time.Hour); ok {
		t.Fatal("filling the value budget released a lock")
	}
}

func TestMemorySweepsExpiredLocks(t *testing.T) {
	s := NewMemory(1 << 20)
	for i := range sweepEvery {
		mustLock(t, s, fmt.Sprint("l", i), time.Millisecond)
	}
	mustLock(t, s, "held", time.Hour)
	eventually(t, "a sweep leaves only the live lock", func() bool {
		for range sweepEvery {
			mustLock(t, s, "churn", time.Nanosecond)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		_, held := s.locks.held["held"]
		return held && len(s.locks.held) <= 2
	})
}
