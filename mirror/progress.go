package mirror

import (
	"encoding/json"
	"io"
	"sync"
	"time"
)

// Event is one step of a long-running mirror command.
type Event struct {
	// Time is when it happened.
	Time time.Time `json:"time"`
	// Phase is "start", "blob", "manifest", "tag", "chunk", "verify" or "done".
	Phase string `json:"phase"`
	// Item names what the event is about: a digest, a chunk name, an image.
	Item string `json:"item,omitempty"`
	// Bytes is the size of the item.
	Bytes int64 `json:"bytes,omitempty"`
	// Done and Total count the bytes of the whole run so far and in all.
	Done  int64 `json:"done"`
	Total int64 `json:"total"`
}

// Progress receives events; it must be safe for use by one goroutine at a time.
type Progress interface {
	Event(Event)
}

// JSONLines writes every event as one JSON object per line, for CI logs.
type JSONLines struct {
	mu sync.Mutex
	w  io.Writer
}

// NewJSONLines writes events to w.
func NewJSONLines(w io.Writer) *JSONLines { return &JSONLines{w: w} }

// Event writes e as a line.
func (j *JSONLines) Event(e Event) {
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	_, _ = j.w.Write(append(b, '\n'))
}

// noProgress drops events.
type noProgress struct{}

func (noProgress) Event(Event) {}

// ByteProgress is a Progress that also follows the bytes of each blob while it is
// fetched (terminal bars do; JSON lines stay one line per object). Write finds it by type
// assertion.
type ByteProgress interface {
	Progress
	// Fetching says a blob of size bytes starts; the returned function is called with
	// the count of each read, and with -1 when the blob ends.
	Fetching(item string, size int64) func(n int64)
}

// countingReader reports each read to a ByteProgress callback.
type countingReader struct {
	r  io.Reader
	fn func(int64)
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.fn(int64(n))
	}
	return n, err
}
