package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testClock is the file a gateway built with the testclock tag reads its time from
// (PORTCULLIS_TEST_CLOCK: an RFC 3339 instant, read at every decision and at every
// exception reminder check, which such a build runs every 100 ms).
type testClock struct {
	path string
}

// newTestClock writes start into a fresh clock file.
func newTestClock(t *testing.T, start time.Time) *testClock {
	t.Helper()
	c := &testClock{path: filepath.Join(t.TempDir(), "now")}
	c.set(t, start)
	return c
}

// set moves the clock to now. The file is replaced by a rename, so the gateway never reads
// it half written.
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

// awaitReminderChecks waits (up to 30 s) until gw has run n more exception reminder checks
// (portcullis_exceptions_reminder_checks_total); with n ≥ 2, at least one whole check ran
// after the call began, at the clock set before it.
func awaitReminderChecks(t *testing.T, gw *gateway, n float64) {
	t.Helper()
	checks := func() float64 {
		return sumMetric(scrapeMetrics(t, gw), "portcullis_exceptions_reminder_checks_total", nil)
	}
	from := checks()
	if !poll(30*time.Second, func() bool { return checks()-from >= n }) {
		t.Fatalf("the gateway ran %v reminder checks in 30 s, want %v: are reminder checks running?", checks()-from, n)
	}
}
