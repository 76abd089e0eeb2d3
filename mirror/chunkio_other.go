//go:build !linux

package mirror

import (
	"errors"
	"os"
)

// startWriteback does nothing where sync_file_range(2) does not exist: the fsync closing
// the chunk writes everything.
func startWriteback(*os.File, int64, int64) {}

// setDirect: O_DIRECT is Linux's; elsewhere chunks go through the page cache.
func setDirect(_ *os.File, on bool) error {
	if on {
		return errors.New("O_DIRECT is not supported here")
	}
	return nil
}
