//go:build testclock

package main

import (
	"log/slog"
	"os"
	"strings"
	"time"
)

// gatewayClock, in binaries built with the testclock tag (the end-to-end tests build one),
// reads the time from the file PORTCULLIS_TEST_CLOCK names, an RFC 3339 instant, at every
// call, so a test moves the gateway's days forward by rewriting the file; reminders are
// then checked every 100ms. Without the variable it is the real clock. Release builds do
// not have this file: an environment variable can never move a production gateway's
// clock past an exception's expiry.
func gatewayClock(log *slog.Logger) (now func() time.Time, reminderEvery time.Duration) {
	path := os.Getenv("PORTCULLIS_TEST_CLOCK")
	if path == "" {
		return time.Now, time.Hour
	}
	log.Warn("TEST BUILD: the clock is read from a file", slog.String("file", path))
	return func() time.Time {
		b, err := os.ReadFile(path)
		if err != nil {
			return time.Now()
		}
		t, err := time.Parse(time.RFC3339, strings.TrimSpace(string(b)))
		if err != nil {
			return time.Now()
		}
		return t
	}, 100 * time.Millisecond
}
