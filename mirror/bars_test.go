package mirror

import (
	"bytes"
	"testing"
)

// TestBarsDraw drives the terminal bars through a run's events; they must finish
// without blocking and draw the last object's name.
func TestBarsDraw(t *testing.T) {
	var out bytes.Buffer
	b := NewBars(&out)
	b.Event(Event{Phase: "blob", Item: "sha256:aaaa", Bytes: 10, Done: 10, Total: 30})
	b.Event(Event{Phase: "blob", Item: "sha256:bbbb", Bytes: 20, Done: 30, Total: 30})
	b.Event(Event{Phase: "done", Item: "bundle", Done: 30, Total: 30})
	b.Wait()
	if !bytes.Contains(out.Bytes(), []byte("100 %")) {
		t.Fatalf("bars drew %q", out.String())
	}
}
