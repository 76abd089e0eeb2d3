package gate

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// Watcher reloads a policy file into a Gate when it or a file it reads (key files,
// exception files, a file added where exceptionFiles patterns look) changes, or when
// asked, keeping the last good policy when a new one is invalid.
type Watcher struct {
	gate *Gate
	path string
	log  *slog.Logger

	mu      sync.Mutex
	deps    []string // the paths the policy depends on (see loadPolicy)
	stamp   string   // their modification times and sizes at the last load
	lastErr error
	lastAt  time.Time
	onLoad  []func()
}

// OnReload calls f after every policy reload that put a new policy in force.
func (w *Watcher) OnReload(f func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.onLoad = append(w.onLoad, f)
}

// NewWatcher watches path for g. The policy g holds must have been loaded from path.
func NewWatcher(g *Gate, path string, log *slog.Logger) *Watcher {
	w := &Watcher{gate: g, path: path, log: log}
	_, w.deps, _ = loadPolicy(path)
	w.stamp = stampOf(w.deps)
	return w
}

// stampOf describes the modification time and size of each path ("-" for one missing),
// so that any change to any of them changes it.
func stampOf(paths []string) string {
	var b strings.Builder
	for _, p := range paths {
		b.WriteString(p)
		if fi, err := os.Stat(p); err == nil {
			fmt.Fprintf(&b, "|%d|%d\n", fi.ModTime().UnixNano(), fi.Size())
		} else {
			b.WriteString("|-\n")
		}
	}
	return b.String()
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
			w.mu.Lock()
			changed := stampOf(w.deps) != w.stamp
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
	p, deps, err := loadPolicy(w.path)
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(deps) > 0 {
		w.deps = deps
	}
	w.stamp, w.lastAt = stampOf(w.deps), time.Now()
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
	for _, f := range w.onLoad {
		f()
	}
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
