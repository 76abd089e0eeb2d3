package gate

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/policy"
)

// Fix timelines: when each vulnerability was first seen in each repository. They live in
// the records store (see Records), which every replica shares when it is PostgreSQL, so
// remediation windows count from the same day, across restarts and cache flushes.
const (
	// firstSeenRenew is how often a sighting still seen has its last-seen date moved
	// forward: only a vulnerability gone from a repository for the retention period
	// starts a new timeline there.
	firstSeenRenew = 30 * 24 * time.Hour
	// firstSeenMemo is how long a process remembers a sighting it read, so that decisions
	// (computed on every pull) do not ask the store for every finding: a first sighting
	// never moves once written.
	firstSeenMemo = 24 * time.Hour
	// firstSeenParallel is how many sightings of one image are looked up at once.
	firstSeenParallel = 8
	// firstSeenVersion is the format version of memoised sightings.
	firstSeenVersion = 2
)

// sighting is when a vulnerability was first seen in a repository, and when it was last
// recorded as seen.
type sighting struct {
	First   time.Time `json:"first"`
	Renewed time.Time `json:"renewed"`
}

// recordFirstSeen sets the FirstSeen of each finding of an image of repo: when its
// vulnerability (by advisory id) was first seen in repo, recording now (the gate's clock)
// for those never seen before. When the records store fails, the findings it could not
// date keep FirstSeen zero and the error says so: the environment's fail mode decides.
func (g *Gate) recordFirstSeen(ctx context.Context, repo string, fs []policy.VulnerabilityFinding) error {
	if len(fs) == 0 {
		return nil
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
	var (
		mu   sync.Mutex
		errs []error
		eg   errgroup.Group
	)
	eg.SetLimit(firstSeenParallel)
	for i, id := range ids {
		eg.Go(func() error {
			t, err := g.firstSeen(ctx, repo, id, now)
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			first[i] = t
			return nil
		})
	}
	_ = eg.Wait()
	for i := range fs {
		fs[i].FirstSeen = first[index[fs[i].ID]]
	}
	if len(errs) > 0 {
		return recordsUnavailable{errs[0]}
	}
	return nil
}

// firstSeen returns when advisory id was first seen in repo, recording now if never: the
// store writes it once (first writer wins), so replicas seeing it at the same moment agree,
// and a later sighting never moves it. The store is written only for a new sighting and
// once every firstSeenRenew for one still seen.
func (g *Gate) firstSeen(ctx context.Context, repo, id string, now time.Time) (time.Time, error) {
	key := cache.FirstSeenKey(repo, id)
	var s sighting
	if raw, ok, _ := g.firstSeenMemo.Get(ctx, key); ok && cache.Decode(raw, cache.KindFirstSeen, firstSeenVersion, &s) && now.Sub(s.Renewed) < firstSeenRenew {
		return s.First, nil
	}
	got, ok, err := g.records.Sighting(ctx, repo, id)
	if err != nil {
		return time.Time{}, err
	}
	if !ok || now.Sub(got.LastSeen) >= firstSeenRenew {
		ctx := context.WithoutCancel(ctx) // a sighting is written whole or not at all
		if got, err = g.records.Sight(ctx, repo, id, now); err != nil {
			return time.Time{}, err
		}
	}
	if b, err := cache.Encode(cache.KindFirstSeen, firstSeenVersion, sighting{First: got.First, Renewed: got.LastSeen}); err == nil {
		_ = g.firstSeenMemo.Set(ctx, key, b, firstSeenMemo)
	}
	return got.First, nil
}
