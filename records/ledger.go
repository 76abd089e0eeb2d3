package records

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// RecordTag records that tag of repo was stored with digest at at, unless the tag already
// has a first digest, and returns the tag's first digest: digest when this call recorded
// it, the earlier one otherwise. Concurrent callers agree on one first digest.
func (s *Store) RecordTag(ctx context.Context, repo, tag, digest string, at time.Time) (first string, err error) {
	if err := checkNames("repository", repo, "tag", tag, "digest", digest); err != nil {
		return "", err
	}
	if err := checkTime("time", at); err != nil {
		return "", err
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO tag_ledger (repository, tag, digest, at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
		repo, tag, digest, nanos(at)); err != nil {
		return "", fmt.Errorf("records: recording tag %s:%s: %w", repo, tag, err)
	}
	first, ok, err := s.FirstDigest(ctx, repo, tag)
	if err == nil && !ok {
		err = fmt.Errorf("records: tag %s:%s recorded but not found", repo, tag)
	}
	return first, err
}

// FirstDigest returns the first digest tag of repo was recorded with; ok is false when the
// tag has none.
func (s *Store) FirstDigest(ctx context.Context, repo, tag string) (digest string, ok bool, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT digest FROM tag_ledger WHERE repository = $1 AND tag = $2`, repo, tag).Scan(&digest)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("records: reading the first digest of %s:%s: %w", repo, tag, err)
	}
	return digest, true, nil
}
