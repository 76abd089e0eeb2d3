//go:build !testclock

package main

import (
	"log/slog"
	"time"
)

// gatewayClock is the clock the gateway decides by, and how often it checks for
// exception reminders. Binaries built with the testclock tag can read the time from a
// file instead (see clock_testclock.go); release builds cannot.
func gatewayClock(*slog.Logger) (now func() time.Time, reminderEvery time.Duration) {
	return time.Now, time.Hour
}
