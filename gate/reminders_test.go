package gate_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/records"
)

// TestExceptionRemindersOncePerDayInTheWindow follows the scenario: a 14-day
// exception with a 7-day reminder window gives no reminder on day 5, one on day 8 and one
// on day 12, however many replicas and runs there are.
func TestExceptionRemindersOncePerDayInTheWindow(t *testing.T) {
	p, err := policy.Parse([]byte(testPolicy + `exceptions:
  - id: EXC-0142
    scope:
      repository: team/app
      rules: [no-latest]
    reason: "legacy deployer"
    owner: team-a@example.com
    approvedBy: security@example.com
    created: 2026-12-01
    expires: 2026-12-15
    closure: "pin digests"
    ticket: SEC-812
`))
	if err != nil {
		t.Fatal(err)
	}
	shared := cache.NewMemory(1 << 20)
	rs, err := records.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), records.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	day0 := time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		day  int
		want int
	}{{5, 0}, {8, 1}, {12, 1}} {
		now := day0.AddDate(0, 0, c.day)
		sink := &memSink{}
		replicas := []*gate.Gate{
			gate.New(p, nil, sink, gate.WithCache(shared), gate.WithRecords(rs), gate.WithClock(func() time.Time { return now })),
			gate.New(p, nil, sink, gate.WithCache(shared), gate.WithRecords(rs), gate.WithClock(func() time.Time { return now.Add(3 * time.Hour) })),
		}
		for _, g := range replicas {
			g.RemindExceptions(context.Background())
			g.RemindExceptions(context.Background()) // a second run the same day
		}
		if len(sink.events) != c.want {
			t.Fatalf("day %d: %d reminder events, want %d", c.day, len(sink.events), c.want)
		}
		for _, e := range sink.events {
			if e.Type != audit.TypeExceptionExpiring || e.Exception == nil || e.Exception.ID != "EXC-0142" ||
				e.Exception.Owner != "team-a@example.com" || e.Exception.Expires != "2026-12-15" || e.DaysLeft <= 0 {
				t.Fatalf("day %d: reminder %+v", c.day, e)
			}
		}
	}
}
