package proxy

import (
	"net/http"
	"sync"
	"time"

	"github.com/portcullis-dev/portcullis/cache"
)

// How long a tag push holds the replicas' lock on its tag (renewed while held), and how
// long another push of the same tag waits for it.
const (
	tagLockTTL  = 30 * time.Second
	tagLockWait = 2 * time.Minute
)

// lockTag serialises the pushes of one tag where the gateway forbids moving tags, in this
// process and across the replicas sharing the cache, so that deciding on a tag (reading
// where it points upstream) and storing it are one step: of concurrent pushes of different
// images to a new tag exactly one is accepted, the others are judged as moves. Pushes by
// digest and tags that may move need no lock. It fails (503) when the shared lock cannot be
// taken: pushing without it could let two images claim one tag.
func (p *Proxy) lockTag(r *http.Request, route Route) (func(), error) {
	if p.gate == nil || route.IsDigest() || !p.gate.TagsImmutable(route.Name, doorHost(r)) {
		return func() {}, nil
	}
	key := route.Name + ":" + route.Reference
	unlock := p.tagLocks.lock(key)
	l, ok := p.cache.(cache.Locker)
	if !ok {
		return unlock, nil
	}
	release, err := cache.Hold(r.Context(), l, cache.LockKey(cache.TagKey(route.Name, route.Reference)), tagLockTTL, tagLockWait)
	if err != nil {
		unlock()
		e := errorf(http.StatusServiceUnavailable, CodeUnavailable,
			"could not take the lock on tag %s of %s that keeps concurrent pushes of one tag apart (%v); retry", route.Reference, route.Name, err)
		e.Header = http.Header{"Retry-After": {"5"}}
		return nil, e
	}
	return func() { release(); unlock() }, nil
}

// keyedMutex is a set of mutexes by key that forgets a key when nobody holds or waits
// for it, so that it stays as small as the number of keys in use.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*refMutex
}

// refMutex is a mutex with the count of its holders and waiters.
type refMutex struct {
	sync.Mutex
	refs int
}

// lock takes key's mutex and returns its release.
func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*refMutex{}
	}
	m := k.locks[key]
	if m == nil {
		m = &refMutex{}
		k.locks[key] = m
	}
	m.refs++
	k.mu.Unlock()
	m.Lock()
	return func() {
		m.Unlock()
		k.mu.Lock()
		if m.refs--; m.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
