package records

import (
	"context"
	"fmt"
)

// Writes is what one decision leaves behind; Write stores it together or not at all.
type Writes struct {
	Layers   *LayerRecord
	Baseline *Baseline
	Previous *Push
	Decision *Decision
}

// Empty reports whether w writes nothing.
func (w Writes) Empty() bool {
	return w.Layers == nil && w.Baseline == nil && w.Previous == nil && w.Decision == nil
}

// Write stores w in one transaction: every record of it, or (with an error) none.
func (s *Store) Write(ctx context.Context, w Writes) error {
	if w.Empty() {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("records: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	t := &Store{db: s.db, ex: tx, backend: s.backend}
	if l := w.Layers; l != nil {
		if err := t.SetLayers(ctx, l.LayersHash, l.Image, l.At); err != nil {
			return err
		}
	}
	if b := w.Baseline; b != nil {
		if err := t.SetBaseline(ctx, *b); err != nil {
			return err
		}
	}
	if p := w.Previous; p != nil {
		if err := t.SetPrevious(ctx, p.Repository, p.Digest, p.At); err != nil {
			return err
		}
	}
	if d := w.Decision; d != nil {
		if err := t.AddDecision(ctx, *d); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("records: committing: %w", err)
	}
	return nil
}
