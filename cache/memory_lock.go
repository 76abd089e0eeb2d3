package cache

import (
	"context"
	"time"
)

// sweepEvery is how many Lock calls pass between sweeps of expired in-process locks.
const sweepEvery = 256

// memLocks are Memory's in-process locks, guarded by Memory.mu and never evicted.
type memLocks struct {
	held  map[string]memLock
	calls int
}

type memLock struct {
	token   string
	expires time.Time
}

// Lock takes key for ttl unless another token holds it.
func (s *Memory) Lock(_ context.Context, key string, ttl time.Duration) (string, bool, error) {
	if ttl <= 0 {
		return "", false, errLockTTL
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.locks.calls++; s.locks.calls%sweepEvery == 0 {
		for k, l := range s.locks.held {
			if !now.Before(l.expires) {
				delete(s.locks.held, k)
			}
		}
	}
	if l, ok := s.locks.held[key]; ok && now.Before(l.expires) {
		return "", false, nil
	}
	token := newToken()
	s.locks.held[key] = memLock{token: token, expires: now.Add(ttl)}
	return token, true, nil
}

// Extend pushes the expiry of key to ttl from now if token still holds it.
func (s *Memory) Extend(_ context.Context, key, token string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, errLockTTL
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.locks.held[key]
	if !ok || l.token != token || !now.Before(l.expires) {
		return false, nil
	}
	s.locks.held[key] = memLock{token: token, expires: now.Add(ttl)}
	return true, nil
}

// Unlock releases key if token holds it.
func (s *Memory) Unlock(_ context.Context, key, token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.locks.held[key]; ok && l.token == token {
		delete(s.locks.held, key)
	}
	return nil
}
