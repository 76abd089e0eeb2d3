package cache

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// newStoreFunc returns a fresh store and a function naming keys unique to t in it.
type newStoreFunc func(t *testing.T) (LockingStore, func(name string) string)

// testStore is the conformance suite every LockingStore passes.
func testStore(t *testing.T, newStore newStoreFunc) {
	t.Run("MissSetGet", func(t *testing.T) { t.Parallel(); testMissSetGet(t, newStore) })
	t.Run("TTLExpiry", func(t *testing.T) { t.Parallel(); testTTLExpiry(t, newStore) })
	t.Run("Overwrite", func(t *testing.T) { t.Parallel(); testOverwrite(t, newStore) })
	t.Run("Delete", func(t *testing.T) { t.Parallel(); testDelete(t, newStore) })
	t.Run("BinaryValues", func(t *testing.T) { t.Parallel(); testBinaryValues(t, newStore) })
	t.Run("LargeValue", func(t *testing.T) { t.Parallel(); testLargeValue(t, newStore) })
	t.Run("ValuesAreCopies", func(t *testing.T) { t.Parallel(); testValuesAreCopies(t, newStore) })
	t.Run("ConcurrentAccess", func(t *testing.T) { t.Parallel(); testConcurrentAccess(t, newStore) })
	t.Run("LockExclusive", func(t *testing.T) { t.Parallel(); testLockExclusive(t, newStore) })
	t.Run("LockExpiry", func(t *testing.T) { t.Parallel(); testLockExpiry(t, newStore) })
	t.Run("LockNeedsTTL", func(t *testing.T) { t.Parallel(); testLockNeedsTTL(t, newStore) })
	t.Run("UnlockWrongToken", func(t *testing.T) { t.Parallel(); testUnlockWrongToken(t, newStore) })
	t.Run("UnlockAfterExpiry", func(t *testing.T) { t.Parallel(); testUnlockAfterExpiry(t, newStore) })
	t.Run("Extend", func(t *testing.T) { t.Parallel(); testExtend(t, newStore) })
	t.Run("GetMany", func(t *testing.T) { t.Parallel(); testGetMany(t, newStore) })
	t.Run("GetManyTTL", func(t *testing.T) { t.Parallel(); testGetManyTTL(t, newStore) })
}

