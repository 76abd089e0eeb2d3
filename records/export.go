package records

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Line is one line of an export: exactly one of its fields is set.
type Line struct {
	Tag      *TagRecord    `json:"tag,omitempty"`
	Sighting *Sighting     `json:"sighting,omitempty"`
	Previous *Push         `json:"previous,omitempty"`
	Baseline *Baseline     `json:"baseline,omitempty"`
	Layers   *LayerRecord  `json:"layers,omitempty"`
	Reminder *ReminderMark `json:"reminder,omitempty"`
	Decision *Decision     `json:"decision,omitempty"`
}

// TagRecord is a tag's first digest.
type TagRecord struct {
	Repository string    `json:"repository"`
	Tag        string    `json:"tag"`
	Digest     string    `json:"digest"`
	At         time.Time `json:"at"`
}

// Push is the last accepted push to a repository.
type Push struct {
	Repository string    `json:"repository"`
	Digest     string    `json:"digest"`
	At         time.Time `json:"at"`
}

// LayerRecord is the image last seen with a list of layers.
type LayerRecord struct {
	LayersHash string    `json:"layersHash"`
	Image      Image     `json:"image"`
	At         time.Time `json:"at"`
}

// ReminderMark is a reminder sent for an exception on a day.
type ReminderMark struct {
	ExceptionID string    `json:"exceptionId"`
	Day         string    `json:"day"`
	At          time.Time `json:"at"`
}

// maxLine bounds one line of an import.
const maxLine = 8 << 20

// Export writes every record as JSON lines (see Line) and returns how many it wrote.
func (s *Store) Export(ctx context.Context, w io.Writer) (int, error) {
	enc := json.NewEncoder(w)
	n := 0
	emit := func(l Line) error {
		n++
		return enc.Encode(l)
	}
	type table struct {
		query string
		line  func(scan func(...any) error) (Line, error)
	}
	tables := []table{
		{`SELECT repository, tag, digest, at FROM tag_ledger ORDER BY repository, tag`, func(scan func(...any) error) (Line, error) {
			var r TagRecord
			var at int64
			err := scan(&r.Repository, &r.Tag, &r.Digest, &at)
			r.At = fromNanos(at)
			return Line{Tag: &r}, err
		}},
		{`SELECT repository, advisory, first_seen, last_seen FROM sightings ORDER BY repository, advisory`, func(scan func(...any) error) (Line, error) {
			var r Sighting
			var first, last int64
			err := scan(&r.Repository, &r.Advisory, &first, &last)
			r.First, r.LastSeen = fromNanos(first), fromNanos(last)
			return Line{Sighting: &r}, err
		}},
		{`SELECT repository, digest, at FROM previous_push ORDER BY repository`, func(scan func(...any) error) (Line, error) {
			var r Push
			var at int64
			err := scan(&r.Repository, &r.Digest, &at)
			r.At = fromNanos(at)
			return Line{Previous: &r}, err
		}},
		{`SELECT repository, digest, how, base_repository, base_digest, manifest, at FROM baselines ORDER BY repository, digest`, func(scan func(...any) error) (Line, error) {
			var r Baseline
			var at int64
			err := scan(&r.Repository, &r.Digest, &r.How, &r.BaseRepository, &r.BaseDigest, &r.Manifest, &at)
			r.At = fromNanos(at)
			return Line{Baseline: &r}, err
		}},
		{`SELECT layers_hash, repository, digest, at FROM layer_index ORDER BY layers_hash`, func(scan func(...any) error) (Line, error) {
			var r LayerRecord
			var at int64
			err := scan(&r.LayersHash, &r.Image.Repository, &r.Image.Digest, &at)
			r.At = fromNanos(at)
			return Line{Layers: &r}, err
		}},
		{`SELECT exception_id, day, at FROM reminders ORDER BY exception_id, day`, func(scan func(...any) error) (Line, error) {
			var r ReminderMark
			var at int64
			err := scan(&r.ExceptionID, &r.Day, &at)
			r.At = fromNanos(at)
			return Line{Reminder: &r}, err
		}},
		{`SELECT at, repository, digest, reference, action, environment, verdict, results, request_id, policy_revision FROM decisions ORDER BY at, id`, func(scan func(...any) error) (Line, error) {
			var r Decision
			var at int64
			var results string
			err := scan(&at, &r.Repository, &r.Digest, &r.Reference, &r.Action, &r.Environment, &r.Verdict, &results, &r.RequestID, &r.PolicyRevision)
			r.Time, r.Results = fromNanos(at), json.RawMessage(results)
			return Line{Decision: &r}, err
		}},
	}
	for _, t := range tables {
		if err := s.exportTable(ctx, t.query, t.line, emit); err != nil {
			return n, err
		}
	}
	return n, nil
}

