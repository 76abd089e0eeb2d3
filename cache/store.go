package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"
)

// Store keeps byte values under string keys, each for a limited time.
type Store interface {
	// Get returns the value stored under key; ok is false when there is none.
	Get(ctx context.Context, key string) (value []byte, ok bool, err error)
	// Set stores value under key for ttl; a ttl of zero or less means no expiry.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// Locker hands out expiring locks that only their holder, named by its token, can release.
type Locker interface {
	// Lock takes key for ttl; ok is false when someone else holds it.
	Lock(ctx context.Context, key string, ttl time.Duration) (token string, ok bool, err error)
	// Extend pushes the expiry of a held lock to ttl from now; ok is false when token no
	// longer holds key.
	Extend(ctx context.Context, key, token string, ttl time.Duration) (ok bool, err error)
	// Unlock releases key if token still holds it, and otherwise does nothing.
	Unlock(ctx context.Context, key, token string) error
}

// LockingStore is a Store that also hands out locks; Flight coordinates through one.
type LockingStore interface {
	Store
	Locker
}

// errLockTTL is returned when a lock is asked for without a positive expiry.
var errLockTTL = errors.New("lock ttl must be positive")

// newToken returns a random lock token.
func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}
