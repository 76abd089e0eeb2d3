package records

import (
	"context"
	"fmt"
	"time"
)

// MarkReminder records that the reminder for exception id on day (YYYY-MM-DD) is being
// sent and reports whether this call was the first to mark it: replicas sharing the store
// send each reminder once.
func (s *Store) MarkReminder(ctx context.Context, id, day string, at time.Time) (first bool, err error) {
	if err := checkNames("exception id", id, "day", day); err != nil {
		return false, err
	}
	if _, err := time.Parse(time.DateOnly, day); err != nil {
		return false, fmt.Errorf("records: %w: day %q is not YYYY-MM-DD", ErrInvalid, day)
	}
	if err := checkTime("time", at); err != nil {
		return false, err
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO reminders (exception_id, day, at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, id, day, nanos(at))
	if err != nil {
		return false, fmt.Errorf("records: marking reminder %s on %s: %w", id, day, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("records: marking reminder %s on %s: %w", id, day, err)
	}
	return n == 1, nil
}

// UnmarkReminder removes the mark of exception id on day, so that a reminder that could
// not be sent is tried again.
func (s *Store) UnmarkReminder(ctx context.Context, id, day string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM reminders WHERE exception_id = $1 AND day = $2`, id, day); err != nil {
		return fmt.Errorf("records: unmarking reminder %s on %s: %w", id, day, err)
	}
	return nil
}