func (s *Store) exportTable(ctx context.Context, query string, line func(func(...any) error) (Line, error), emit func(Line) error) error {
	rows, err := s.db.QueryContext(ctx, query)
	if err != nil {
		return fmt.Errorf("records: exporting: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		l, err := line(rows.Scan)
		if err != nil {
			return fmt.Errorf("records: exporting: %w", err)
		}
		if err := emit(l); err != nil {
			return fmt.Errorf("records: writing the export: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("records: exporting: %w", err)
	}
	return nil
}

// Import reads JSON lines written by Export and merges them into the store: a tag keeps
// its first digest, a sighting the earliest first and the latest last-seen date, the
// newer of two previous pushes, baselines and layer records wins; marks and decisions
// already present are kept once. It returns how many lines it read; a bad line stops the
// import with an error naming its line number (the lines before it are imported).
func (s *Store) Import(ctx context.Context, r io.Reader) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	n := 0
	for sc.Scan() {
		n++
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		var l Line
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			return n - 1, fmt.Errorf("records: import line %d: %w", n, err)
		}
		if err := s.ImportLine(ctx, l); err != nil {
			return n - 1, fmt.Errorf("records: import line %d: %w", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return n, fmt.Errorf("records: import after line %d: %w", n, err)
	}
	return n, nil
}

// ImportLine merges one record into the store (see Import).
func (s *Store) ImportLine(ctx context.Context, l Line) error {
	set := 0
	for _, p := range []bool{l.Tag != nil, l.Sighting != nil, l.Previous != nil, l.Baseline != nil, l.Layers != nil, l.Reminder != nil, l.Decision != nil} {
		if p {
			set++
		}
	}
	if set != 1 {
		return fmt.Errorf("%w: a line holds exactly one record, this one holds %d", ErrInvalid, set)
	}
	var err error
	switch {
	case l.Tag != nil:
		_, err = s.RecordTag(ctx, l.Tag.Repository, l.Tag.Tag, l.Tag.Digest, l.Tag.At)
	case l.Sighting != nil:
		err = s.mergeSighting(ctx, *l.Sighting)
	case l.Previous != nil:
		err = s.SetPrevious(ctx, l.Previous.Repository, l.Previous.Digest, l.Previous.At)
	case l.Baseline != nil:
		err = s.SetBaseline(ctx, *l.Baseline)
	case l.Layers != nil:
		err = s.SetLayers(ctx, l.Layers.LayersHash, l.Layers.Image, l.Layers.At)
	case l.Reminder != nil:
		_, err = s.MarkReminder(ctx, l.Reminder.ExceptionID, l.Reminder.Day, l.Reminder.At)
	case l.Decision != nil:
		err = s.AddDecision(ctx, *l.Decision)
	}
	return err
}

// mergeSighting keeps the earliest first and the latest last-seen date of s and the stored
// sighting.
func (s *Store) mergeSighting(ctx context.Context, sg Sighting) error {
	if err := checkNames("repository", sg.Repository, "advisory", sg.Advisory); err != nil {
		return err
	}
	if err := errors.Join(checkTime("first", sg.First), checkTime("last seen", sg.LastSeen)); err != nil {
		return err
	}
	if sg.LastSeen.Before(sg.First) {
		return fmt.Errorf("records: %w: sighting of %s in %s last seen before it was first seen", ErrInvalid, sg.Advisory, sg.Repository)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO sightings (repository, advisory, first_seen, last_seen) VALUES ($1, $2, $3, $4)
		ON CONFLICT (repository, advisory) DO UPDATE SET
		first_seen = CASE WHEN excluded.first_seen < sightings.first_seen THEN excluded.first_seen ELSE sightings.first_seen END,
		last_seen = CASE WHEN excluded.last_seen > sightings.last_seen THEN excluded.last_seen ELSE sightings.last_seen END`,
		sg.Repository, sg.Advisory, nanos(sg.First), nanos(sg.LastSeen)); err != nil {
		return fmt.Errorf("records: importing the sighting of %s in %s: %w", sg.Advisory, sg.Repository, err)
	}
	return nil
}
