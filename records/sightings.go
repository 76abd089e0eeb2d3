package records

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Sighting is when an advisory was first and last seen in an image of a repository.
type Sighting struct {
	Repository string    `json:"repository"`
	Advisory   string    `json:"advisory"`
	First      time.Time `json:"first"`
	LastSeen   time.Time `json:"lastSeen"`
}

// Sight records that advisory was seen in repo at now and returns the stored sighting:
// the first sighting is written once (concurrent callers agree on it, a later sighting
// never moves it); the last-seen date only moves forward.
func (s *Store) Sight(ctx context.Context, repo, advisory string, now time.Time) (Sighting, error) {
	if err := checkNames("repository", repo, "advisory", advisory); err != nil {
		return Sighting{}, err
	}
	if err := checkTime("time", now); err != nil {
		return Sighting{}, err
	}
	n := nanos(now)
	if _, err := s.db.ExecContext(ctx, `INSERT INTO sightings (repository, advisory, first_seen, last_seen) VALUES ($1, $2, $3, $3)
		ON CONFLICT (repository, advisory) DO UPDATE SET last_seen = excluded.last_seen WHERE sightings.last_seen < excluded.last_seen`,
		repo, advisory, n); err != nil {
		return Sighting{}, fmt.Errorf("records: recording a sighting of %s in %s: %w", advisory, repo, err)
	}
	got, ok, err := s.Sighting(ctx, repo, advisory)
	if err == nil && !ok {
		err = fmt.Errorf("records: sighting of %s in %s recorded but not found", advisory, repo)
	}
	return got, err
}

// Sighting returns the sighting of advisory in repo; ok is false when there is none.
func (s *Store) Sighting(ctx context.Context, repo, advisory string) (Sighting, bool, error) {
	var first, last int64
	err := s.db.QueryRowContext(ctx, `SELECT first_seen, last_seen FROM sightings WHERE repository = $1 AND advisory = $2`, repo, advisory).Scan(&first, &last)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Sighting{}, false, nil
	case err != nil:
		return Sighting{}, false, fmt.Errorf("records: reading the sighting of %s in %s: %w", advisory, repo, err)
	}
	return Sighting{Repository: repo, Advisory: advisory, First: fromNanos(first), LastSeen: fromNanos(last)}, true, nil
}
