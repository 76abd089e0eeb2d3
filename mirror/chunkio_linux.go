package mirror

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing [off, off+n) of f to disk without
// waiting for it; the later fsync waits for what is left. Failure only loses the head start.
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}

// writeVec writes bufs to f in order with writev(2), as few system calls as the kernel
// allows (it may write less than asked; the rest follows). bufs is consumed.
func writeVec(f *os.File, bufs [][]byte) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	for len(bufs) > 0 {
		var n int
		var werr error
		if err := rc.Write(func(fd uintptr) bool {
			for {
				n, werr = unix.Writev(int(fd), bufs)
				if !errors.Is(werr, unix.EINTR) {
					return true
				}
			}
		}); err != nil {
			return err
		}
		if werr != nil {
			return &os.PathError{Op: "writev", Path: f.Name(), Err: werr}
		}
		if n == 0 {
			return &os.PathError{Op: "writev", Path: f.Name(), Err: io.ErrShortWrite}
		}
		for n > 0 {
			k := min(n, len(bufs[0]))
			bufs[0] = bufs[0][k:]
			n -= k
			if len(bufs[0]) == 0 {
				bufs = bufs[1:]
			}
		}
		for len(bufs) > 0 && len(bufs[0]) == 0 {
			bufs = bufs[1:]
		}
	}
	return nil
}
