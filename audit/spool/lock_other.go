//go:build !unix

package spool

import "os"

// lock is a no-op where flock is not available.
func lock(string) (*os.File, error) { return nil, nil }
