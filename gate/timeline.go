package gate

import (
	"context"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/policy"
)

// Fix timelines: when each vulnerability was first seen in each repository. They live in
// the cache the replicas share (Redis), so every replica counts remediation windows from
// the same day. Losing Redis restarts them from the next sighting; with a memory-only cache
// each process keeps its own.
const (
	// firstSeenTTL is how long a first sighting is kept; it is renewed while the
	// vulnerability is still seen (see firstSeenRenew), so only a vulnerability gone from
	// a repository for this long starts a new timeline there.
	firstSeenTTL = 400 * 24 * time.Hour
	// firstSeenRenew is how often a sighting still seen has its expiry renewed.
	firstSeenRenew = 30 * 24 * time.Hour
	// firstSeenMemo is how long a process remembers a sighting it read, so that hot pulls
	// do not ask the shared cache for every finding.
	firstSeenMemo = time.Hour
	// firstSeenLock bounds the lock under which a first sighting is written.
	firstSeenLock = 10 * time.Second
	// firstSeenWait is how long a sighting waits for another one, holding the lock, to
	// write the first sighting.
	firstSeenWait = time.Second
	// firstSeenParallel is how many sightings of one image are looked up at once.
	firstSeenParallel = 8
	// firstSeenVersion is the format version of sightings.
	firstSeenVersion = 1
)

// sighting is when a vulnerability was first seen in a repository, and when its expiry was
// last renewed.
type sighting struct {
	First   time.Time `json:"first"`
	Renewed time.Time `json:"renewed"`
}

// lockingStore is what recording a first sighting needs: a store with locks.
type lockingStore interface {
	coverageStore
	Unlock(ctx context.Context, key, token string) error
}

// recordFirstSeen sets the FirstSeen of each finding of an image of repo: when its
// vulnerability (by advisory id) was first seen in repo, recording now (the gate's clock)
// for those never seen before. A sighting that cannot be read or written leaves FirstSeen
// zero (unknown); the policy then counts a remediation window from today.
func (g *Gate) recordFirstSeen(ctx context.Context, repo string, fs []policy.VulnerabilityFinding) {
	if len(fs) == 0 {
		return
	}
	now := g.now()
	var ids []string
	index := map[string]int{}
	for _, f := range fs {
		if _, ok := index[f.ID]; !ok {
			index[f.ID] = len(ids)
			ids = append(ids, f.ID)
		}
	}
	first := make([]time.Time, len(ids))
	var eg errgroup.Group
	eg.SetLimit(firstSeenParallel)
	for i, id := range ids {
		eg.Go(func() error {
			first[i] = g.firstSeen(ctx, repo, id, now)
			return nil
		})
	}
	_ = eg.Wait()
	for i := range fs {
		fs[i].FirstSeen = first[index[fs[i].ID]]
	}
}

// firstSeen returns when advisory id was first seen in repo, recording now if never: the
// value is written once (set if absent, under a lock), so replicas seeing it at the same
// moment agree, and a later sighting never moves it.
func (g *Gate) firstSeen(ctx context.Context, repo, id string, now time.Time) time.Time {
	key := cache.FirstSeenKey(repo, id)
	var s sighting
	if raw, ok, _ := g.firstSeenMemo.Get(ctx, key); ok && cache.Decode(raw, cache.KindFirstSeen, firstSeenVersion, &s) {
		return s.First
	}
	store := g.coverage.store
	raw, ok, err := store.Get(ctx, key)
	if err != nil {
		return time.Time{}
	}
	if ok && cache.Decode(raw, cache.KindFirstSeen, firstSeenVersion, &s) {
		if now.Sub(s.Renewed) >= firstSeenRenew {
			s.Renewed = now
			g.storeSighting(ctx, store, key, s)
		}
		g.memoSighting(ctx, key, s)
		return s.First
	}
	ls, canLock := store.(lockingStore)
	if !canLock {
		return time.Time{}
	}
	token, locked, err := ls.Lock(ctx, cache.LockKey(key), firstSeenLock)
	if err != nil {
		return time.Time{}
	}
	if !locked {
		// Another replica (or request) is recording it at this very moment: wait a little
		// for its value, so that both count from the same sighting.
		return g.awaitSighting(ctx, store, key, now)
	}
	defer func() { _ = ls.Unlock(context.WithoutCancel(ctx), cache.LockKey(key), token) }()
	if raw, ok, err := store.Get(ctx, key); err == nil && ok && cache.Decode(raw, cache.KindFirstSeen, firstSeenVersion, &s) {
		g.memoSighting(ctx, key, s)
		return s.First
	}
	s = sighting{First: now, Renewed: now}
	if !g.storeSighting(ctx, store, key, s) {
		return now
	}
	g.memoSighting(ctx, key, s)
	return now
}

// awaitSighting waits up to firstSeenWait for another holder of the lock to store the
// first sighting of key, and returns it; now if it does not appear in time.
func (g *Gate) awaitSighting(ctx context.Context, store coverageStore, key string, now time.Time) time.Time {
	t := time.NewTimer(firstSeenWait)
	defer t.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		var s sighting
		if raw, ok, err := store.Get(ctx, key); err == nil && ok && cache.Decode(raw, cache.KindFirstSeen, firstSeenVersion, &s) {
			g.memoSighting(ctx, key, s)
			return s.First
		}
		select {
		case <-tick.C:
		case <-t.C:
			return now
		case <-ctx.Done():
			return now
		}
	}
}

// storeSighting writes a sighting to the shared store.
func (g *Gate) storeSighting(ctx context.Context, store coverageStore, key string, s sighting) bool {
	b, err := cache.Encode(cache.KindFirstSeen, firstSeenVersion, s)
	return err == nil && store.Set(context.WithoutCancel(ctx), key, b, firstSeenTTL) == nil
}

// memoSighting remembers a sighting in this process for a while.
func (g *Gate) memoSighting(ctx context.Context, key string, s sighting) {
	if b, err := cache.Encode(cache.KindFirstSeen, firstSeenVersion, s); err == nil {
		_ = g.firstSeenMemo.Set(ctx, key, b, firstSeenMemo)
	}
}
