package gate

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Watcher reloads a policy file into a Gate when the file changes or when asked, keeping
// the last good policy when a new one is invalid.
type Watcher struct {
	gate *Gate
	path string
	log  *slog.Logger

	mu      sync.Mutex
	stamp   fileStamp
	lastErr error
	lastAt  time.Time
}

// NewWatcher watches path for g. The policy g holds must have been loaded from path.
func NewWatcher(g *Gate, path string, log *slog.Logger) *Watcher {
	w := &Watcher{gate: g, path: path, log: log}
	w.stamp, _ = stat(path)
	return w
}

type fileStamp struct {
	mod  time.Time
	size int64
}

func stat(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{fi.ModTime(), fi.Size()}, nil
}

// Run polls the file every interval and reloads on change, and reloads whenever reload
// receives (wire it to SIGHUP). It returns when ctx ends.
func (w *Watcher) Run(ctx context.Context, interval time.Duration, reload <-chan os.Signal) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-reload:
			w.Reload()
		case <-t.C:
			st, err := stat(w.path)
			w.mu.Lock()
			changed := err == nil && st != w.stamp
			w.mu.Unlock()
			if changed {
				w.Reload()
			}
		}
	}
}

// Reload reads and parses the file now. A valid policy replaces the one in force; an
// invalid one is refused, logged and reported by Status.
func (w *Watcher) Reload() error {
	st, _ := stat(w.path)
	p, err := LoadPolicy(w.path)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stamp, w.lastAt = st, time.Now()
	if err != nil {
		w.lastErr = err
		w.log.Error("policy reload refused; the previous policy stays in force",
			slog.String("path", w.path), slog.String("error", err.Error()),
			slog.String("revision_in_force", w.gate.Policy().Revision()))
		return err
	}
	w.lastErr = nil
	old := w.gate.Policy().Revision()
	w.gate.SetPolicy(p)
	w.log.Info("policy reloaded", slog.String("path", w.path), slog.String("revision", p.Revision()), slog.String("previous", old))
	return nil
}

// Status describes the policy in force and the last refused reload, for /readyz.
func (w *Watcher) Status() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := "revision " + w.gate.Policy().Revision() + " from " + w.path
	if w.lastErr != nil {
		s += fmt.Sprintf("; reload at %s refused, previous policy kept: %v", w.lastAt.UTC().Format(time.RFC3339), w.lastErr)
	}
	return s
}
