package mirror

import (
	"bytes"
	"testing"
)

// TestBarsDraw drives the terminal bars through a run's events and byte counts; they
// must finish without blocking and reach 100 %.
func TestBarsDraw(t *testing.T) {
	var out bytes.Buffer
	b := NewBars(&out)
	var _ ByteProgress = b
	b.Event(Event{Phase: "start", Total: 30})
	fn := b.Fetching("sha256:aaaa", 10)
	fn(4)
	fn(6)
	fn(-1)
	b.Event(Event{Phase: "blob", Item: "sha256:aaaa", Bytes: 10, Done: 10, Total: 30})
	fn = b.Fetching("sha256:bbbb", 20)
	fn(5) // cut short: the bar is dropped
	fn(-1)
	b.Event(Event{Phase: "blob", Item: "sha256:bbbb", Bytes: 20, Done: 30, Total: 30})
	b.Event(Event{Phase: "done", Item: "bundle", Done: 30, Total: 30})
	b.Wait()
	if !bytes.Contains(out.Bytes(), []byte("100 %")) {
		t.Fatalf("bars drew %q", out.String())
	}
}

// TestCollectDrivesByteProgress checks that Write reports every blob byte to a
// ByteProgress and a start event with the total first.
func TestCollectDrivesByteProgress(t *testing.T) {
	src := newSource(t)
	rec := &byteRecorder{}
	collect(t, src.mirrorFile(t, ""), newSigningKey(t), WriteOptions{Progress: rec})
	if len(rec.events) == 0 || rec.events[0].Phase != "start" || rec.events[0].Total == 0 {
		t.Fatalf("first event %+v, want start with the total", rec.events[0])
	}
	var blobs int64
	for _, e := range rec.events {
		if e.Phase == "blob" {
			blobs += e.Bytes
		}
	}
	if rec.bytes != blobs || blobs == 0 || rec.ends != rec.starts {
		t.Fatalf("read %d bytes in %d/%d blobs; blob events say %d", rec.bytes, rec.starts, rec.ends, blobs)
	}
}

type byteRecorder struct {
	events       []Event
	bytes        int64
	starts, ends int
}

func (r *byteRecorder) Event(e Event) { r.events = append(r.events, e) }

func (r *byteRecorder) Fetching(string, int64) func(int64) {
	r.starts++
	return func(n int64) {
		if n < 0 {
			r.ends++
			return
		}
		r.bytes += n
	}
}
