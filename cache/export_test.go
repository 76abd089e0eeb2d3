package cache

import "testing"

// Hooks for the external tests of this package (cache_test), which may import
// internal/regtest (it imports cache, so tests inside the package cannot).

// RunStoreSuite runs the LockingStore conformance suite.
func RunStoreSuite(t *testing.T, newStore func(t *testing.T) (LockingStore, func(string) string)) {
	testStore(t, newStore)
}

// Keyspace names keys unique to t (no cleanup: the tests using it own their servers).
func Keyspace(t *testing.T) func(string) string { return keyspace(t, nil) }

// RunHoldExcludes checks that Hold on l excludes concurrent holders of key.
func RunHoldExcludes(t *testing.T, l Locker, key string) { testHoldExcludes(t, l, key) }

// Heard is how many invalidation messages n has received.
func (n *Near) Heard() uint64 { return n.heard.Load() }
