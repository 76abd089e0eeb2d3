package cache

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
)

// replicas returns stores as separate replicas would have them, sharing one backend, and
// a function naming keys unique to t.
type replicas func(t *testing.T) (newStore func() LockingStore, key func(string) string)

// forEachBackend runs test with replicas sharing one Memory, and sharing one real Redis.
func forEachBackend(t *testing.T, test func(t *testing.T, r replicas)) {
	t.Run("Memory", func(t *testing.T) {
		t.Parallel()
		test(t, func(t *testing.T) (func() LockingStore, func(string) string) {
			m := NewMemory(64 << 20)
			return func() LockingStore { return m }, keyspace(t, nil)
		})
	})
	t.Run("Redis", func(t *testing.T) {
		t.Parallel()
		c := requireRedis(t)
		test(t, func(t *testing.T) (func() LockingStore, func(string) string) {
			return func() LockingStore { return NewRedis(c, WithTimeout(5*time.Second)) }, keyspace(t, c)
		})
	})
}

// do runs f.Do in a goroutine and returns a channel with its outcome.
type outcome struct {
	v   []byte
	err error
}

func goDo(ctx context.Context, f *Flight, key string, compute func(context.Context) ([]byte, error), o FlightOptions) <-chan outcome {
	ch := make(chan outcome, 1)
	go func() {
		v, err := f.Do(ctx, key, compute, o)
		ch <- outcome{v, err}
	}()
	return ch
}

// await returns the outcome of a Do, failing if it never comes.
func await(t *testing.T, ch <-chan outcome) outcome {
	t.Helper()
	select {
	case o := <-ch:
		return o
	case <-time.After(20 * time.Second):
		t.Fatal("Do did not return")
		return outcome{}
	}
}

func TestFlightComputesOnceAcrossReplicas(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r replicas) {
		newStore, key := r(t)
		reader, mp := newMeter(t)
		a := NewFlight(newStore(), WithMeterProvider(mp), WithPollBackoff(2*time.Millisecond, 20*time.Millisecond))
		b := NewFlight(newStore(), WithMeterProvider(mp), WithPollBackoff(2*time.Millisecond, 20*time.Millisecond))
		k := FindingsKey(dg1, key("db"))
		compute := func(ctx context.Context) ([]byte, error) {
			// Hold on until the other replica is known to be waiting for this value.
			for counter(t, reader, "portcullis.cache.lock.waits") == 0 {
				if err := sleep(ctx, 2*time.Millisecond); err != nil {
					return nil, err
				}
			}
			return []byte("verdict"), nil
		}
		start := make(chan struct{})
		var results []<-chan outcome
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range 20 {
			f := a
			if i%2 == 1 {
				f = b
			}
			wg.Go(func() {
				<-start
				ch := goDo(bg(t), f, k, compute, FlightOptions{TTL: time.Hour, LockTTL: 5 * time.Second, ComputeTimeout: 20 * time.Second})
				mu.Lock()
				results = append(results, ch)
				mu.Unlock()
			})
		}
		close(start)
		wg.Wait()
		var values [][]byte
		for _, ch := range results {
			o := await(t, ch)
			if o.err != nil || string(o.v) != "verdict" {
				t.Fatalf("Do = %q, %v", o.v, o.err)
			}
			values = append(values, o.v)
		}
		copy(values[0], "XXXXXXX") // callers sharing one attempt each own their slice
		for _, v := range values[1:] {
			if string(v) != "verdict" {
				t.Fatalf("one caller's change reached another's value: %q", v)
			}
		}
		if n := a.Computations() + b.Computations(); n != 1 {
			t.Fatalf("%d computations across both replicas, want 1", n)
		}
		if n := counter(t, reader, "portcullis.cache.computations", attribute.String("kind", KindFindings)); n != 1 {
			t.Errorf("computations metric = %d, want 1", n)
		}
		s := newStore()
		wantValue(t, s, k, []byte("verdict"))
		if _, ok := mustLock(t, s, LockKey(k), time.Second); !ok {
			t.Error("the lock was not released")
		}
	})
}

