//go:build !linux

package mirror

import "os"

// startWriteback does nothing where sync_file_range(2) does not exist: the fsync closing
// the chunk writes everything.
func startWriteback(*os.File, int64, int64) {}

// writeVec writes bufs to f in order, one write each.
func writeVec(f *os.File, bufs [][]byte) error {
	for _, b := range bufs {
		if _, err := f.Write(b); err != nil {
			return err
		}
	}
	return nil
}
