package cache

import (
	"bytes"
	"container/list"
	"context"
	"sync"
	"time"
)

// entryOverhead is what Memory charges for one entry besides its key and value bytes.
const entryOverhead = 64

// Memory is an in-process LockingStore: entries expire after their TTL, and the least
// recently used ones are evicted once keys and values exceed a byte budget. Its locks
// exclude only callers in the same process. It is safe for concurrent use.
type Memory struct {
	mu       sync.Mutex
	maxBytes int64
	used     int64
	order    *list.List               // of *memEntry, most recently used first
	items    map[string]*list.Element // key → element of order
	locks    memLocks
	m        *metrics
}

type memEntry struct {
	key     string
	value   []byte
	expires time.Time // zero: never
}

func (e *memEntry) size() int64 { return int64(len(e.key) + len(e.value) + entryOverhead) }

// NewMemory returns an empty Memory holding at most maxBytes of keys, values and
// per-entry overhead; a value too large for the budget is not kept at all.
func NewMemory(maxBytes int64, opts ...Option) *Memory {
	s := newSettings(opts)
	return &Memory{
		maxBytes: maxBytes,
		order:    list.New(),
		items:    map[string]*list.Element{},
		locks:    memLocks{held: map[string]memLock{}},
		m:        newMetrics(s.meter),
	}
}

// Get returns a copy of the value under key, if present and not expired.
func (s *Memory) Get(ctx context.Context, key string) ([]byte, bool, error) {
	v, ok := s.get(key, time.Now())
	s.m.lookup(ctx, "memory", key, ok)
	return v, ok, nil
}

func (s *Memory) get(key string, now time.Time) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.items[key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*memEntry)
	if !e.expires.IsZero() && !now.Before(e.expires) {
		s.remove(el)
		return nil, false
	}
	s.order.MoveToFront(el)
	return bytes.Clone(e.value), true
}

// Set stores a copy of value under key for ttl (no expiry if ttl <= 0), evicting the least
// recently used entries as needed.
func (s *Memory) Set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	e := &memEntry{key: key, value: bytes.Clone(value)}
	if e.value == nil {
		e.value = []byte{}
	}
	if ttl > 0 {
		e.expires = time.Now().Add(ttl)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.items[key]; ok {
		s.remove(el)
	}
	if e.size() > s.maxBytes {
		return nil
	}
	s.items[key] = s.order.PushFront(e)
	s.used += e.size()
	for s.used > s.maxBytes {
		s.remove(s.order.Back())
	}
	return nil
}

// Delete removes key.
func (s *Memory) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.items[key]; ok {
		s.remove(el)
	}
	return nil
}

// remove drops el; the caller holds s.mu.
func (s *Memory) remove(el *list.Element) {
	e := s.order.Remove(el).(*memEntry)
	delete(s.items, e.key)
	s.used -= e.size()
}
