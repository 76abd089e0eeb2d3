package records

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// DefaultRetention is how long decisions and sightings no longer seen are kept by default.
const DefaultRetention = 400 * 24 * time.Hour

// Decision is one admission decision: the audit trail.
type Decision struct {
	// ID is assigned by the store; it orders decisions of one store, not across stores.
	ID          int64     `json:"id,omitempty"`
	Time        time.Time `json:"time"`
	Repository  string    `json:"repository"`
	Digest      string    `json:"digest,omitempty"`
	Reference   string    `json:"reference,omitempty"`
	Action      string    `json:"action"`
	Environment string    `json:"environment,omitempty"`
	Verdict     string    `json:"verdict"`
	// Results are the rule results as JSON (an array), "null" when none.
	Results        json.RawMessage `json:"results,omitempty"`
	RequestID      string          `json:"requestId,omitempty"`
	PolicyRevision string          `json:"policyRevision,omitempty"`
}

// maxResults bounds the rule results of one decision.
const maxResults = 1 << 20

// AddDecision stores d. Storing the same decision twice (same time, repository, digest,
// reference, action and request id) keeps one row.
func (s *Store) AddDecision(ctx context.Context, d Decision) error {
	if err := checkNames("repository", d.Repository, "action", d.Action, "verdict", d.Verdict); err != nil {
		return err
	}
	if err := checkTime("time", d.Time); err != nil {
		return err
	}
	for name, v := range map[string]string{"digest": d.Digest, "reference": d.Reference, "environment": d.Environment,
		"request id": d.RequestID, "policy revision": d.PolicyRevision} {
		if len(v) > maxName || strings.ContainsRune(v, 0) {
			return fmt.Errorf("records: %w: %s is longer than %d bytes or contains a NUL byte", ErrInvalid, name, maxName)
		}
	}
	results := string(d.Results)
	if results == "" {
		results = "null"
	}
	if t := strings.TrimSpace(results); len(results) > maxResults || !json.Valid([]byte(t)) || (t != "null" && !strings.HasPrefix(t, "[")) {
		return fmt.Errorf("records: %w: rule results are not a JSON array of at most %d bytes", ErrInvalid, maxResults)
	}
	if _, err := s.ex.ExecContext(ctx, `INSERT INTO decisions (at, repository, digest, reference, action, environment, verdict, results, request_id, policy_revision)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING`,
		nanos(d.Time), d.Repository, d.Digest, d.Reference, d.Action, d.Environment, d.Verdict, results, d.RequestID, d.PolicyRevision); err != nil {
		return fmt.Errorf("records: recording a decision on %s: %w", d.Repository, err)
	}
	return nil
}

// Query selects decisions; zero fields select everything.
type Query struct {
	Repository string
	Digest     string
	// Since keeps decisions at or after it.
	Since time.Time
	// Limit bounds the rows returned (the newest first); zero means 1000.
	Limit int
}

// Decisions returns the decisions q selects, newest first.
func (s *Store) Decisions(ctx context.Context, q Query) ([]Decision, error) {
	where, args := []string{"1=1"}, []any{}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if q.Repository != "" {
		add("repository = $%d", q.Repository)
	}
	if q.Digest != "" {
		add("digest = $%d", q.Digest)
	}
	if !q.Since.IsZero() {
		add("at >= $%d", nanos(q.Since))
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 1000
	}
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, fmt.Sprintf(`SELECT id, at, repository, digest, reference, action, environment, verdict, results, request_id, policy_revision
		FROM decisions WHERE %s ORDER BY at DESC, id DESC LIMIT $%d`, strings.Join(where, " AND "), len(args)), args...)
	if err != nil {
		return nil, fmt.Errorf("records: listing decisions: %w", err)
	}
	defer rows.Close()
	var out []Decision
	for rows.Next() {
		var d Decision
		var at int64
		var results string
		if err := rows.Scan(&d.ID, &at, &d.Repository, &d.Digest, &d.Reference, &d.Action, &d.Environment, &d.Verdict, &results, &d.RequestID, &d.PolicyRevision); err != nil {
			return nil, fmt.Errorf("records: reading decisions: %w", err)
		}
		d.Time, d.Results = fromNanos(at), json.RawMessage(results)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("records: reading decisions: %w", err)
	}
	return out, nil
}

// Prune deletes the decisions made before cutoff and the sightings last seen before it (a
// vulnerability gone from a repository that long starts a new timeline when it comes
// back), and returns how many rows it deleted.
func (s *Store) Prune(ctx context.Context, cutoff time.Time) (int64, error) {
	var total int64
	for _, st := range []string{`DELETE FROM decisions WHERE at < $1`, `DELETE FROM sightings WHERE last_seen < $1`} {
		res, err := s.db.ExecContext(ctx, st, nanos(cutoff))
		if err != nil {
			return total, fmt.Errorf("records: pruning: %w", err)
		}
		n, _ := res.RowsAffected()
		total += n
	}
	return total, nil
}