func TestFlightHolderDies(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r replicas) {
		newStore, key := r(t)
		k := key("v")
		dead := newStore()
		deadToken, _ := mustLock(t, dead, LockKey(k), 300*time.Millisecond) // and never stores nor unlocks
		f := NewFlight(newStore(), WithPollBackoff(2*time.Millisecond, 20*time.Millisecond))
		v, err := f.Do(bg(t), k, func(ctx context.Context) ([]byte, error) {
			if held, err := dead.Extend(ctx, LockKey(k), deadToken, time.Hour); err != nil || held {
				t.Errorf("computing while the dead holder's lock still holds (%v, %v)", held, err)
			}
			return []byte("recovered"), nil
		}, FlightOptions{LockTTL: 5 * time.Second})
		if err != nil || string(v) != "recovered" || f.Computations() != 1 {
			t.Fatalf("Do = %q, %v after %d computations", v, err, f.Computations())
		}
		wantValue(t, newStore(), k, []byte("recovered"))
	})
}

func TestFlightReturnsCachedValue(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r replicas) {
		newStore, key := r(t)
		mustSet(t, newStore(), key("v"), []byte("cached"), time.Hour)
		f := NewFlight(newStore())
		v, err := f.Do(bg(t), key("v"), func(context.Context) ([]byte, error) {
			t.Error("compute called although the value is cached")
			return nil, nil
		}, FlightOptions{})
		if err != nil || string(v) != "cached" || f.Computations() != 0 {
			t.Fatalf("Do = %q, %v after %d computations", v, err, f.Computations())
		}
	})
}

func TestFlightErrorsAreNotStored(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r replicas) {
		newStore, key := r(t)
		f := NewFlight(newStore())
		boom := errors.New("scanner unavailable")
		_, err := f.Do(bg(t), key("v"), func(context.Context) ([]byte, error) { return nil, boom }, FlightOptions{})
		if !errors.Is(err, boom) {
			t.Fatalf("Do error = %v, want %v", err, boom)
		}
		_, err = f.Do(bg(t), key("v"), func(context.Context) ([]byte, error) { panic("scanner bug") }, FlightOptions{})
		if err == nil || !strings.Contains(err.Error(), "scanner bug") {
			t.Fatalf("Do with a panicking compute = %v, want an error naming the panic", err)
		}
		wantMiss(t, newStore(), key("v"))
		v, err := f.Do(bg(t), key("v"), func(context.Context) ([]byte, error) { return []byte("ok"), nil }, FlightOptions{})
		if err != nil || string(v) != "ok" || f.Computations() != 3 {
			t.Fatalf("Do after failures = %q, %v after %d computations, want ok after 3", v, err, f.Computations())
		}
	})
}

func TestFlightRenewsItsLock(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r replicas) {
		newStore, key := r(t)
		a := NewFlight(newStore(), WithPollBackoff(2*time.Millisecond, 20*time.Millisecond))
		b := NewFlight(newStore(), WithPollBackoff(2*time.Millisecond, 20*time.Millisecond))
		opts := FlightOptions{LockTTL: 500 * time.Millisecond, ComputeTimeout: 20 * time.Second}
		clock := newStore()
		mustLock(t, clock, key("clock"), opts.LockTTL)
		started := make(chan struct{})
		slow := goDo(bg(t), a, key("v"), func(ctx context.Context) ([]byte, error) {
			close(started)
			// Compute for several lock TTLs, measured by a sibling lock with the same TTL:
			// each round waits until the sibling has expired and can be taken again.
			for range 3 {
				for {
					_, ok, err := clock.Lock(ctx, key("clock"), opts.LockTTL)
					if err != nil {
						return nil, err
					}
					if ok {
						break
					}
					if err := sleep(ctx, 5*time.Millisecond); err != nil {
						return nil, err
					}
				}
			}
			return []byte("slow"), nil
		}, opts)
		<-started
		other := goDo(bg(t), b, key("v"), func(context.Context) ([]byte, error) {
			return []byte("duplicate"), nil
		}, opts)
		if o := await(t, slow); o.err != nil || string(o.v) != "slow" {
			t.Fatalf("slow Do = %q, %v", o.v, o.err)
		}
		if o := await(t, other); o.err != nil || string(o.v) != "slow" {
			t.Fatalf("waiting Do = %q, %v; want the slow holder's value", o.v, o.err)
		}
		if b.Computations() != 0 {
			t.Fatal("the waiter computed while the holder was alive and renewing its lock")
		}
	})
}

