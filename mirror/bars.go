package mirror

import (
	"io"
	"sync"
	"sync/atomic"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// Bars draws progress on a terminal: a bar for the bytes of the whole run, naming the
// object last done.
type Bars struct {
	mu    sync.Mutex
	p     *mpb.Progress
	total *mpb.Bar
	item  atomic.Value // string: the object last done, read while drawing
}

// NewBars draws on w, a terminal.
func NewBars(w io.Writer) *Bars {
	return &Bars{p: mpb.New(mpb.WithOutput(w), mpb.WithWidth(48), mpb.WithAutoRefresh())}
}

// Event advances the bar.
func (b *Bars) Event(e Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.total == nil {
		if e.Total <= 0 {
			return
		}
		b.total = b.p.AddBar(e.Total,
			mpb.PrependDecorators(decor.Name(e.Phase+" ", decor.WCSyncWidth), decor.CountersKibiByte("% .1f / % .1f")),
			mpb.AppendDecorators(decor.Percentage(), decor.Any(func(decor.Statistics) string {
				s, _ := b.item.Load().(string)
				return " " + s
			})))
	}
	item := e.Item
	if len(item) > 19 {
		item = item[:19]
	}
	b.item.Store(item)
	b.total.SetCurrent(e.Done)
	if e.Phase == "done" {
		b.total.SetTotal(e.Total, true)
	}
}

// Wait finishes drawing; call it when the run ends.
func (b *Bars) Wait() {
	b.mu.Lock()
	bar := b.total
	b.mu.Unlock()
	if bar != nil && !bar.Completed() {
		bar.Abort(false)
	}
	b.p.Wait()
}
