package health

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"sync"
	"time"
)

// Check reports whether one dependency is usable; a nil error means ready.
type Check func(ctx context.Context) error

// Handler answers /healthz (the process is alive) and /readyz (every check passes), with
// each check's outcome and the details registered with AddInfo. Serve it only where
// operators are (the admin listener); Bare is the status-only form for the registry port.
type Handler struct {
	mu      sync.RWMutex
	checks  map[string]Check
	infos   map[string]func() string
	timeout time.Duration
}

// AddInfo registers a named detail shown by /readyz that does not affect readiness, such
// as which policy is in force and whether its last reload was refused.
func (h *Handler) AddInfo(name string, f func() string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.infos[name] = f
}

// New returns a Handler whose checks each get timeout to answer.
func New(timeout time.Duration) *Handler {
	return &Handler{checks: map[string]Check{}, infos: map[string]func() string{}, timeout: timeout}
}

// Add registers a named readiness check, replacing one of the same name.
func (h *Handler) Add(name string, c Check) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.checks[name] = c
}

// Status is the /readyz document.
type Status struct {
	Ready  bool              `json:"ready"`
	Checks map[string]string `json:"checks"`
	Info   map[string]string `json:"info,omitempty"`
}

// Ready runs every check concurrently and reports each outcome ("ok" or the error).
func (h *Handler) Ready(ctx context.Context) Status {
	h.mu.RLock()
	names := make([]string, 0, len(h.checks))
	for n := range h.checks {
		names = append(names, n)
	}
	sort.Strings(names)
	checks := make([]Check, len(names))
	for i, n := range names {
		checks[i] = h.checks[n]
	}
	info := make(map[string]string, len(h.infos))
	for n, f := range h.infos {
		info[n] = f()
	}
	h.mu.RUnlock()

	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	results := make([]string, len(names))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() {
			if err := c(ctx); err != nil {
				results[i] = err.Error()
			} else {
				results[i] = "ok"
			}
		})
	}
	wg.Wait()
	st := Status{Ready: true, Checks: make(map[string]string, len(names)), Info: info}
	for i, n := range names {
		st.Checks[n] = results[i]
		if results[i] != "ok" {
			st.Ready = false
		}
	}
	return st
}

// ServeHTTP serves /healthz and /readyz.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if r.URL.Path == "/healthz" {
		_, _ = w.Write([]byte(`{"alive":true}` + "\n"))
		return
	}
	st := h.Ready(r.Context())
	if !st.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(st)
}

// Bare returns a handler for /healthz and /readyz that answers with the status alone:
// {"alive":true}, and {"ready":true|false} with 200 or 503. It names no dependency,
// repository, file or owner, so it may answer anonymous clients on the registry port
// (load balancers and kubelet probes); the details are on the admin listener.
func (h *Handler) Bare() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if r.URL.Path == "/healthz" {
			_, _ = w.Write([]byte(`{"alive":true}` + "\n"))
			return
		}
		if !h.Ready(r.Context()).Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"ready":false}` + "\n"))
			return
		}
		_, _ = w.Write([]byte(`{"ready":true}` + "\n"))
	})
}
