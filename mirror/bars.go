package mirror

import (
	"io"
	"sync"
	"sync/atomic"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// Bars draws progress on a terminal with github.com/vbauerster/mpb: a bar for the bytes
// of the whole run, naming the object last done, and a bar for each blob being fetched.
type Bars struct {
	mu    sync.Mutex
	p     *mpb.Progress
	total *mpb.Bar
	item  atomic.Value // string: the object last done, read while drawing
}

// NewBars draws on w, a terminal.
func NewBars(w io.Writer) *Bars {
	return &Bars{p: mpb.New(mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithAutoRefresh())}
}

// Event advances the total bar.
func (b *Bars) Event(e Event) {
	bar := b.totalBar(e.Phase, e.Total)
	if bar == nil {
		return
	}
	b.item.Store(short(e.Item))
	if e.Total > 0 {
		bar.SetTotal(e.Total, false) // an import's push follows its verify, with another total
	}
	bar.SetCurrent(e.Done)
	if e.Phase == "done" {
		bar.SetTotal(e.Total, true)
	}
}

// Fetching adds a bar for one blob; its reads advance both bars.
func (b *Bars) Fetching(item string, size int64) func(int64) {
	bar := b.p.AddBar(size, mpb.BarRemoveOnComplete(),
		mpb.PrependDecorators(decor.Name("  "+short(item)+" ", decor.WCSyncWidth), decor.CountersKibiByte("% .1f / % .1f")),
		mpb.AppendDecorators(decor.Percentage()))
	total := b.totalBar("", 0)
	return func(n int64) {
		if n < 0 {
			if !bar.Completed() {
				bar.Abort(true)
			}
			return
		}
		bar.IncrInt64(n)
		if total != nil {
			total.IncrInt64(n)
		}
	}
}

// totalBar returns the total bar, making it on the first event that knows the total.
func (b *Bars) totalBar(phase string, total int64) *mpb.Bar {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.total == nil && total > 0 {
		b.total = b.p.AddBar(total,
			mpb.PrependDecorators(decor.Name("total ", decor.WCSyncWidth), decor.CountersKibiByte("% .1f / % .1f")),
			mpb.AppendDecorators(decor.Percentage(), decor.Any(func(decor.Statistics) string {
				s, _ := b.item.Load().(string)
				return " " + s
			})))
	}
	return b.total
}

func short(s string) string {
	if len(s) > 19 {
		return s[:19]
	}
	return s
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
