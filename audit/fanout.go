package audit

import (
	"context"
	"errors"
)

// Recorder records one event.
type Recorder interface {
	Record(ctx context.Context, e Event) error
}

// Fanout records each event to every one of its recorders, in order (the JSON log first,
// then the SIEM sinks, whose Record never waits for their destination). Every recorder
// gets the event whatever the others answer; their errors are joined.
type Fanout []Recorder

// Record hands e to every recorder.
func (f Fanout) Record(ctx context.Context, e Event) error {
	var errs []error
	for _, r := range f {
		if err := r.Record(ctx, e); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