// testGetManyTTL: stores that report TTLs report what is left of each, none for a value
// without expiry, across keys in different Cluster slots.
func testGetManyTTL(t *testing.T, newStore newStoreFunc) {
	s, key := newStore(t)
	tg, ok := s.(TTLGetter)
	if !ok {
		t.Skipf("%T does not report TTLs", s)
	}
	mustSet(t, s, key("hour"), []byte("h"), time.Hour)
	mustSet(t, s, key("forever"), []byte("f"), 0)
	got, err := tg.GetManyTTL(context.Background(), key("hour"), key("missing"), key("forever"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || !got[0].OK || string(got[0].Value) != "h" || got[0].TTL <= 0 || got[0].TTL > time.Hour ||
		got[1].OK || !got[2].OK || string(got[2].Value) != "f" || got[2].TTL != 0 {
		t.Fatalf("GetManyTTL = %+v", got)
	}
}

func mustGet(t *testing.T, s Store, key string) ([]byte, bool) {
	t.Helper()
	v, ok, err := s.Get(bg(t), key)
	if err != nil {
		t.Fatalf("Get(%s): %v", key, err)
	}
	return v, ok
}

func mustSet(t *testing.T, s Store, key string, v []byte, ttl time.Duration) {
	t.Helper()
	if err := s.Set(bg(t), key, v, ttl); err != nil {
		t.Fatalf("Set(%s): %v", key, err)
	}
}

func wantValue(t *testing.T, s Store, key string, want []byte) {
	t.Helper()
	got, ok := mustGet(t, s, key)
	if !ok {
		t.Fatalf("Get(%s): miss, want %d bytes", key, len(want))
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%s) = %q, want %q", key, trunc(got), trunc(want))
	}
}

func wantMiss(t *testing.T, s Store, key string) {
	t.Helper()
	if got, ok := mustGet(t, s, key); ok {
		t.Fatalf("Get(%s) = %q, want a miss", key, trunc(got))
	}
}

func trunc(b []byte) []byte { return b[:min(len(b), 64)] }

func mustLock(t *testing.T, l Locker, key string, ttl time.Duration) (string, bool) {
	t.Helper()
	token, ok, err := l.Lock(bg(t), key, ttl)
	if err != nil {
		t.Fatalf("Lock(%s): %v", key, err)
	}
	if ok == (token == "") {
		t.Fatalf("Lock(%s) = %q, %v: a token exactly when the lock is taken", key, token, ok)
	}
	return token, ok
}

func testMissSetGet(t *testing.T, newStore newStoreFunc) {
	s, key := newStore(t)
	wantMiss(t, s, key("never-set"))
	mustSet(t, s, key("a"), []byte("alpha"), time.Hour)
	wantValue(t, s, key("a"), []byte("alpha"))
	mustSet(t, s, key("empty"), []byte{}, time.Hour)
	wantValue(t, s, key("empty"), []byte{})
	mustSet(t, s, key("forever"), []byte("no ttl"), 0)
	wantValue(t, s, key("forever"), []byte("no ttl"))
	wantMiss(t, s, key("A")) // keys are case-sensitive
}

func testTTLExpiry(t *testing.T, newStore newStoreFunc) {
	s, key := newStore(t)
	mustSet(t, s, key("short"), []byte("v"), 100*time.Millisecond)
	mustSet(t, s, key("long"), []byte("v"), time.Hour)
	eventually(t, "the short-lived value expires", func() bool {
		_, ok := mustGet(t, s, key("short"))
		return !ok
	})
	wantValue(t, s, key("long"), []byte("v"))
}

func testOverwrite(t *testing.T, newStore newStoreFunc) {
	s, key := newStore(t)
	mustSet(t, s, key("k"), []byte("first, and longer"), time.Hour)
	mustSet(t, s, key("k"), []byte("second"), time.Hour)
	wantValue(t, s, key("k"), []byte("second"))
	// A shorter TTL on overwrite replaces the longer one.
	mustSet(t, s, key("k"), []byte("third"), 100*time.Millisecond)
	eventually(t, "the overwritten value expires with its new TTL", func() bool {
		_, ok := mustGet(t, s, key("k"))
		return !ok
	})
}

func testDelete(t *testing.T, newStore newStoreFunc) {
	s, key := newStore(t)
	mustSet(t, s, key("k"), []byte("v"), time.Hour)
	mustSet(t, s, key("other"), []byte("w"), time.Hour)
	if err := s.Delete(bg(t), key("k")); err != nil {
		t.Fatal(err)
	}
	wantMiss(t, s, key("k"))
	wantValue(t, s, key("other"), []byte("w"))
	if err := s.Delete(bg(t), key("never-set")); err != nil {
		t.Fatalf("deleting a missing key: %v", err)
	}
}

func testBinaryValues(t *testing.T, newStore newStoreFunc) {
	s, key := newStore(t)
	all := make([]byte, 512)
	for i := range all {
		all[i] = byte(i)
	}
	cases := map[string][]byte{
		"all-bytes":   all,
		"nul":         {0},
		"crlf":        []byte("a\r\nb\r\n"),
		"bad-utf8":    {0xff, 0xfe, 0xc3, 0x28},
		"resp-syntax": []byte("$-1\r\n*0\r\n"),
	}
	for name, v := range cases {
		mustSet(t, s, key(name), v, time.Hour)
	}
	for name, v := range cases {
		wantValue(t, s, key(name), v)
	}
}

func testLargeValue(t *testing.T, newStore newStoreFunc) {
	s, key := newStore(t)
	v := make([]byte, 4<<20)
	_, _ = rand.Read(v)
	mustSet(t, s, key("big"), v, time.Hour)
	wantValue(t, s, key("big"), v)
}

func testValuesAreCopies(t *testing.T, newStore newStoreFunc) {
	s, key := newStore(t)
	in := []byte("original")
	mustSet(t, s, key("k"), in, time.Hour)
	copy(in, "XXXXXXXX")
	got, _ := mustGet(t, s, key("k"))
	copy(got, "YYYYYYYY")
	wantValue(t, s, key("k"), []byte("original"))
}

func testConcurrentAccess(t *testing.T, newStore newStoreFunc) {
	s, key := newStore(t)
	const workers, rounds, keys = 8, 50, 4
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for w := range workers {
		wg.Go(func() {
			for n := range rounds {
				k := key(fmt.Sprint("k", (w+n)%keys))
				ctx := bg(t)
				want := fmt.Sprintf("%s/%d/%d", k, w, n)
				if err := s.Set(ctx, k, []byte(want), time.Hour); err != nil {
					errs <- err
					return
				}
				got, ok, err := s.Get(ctx, k)
				switch {
				case err != nil:
					errs <- err
					return
				case ok && !bytes.HasPrefix(got, []byte(k+"/")):
					errs <- fmt.Errorf("Get(%s) = %q: a value of another key", k, got)
				}
				if n%7 == 0 {
					if err := s.Delete(ctx, k); err != nil {
						errs <- err
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testLockExclusive(t *testing.T, newStore newStoreFunc) {
	s, key := newStore(t)
	if _, ok := mustLock(t, s, key("solo"), time.Hour); !ok {
		t.Fatal("first Lock failed")
	}
	if _, ok := mustLock(t, s, key("solo"), time.Hour); ok {
		t.Fatal("second Lock succeeded while the first holds")
	}
	var won atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, ok, err := s.Lock(bg(t), key("race"), time.Hour); err != nil {
				t.Error(err)
			} else if ok {
				won.Add(1)
			}
		})
	}
	wg.Wait()
	if n := won.Load(); n != 1 {
		t.Fatalf("%d of 20 concurrent Lock calls won, want exactly 1", n)
	}
}

func testLockExpiry(t *testing.T, newStore newStoreFunc) {
	s, key := newStore(t)
	first, _ := mustLock(t, s, key("l"), 100*time.Millisecond)
	var second string
	eventually(t, "the expired lock can be taken again", func() bool {
		tok, ok := mustLock(t, s, key("l"), time.Hour)
		second = tok
		return ok
	})
	if second == first {
		t.Fatal("the new holder got the old holder's token")
	}
}

func testLockNeedsTTL(t *testing.T, newStore newStoreFunc) {
	s, key := newStore(t)
	for _, ttl := range []time.Duration{0, -time.Second} {
		if _, ok, err := s.Lock(bg(t), key("l"), ttl); err == nil || ok {
			t.Errorf("Lock with ttl %v = %v, %v; want an error (a lock must expire)", ttl, ok, err)
		}
	}
}

func testUnlockWrongToken(t *testing.T, newStore newStoreFunc) {
	s, key := newStore(t)
	token, _ := mustLock(t, s, key("l"), time.Hour)
	for _, wrong := range []string{"", "bogus", token + "x", "p." + token, "f." + token} {
		if err := s.Unlock(bg(t), key("l"), wrong); err != nil {
			t.Fatalf("Unlock with a wrong token: %v", err)
		}
		if _, ok := mustLock(t, s, key("l"), time.Hour); ok {
			t.Fatalf("Unlock with wrong token %q released the lock", wrong)
		}
	}
	if err := s.Unlock(bg(t), key("l"), token); err != nil {
		t.Fatal(err)
	}
	if _, ok := mustLock(t, s, key("l"), time.Hour); !ok {
		t.Fatal("Lock after the holder's Unlock failed")
	}
	if err := s.Unlock(bg(t), key("never-locked"), "bogus"); err != nil {
		t.Fatalf("Unlock of a free key: %v", err)
	}
}

func testUnlockAfterExpiry(t *testing.T, newStore newStoreFunc) {
	s, key := newStore(t)
	old, _ := mustLock(t, s, key("l"), 100*time.Millisecond)
	var current string
	eventually(t, "another holder takes the expired lock", func() bool {
		tok, ok := mustLock(t, s, key("l"), time.Hour)
		current = tok
		return ok
	})
	// The first holder wakes up late and releases "its" lock: nothing happens.
	if err := s.Unlock(bg(t), key("l"), old); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Extend(bg(t), key("l"), old, time.Hour); err != nil || ok {
		t.Fatalf("Extend with the expired token = %v, %v; want false", ok, err)
	}
	if _, ok := mustLock(t, s, key("l"), time.Hour); ok {
		t.Fatal("the late Unlock released the new holder's lock")
	}
	if ok, err := s.Extend(bg(t), key("l"), current, time.Hour); err != nil || !ok {
		t.Fatalf("Extend by the current holder = %v, %v; want true", ok, err)
	}
}

func testExtend(t *testing.T, newStore newStoreFunc) {
	s, key := newStore(t)
	token, _ := mustLock(t, s, key("extended"), 150*time.Millisecond)
	if ok, err := s.Extend(bg(t), key("extended"), token, time.Hour); err != nil || !ok {
		t.Fatalf("Extend = %v, %v; want true", ok, err)
	}
	// A sibling lock with the original TTL measures that the original TTL has passed.
	mustLock(t, s, key("sibling"), 150*time.Millisecond)
	eventually(t, "the sibling lock expires", func() bool {
		_, ok := mustLock(t, s, key("sibling"), time.Hour)
		return ok
	})
	if _, ok := mustLock(t, s, key("extended"), time.Hour); ok {
		t.Fatal("the extended lock expired with its original TTL")
	}
	if ok, err := s.Extend(bg(t), key("never-locked"), "bogus", time.Hour); err != nil || ok {
		t.Fatalf("Extend of a free key = %v, %v; want false", ok, err)
	}
	if _, err := s.Extend(bg(t), key("extended"), token, 0); err == nil {
		t.Error("Extend with ttl 0: want an error")
	}
}

// testGetMany: GetMany answers each key in order, hits and misses alike, as Get would.
func testGetMany(t *testing.T, newStore newStoreFunc) {
	s, key := newStore(t)
	if _, ok := s.(MultiGetter); !ok {
		t.Fatalf("%T does not read several keys in one call", s)
	}
	mustSet(t, s, key("a"), []byte("alpha"), time.Hour)
	mustSet(t, s, key("empty"), []byte{}, time.Hour)
	mustSet(t, s, key("c"), []byte{0, 1, 2}, time.Hour)
	got, err := GetMany(context.Background(), s, key("a"), key("missing"), key("empty"), key("c"), key("a"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Lookup{{Value: []byte("alpha"), OK: true}, {}, {Value: []byte{}, OK: true}, {Value: []byte{0, 1, 2}, OK: true}, {Value: []byte("alpha"), OK: true}}
	if len(got) != len(want) {
		t.Fatalf("GetMany = %d answers, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].OK != want[i].OK || !bytes.Equal(got[i].Value, want[i].Value) {
			t.Errorf("GetMany[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	if got, err := GetMany(context.Background(), s); err != nil || len(got) != 0 {
		t.Errorf("GetMany() = %v, %v", got, err)
	}
}
