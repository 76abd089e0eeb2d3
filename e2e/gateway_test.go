package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long a process may take to come up; it guards against hangs and
// is not an assertion about speed.
const startTimeout = 60 * time.Second

// gateway is a running "portcullis serve" process.
type gateway struct {
	// addr is the HOST:PORT of its default door (the registry API).
	addr string
	// admin is the HOST:PORT of its admin listener (/metrics, detailed /readyz).
	admin string
	log   *processLog
	cmd   *exec.Cmd
	done  chan struct{} // closed when the process has exited
}

// startGateway runs "portcullis serve" on a free loopback port (and its admin listener on
// another) with a fresh data directory and the observe policy, plus extra flags, and waits
// until /readyz answers 200. The process is stopped when the test ends.
func startGateway(t testing.TB, extra ...string) *gateway {
	t.Helper()
	return startGatewayEnv(t, nil, extra...)
}

// startGatewayEnv is startGateway with env (KEY=value) added to the gateway's environment.
func startGatewayEnv(t testing.TB, env []string, extra ...string) *gateway {
	t.Helper()
	g := launchGatewayEnv(t, env, extra...)
	g.waitReady(t)
	return g
}

// launchGateway is startGateway without waiting for readiness over plain HTTP.
func launchGateway(t testing.TB, extra ...string) *gateway {
	t.Helper()
	return launchGatewayEnv(t, nil, extra...)
}

// launchGatewayEnv is launchGateway with env added to the gateway's environment.
func launchGatewayEnv(t testing.TB, env []string, extra ...string) *gateway {
	t.Helper()
	dir := t.TempDir()
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--data-dir", dir + "/data", "--policy", "observe"}, extra...)
	cmd := exec.Command(gatewayBin, args...)
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), env...)
	g := &gateway{log: newProcessLog(), cmd: cmd, done: make(chan struct{})}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = g.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", gatewayBin, err)
	}
	copied := make(chan struct{})
	go func() {
		_, _ = io.Copy(g.log, stderr)
		close(copied)
	}()
	go func() {
		<-copied // Wait must not run before the pipe is drained
		_ = cmd.Wait()
		close(g.done)
	}()
	t.Cleanup(func() { g.stop(t) })

	g.addr = g.waitListening(t, "portcullis listening", "default")
	g.admin = g.waitListening(t, "admin listening", "")
	return g
}

// url is the gateway's base URL (its default door) followed by path.
func (g *gateway) url(path string) string { return "http://" + g.addr + path }

// adminURL is the admin listener's base URL followed by path.
func (g *gateway) adminURL(path string) string { return "http://" + g.admin + path }

// waitListening reads a bound address from the log line msg (of the listener named
// listener, when not empty).
func (g *gateway) waitListening(t testing.TB, msg, listener string) string {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		for _, e := range g.log.entries() {
			if e.Msg == msg && e.Addr != "" && (listener == "" || e.Listener == listener) {
				return e.Addr
			}
		}
		select {
		case <-g.done:
			t.Fatalf("portcullis exited before logging %q (%s):\n%s", msg, g.cmd.ProcessState, g.log.tail(50))
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("portcullis did not log %q with its address within %s:\n%s", msg, startTimeout, g.log.tail(50))
	return ""
}

// waitReady polls /readyz until it answers 200.
func (g *gateway) waitReady(t testing.TB) {
	t.Helper()
	if !poll(startTimeout, func() bool { return httpStatus(g.url("/readyz")) == http.StatusOK }) {
		t.Fatalf("portcullis at %s did not become ready within %s:\n%s", g.addr, startTimeout, g.log.tail(50))
	}
}

// stop sends SIGTERM, waits for the graceful shutdown (SIGKILL after 15 s), and fails the
// test if the race detector reported anything. On failure it shows the log's tail.
func (g *gateway) stop(t testing.TB) {
	if g.cmd.Process != nil {
		_ = g.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-g.done:
		case <-time.After(15 * time.Second):
			_ = g.cmd.Process.Kill()
			<-g.done
		}
	}
	if g.log.contains("WARNING: DATA RACE") {
		t.Errorf("the gateway reported a data race:\n%s", g.log.tail(200))
	} else if t.Failed() {
		t.Logf("gateway log (tail):\n%s", g.log.tail(80))
	}
}

// cleanEnv is the test's environment without PORTCULLIS_* settings, so a developer's
// shell cannot change how the gateway under test behaves.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PORTCULLIS_") {
			env = append(env, kv)
		}
	}
	return env
}

// processLog collects a process's output lines.
type processLog struct {
	mu      sync.Mutex
	partial []byte
	lines   []string
}

func newProcessLog() *processLog { return &processLog{} }

// Write implements io.Writer, splitting on newlines.
func (l *processLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.lines = append(l.lines, string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
	return len(p), nil
}

func (l *processLog) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

func (l *processLog) contains(s string) bool {
	for _, line := range l.snapshot() {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

func (l *processLog) tail(n int) string {
	lines := l.snapshot()
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// logEntry is the part of the gateway's JSON log lines the tests look at: the listening
// line and the access log ("request").
type logEntry struct {
	Msg        string `json:"msg"`
	Addr       string `json:"addr"`
	Listener   string `json:"listener"`
	Method     string `json:"method"`
	Path       string `json:"path"`
	Route      string `json:"route"`
	Repository string `json:"repository"`
	Status     int    `json:"status"`
}

// entries parses the JSON lines of the log, skipping anything else.
func (l *processLog) entries() []logEntry {
	var out []logEntry
	for _, line := range l.snapshot() {
		var e logEntry
		if json.Unmarshal([]byte(line), &e) == nil && e.Msg != "" {
			out = append(out, e)
		}
	}
	return out
}

// requests returns the access-log entries for which keep is true.
func (l *processLog) requests(keep func(logEntry) bool) []logEntry {
	var out []logEntry
	for _, e := range l.entries() {
		if e.Msg == "request" && keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// awaitRequests waits (up to 10 s, for the log to travel through the pipe) until at least
// n access-log entries satisfy keep, and returns those there are.
func (l *processLog) awaitRequests(n int, keep func(logEntry) bool) []logEntry {
	var got []logEntry
	poll(10*time.Second, func() bool {
		got = l.requests(keep)
		return len(got) >= n
	})
	return got
}

// poll calls ok every 50 ms until it returns true or limit has passed.
func poll(limit time.Duration, ok func() bool) bool {
	deadline := time.Now().Add(limit)
	for {
		if ok() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// httpStatus GETs url and returns the status code, or 0 when there is no answer.
func httpStatus(url string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
