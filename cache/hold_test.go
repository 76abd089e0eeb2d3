package cache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestHoldExcludes runs many holders of one key at once, in memory and (TestHoldRedis)
// against the real Redis, and checks that no two are ever inside together.
func TestHoldExcludes(t *testing.T) {
	testHoldExcludes(t, NewMemory(1<<20), "k")
}

func TestHoldRedis(t *testing.T) {
	c := requireRedis(t)
	testHoldExcludes(t, NewRedis(c, WithTimeout(5*time.Second)), keyspace(t, c)("hold"))
}

func testHoldExcludes(t *testing.T, l Locker, key string) {
	ctx := context.Background()
	var inside, maxInside, entered atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			release, err := Hold(ctx, l, key, time.Second, 30*time.Second)
			if err != nil {
				t.Error(err)
				return
			}
			n := inside.Add(1)
			for m := maxInside.Load(); n > m && !maxInside.CompareAndSwap(m, n); m = maxInside.Load() {
			}
			entered.Add(1)
			time.Sleep(time.Millisecond)
			inside.Add(-1)
			release()
		}()
	}
	wg.Wait()
	if maxInside.Load() != 1 || entered.Load() != 16 {
		t.Fatalf("max holders at once = %d, entered = %d; want 1 and 16", maxInside.Load(), entered.Load())
	}
}

// TestHoldWaitsThenFails checks that a lock nobody releases makes Hold fail with
// ErrLockWait, and that release frees the key for the next holder.
func TestHoldWaitsThenFails(t *testing.T) {
	m := NewMemory(1 << 20)
	ctx := context.Background()
	release, err := Hold(ctx, m, "k", time.Minute, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Hold(ctx, m, "k", time.Minute, 20*time.Millisecond); !errors.Is(err, ErrLockWait) {
		t.Fatalf("second Hold = %v, want ErrLockWait", err)
	}
	release()
	again, err := Hold(ctx, m, "k", time.Minute, 20*time.Millisecond)
	if err != nil {
		t.Fatalf("Hold after release = %v", err)
	}
	again()
}

// TestHoldExtends checks that a held lock outlives its ttl while held.
func TestHoldExtends(t *testing.T) {
	m := NewMemory(1 << 20)
	ctx := context.Background()
	release, err := Hold(ctx, m, "k", 60*time.Millisecond, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	time.Sleep(200 * time.Millisecond) // three ttls: only renewal keeps it
	if _, ok, _ := m.Lock(ctx, "k", time.Minute); ok {
		t.Fatal("the lock expired while held")
	}
}
