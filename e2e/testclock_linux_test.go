//go:build linux

package e2e

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// testClock is the file a gateway built with the testclock tag reads its time from
// (PORTCULLIS_TEST_CLOCK: an RFC 3339 instant, read at every decision and at every
// exception reminder check), and a count of how often the gateway has read it, from
// inotify. An idle gateway reads its clock only to check reminders (every 100 ms in
// such a build), so reads are how a test sees that reminder checks ran: "ten more
// reads" means at least ten checks (fewer only if something else asked the time).
type testClock struct {
	path  string
	reads atomic.Int64
}

// clockName is the clock file's name in its directory.
const clockName = "now"

// newTestClock writes start into a fresh clock file and starts counting the reads of it.
func newTestClock(t *testing.T, start time.Time) *testClock {
	t.Helper()
	dir := t.TempDir()
	c := &testClock{path: filepath.Join(dir, clockName)}
	c.set(t, start)
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC | syscall.IN_NONBLOCK)
	if err != nil {
		t.Fatalf("inotify: %v", err)
	}
	// The directory is watched, not the file: set replaces the file (a rename, so that
	// no reader ever sees it half written), and a watch on the file would stay on the
	// old one.
	if _, err := syscall.InotifyAddWatch(fd, dir, syscall.IN_CLOSE_NOWRITE); err != nil {
		syscall.Close(fd)
		t.Fatalf("inotify watch on %s: %v", dir, err)
	}
	f := os.NewFile(uintptr(fd), "inotify") // non-blocking: Close ends the Read below
	t.Cleanup(func() { f.Close() })
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := f.Read(buf)
			if err != nil {
				return
			}
			for off := 0; off+syscall.SizeofInotifyEvent <= n; {
				mask := binary.NativeEndian.Uint32(buf[off+4:])
				nameLen := int(binary.NativeEndian.Uint32(buf[off+12:]))
				start := off + syscall.SizeofInotifyEvent
				name := string(bytes.TrimRight(buf[start:min(start+nameLen, n)], "\x00"))
				if mask&syscall.IN_CLOSE_NOWRITE != 0 && name == clockName {
					c.reads.Add(1)
				}
				off = start + nameLen
			}
		}
	}()
	return c
}

// set moves the clock to now.
func (c *testClock) set(t *testing.T, now time.Time) {
	t.Helper()
	tmp := c.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(now.UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, c.path); err != nil {
		t.Fatal(err)
	}
}

// awaitReads waits (up to 30 s) until the gateway has read the clock n more times.
func (c *testClock) awaitReads(t *testing.T, n int64) {
	t.Helper()
	from := c.reads.Load()
	if !poll(30*time.Second, func() bool { return c.reads.Load()-from >= n }) {
		t.Fatalf("the gateway read its clock %d times in 30 s, want %d: are reminder checks running?", c.reads.Load()-from, n)
	}
}
