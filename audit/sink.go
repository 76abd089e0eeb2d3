package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// JSONSink writes each event as one line of JSON to a writer. It is safe for concurrent
// use; each event is written with a single Write call.
type JSONSink struct {
	mu sync.Mutex
	w  io.Writer
	c  io.Closer
}

// NewJSONSink writes events to w.
func NewJSONSink(w io.Writer) *JSONSink { return &JSONSink{w: w} }

// OpenFile appends events to the file at path, creating it and its directory; "-" and
// "stdout" write to standard output.
func OpenFile(path string) (*JSONSink, error) {
	if path == "-" || path == "stdout" {
		return NewJSONSink(os.Stdout), nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return &JSONSink{w: f, c: f}, nil
}

// Record writes one event.
func (s *JSONSink) Record(_ context.Context, e Event) error {
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encoding audit event: %w", err)
	}
	line = append(line, '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.w.Write(line); err != nil {
		return fmt.Errorf("writing audit event: %w", err)
	}
	return nil
}

// Close closes the underlying file, if the sink opened one.
func (s *JSONSink) Close() error {
	if s.c == nil {
		return nil
	}
	return s.c.Close()
}
