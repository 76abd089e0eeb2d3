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

// TestHoldExtends checks that a held lock outlives its ttl while held: the holder
// extends it, each extension finds the lock still its own, and after more than a ttl the
// key is still taken. The ttl is long enough that a busy machine's scheduling delays stay
// well inside the renewal margin (ttl/3 between extensions, 2/3 ttl of slack).
func TestHoldExtends(t *testing.T) {
	m := &countingLocker{Locker: NewMemory(1 << 20), extended: make(chan bool, 16)}
	ctx := context.Background()
	const ttl = time.Second
	start := time.Now()
	release, err := Hold(ctx, m, "k", ttl, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	for i := 0; i < 4; i++ {
		select {
		case ok := <-m.extended:
			if !ok {
				t.Fatalf("extension %d found the lock gone", i+1)
			}
		case <-time.After(time.Minute): // hang guard only
			t.Fatalf("only %d extensions in a minute", i)
		}
	}
	if held := time.Since(start); held <= ttl {
		t.Fatalf("four extensions took %v, not more than one ttl", held)
	}
	if _, ok, _ := m.Lock(ctx, "k", time.Minute); ok {
		t.Fatal("the lock expired while held")
	}
}

// countingLocker reports each Extend's outcome of the Locker it wraps.
type countingLocker struct {
	Locker
	extended chan bool
}

func (c *countingLocker) Extend(ctx context.Context, key, token string, ttl time.Duration) (bool, error) {
	ok, err := c.Locker.Extend(ctx, key, token, ttl)
	select {
	case c.extended <- ok && err == nil:
	default:
	}
	return ok, err
}