func TestFlightCancelWhileComputing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r replicas) {
		newStore, key := r(t)
		f := NewFlight(newStore())
		release := make(chan struct{})
		started := make(chan struct{})
		ctx, cancel := context.WithCancel(bg(t))
		ch := goDo(ctx, f, key("v"), func(context.Context) ([]byte, error) {
			close(started)
			<-release
			return []byte("late"), nil
		}, FlightOptions{})
		<-started
		cancel()
		if o := await(t, ch); !errors.Is(o.err, context.Canceled) {
			t.Fatalf("Do after cancel = %q, %v; want context.Canceled", o.v, o.err)
		}
		// The attempt goes on and still stores its value for the next caller.
		close(release)
		eventually(t, "the abandoned computation stores its value", func() bool {
			_, ok := mustGet(t, newStore(), key("v"))
			return ok
		})
	})
}

func TestFlightCancelWhileWaiting(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r replicas) {
		newStore, key := r(t)
		reader, mp := newMeter(t)
		mustLock(t, newStore(), LockKey(key("v")), time.Hour) // a live holder elsewhere
		f := NewFlight(newStore(), WithMeterProvider(mp), WithPollBackoff(2*time.Millisecond, 20*time.Millisecond))
		ctx, cancel := context.WithCancel(bg(t))
		ch := goDo(ctx, f, key("v"), func(context.Context) ([]byte, error) {
			t.Error("computed while another holder has the lock")
			return nil, nil
		}, FlightOptions{MaxWait: 2 * time.Second})
		eventually(t, "the caller waits", func() bool { return counter(t, reader, "portcullis.cache.lock.waits") > 0 })
		cancel()
		if o := await(t, ch); !errors.Is(o.err, context.Canceled) {
			t.Fatalf("Do after cancel = %q, %v; want context.Canceled", o.v, o.err)
		}
		// The abandoned attempt waits on until its MaxWait; a new caller joins it (or, had
		// it ended, starts one with the same bound) and sees it give up without computing.
		if _, err := f.Do(bg(t), key("v"), nil, FlightOptions{MaxWait: 2 * time.Second}); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Do joining the abandoned wait = %v, want a deadline error", err)
		}
		// With its caller still there, the wait ends at MaxWait. (Another key: callers
		// joining an attempt in flight share that attempt's options.)
		mustLock(t, newStore(), LockKey(key("w")), time.Hour)
		_, err := f.Do(bg(t), key("w"), func(context.Context) ([]byte, error) { return nil, nil },
			FlightOptions{MaxWait: 50 * time.Millisecond})
		if !errors.Is(err, context.DeadlineExceeded) || f.Computations() != 0 {
			t.Fatalf("Do beyond MaxWait = %v after %d computations; want a deadline error and none", err, f.Computations())
		}
	})
}

func TestFlightComputesWhenStoreFails(t *testing.T) {
	c, err := NewRedisClient(RedisOptions{Addrs: []string{closedAddr(t)}, DialTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	f := NewFlight(NewRedis(c, WithTimeout(200*time.Millisecond)))
	v, err := f.Do(bg(t), "k", func(context.Context) ([]byte, error) { return []byte("v"), nil }, FlightOptions{})
	if err != nil || string(v) != "v" || f.Computations() != 1 {
		t.Fatalf("Do with a dead store = %q, %v after %d computations", v, err, f.Computations())
	}
}
