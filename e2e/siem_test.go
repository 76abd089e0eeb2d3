package e2e

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// siemWebhook is a CloudEvents receiver that checks the Portcullis-Signature header with
// its own HMAC code and keeps every event.
type siemWebhook struct {
	t      *testing.T
	secret string
	mu     sync.Mutex
	events []map[string]any
}

func (w *siemWebhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	m := regexp.MustCompile(`^t=(\d+),v1=([0-9a-f]{64})$`).FindStringSubmatch(r.Header.Get("Portcullis-Signature"))
	mac := hmac.New(sha256.New, []byte(w.secret))
	if m != nil {
		mac.Write([]byte(m[1] + "." + string(body)))
	}
	if m == nil || hex.EncodeToString(mac.Sum(nil)) != m[2] {
		w.t.Errorf("bad signature %q", r.Header.Get("Portcullis-Signature"))
		rw.WriteHeader(http.StatusUnauthorized)
		return
	}
	var ev map[string]any
	if err := json.Unmarshal(body, &ev); err != nil {
		rw.WriteHeader(http.StatusBadRequest)
		return
	}
	w.mu.Lock()
	w.events = append(w.events, ev)
	w.mu.Unlock()
	rw.WriteHeader(http.StatusNoContent)
}

// decisions returns the decision events received for subject.
func (w *siemWebhook) decisions(subject string) []map[string]any {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []map[string]any
	for _, e := range w.events {
		if e["subject"] == subject && e["type"] == "dev.portcullis.decision.v1" {
			out = append(out, e)
		}
	}
	return out
}

// syslogFrames listens for octet-counted syslog frames and keeps their text.
type syslogFrames struct {
	ln     net.Listener
	mu     sync.Mutex
	frames []string
}

func listenSyslog(t *testing.T) *syslogFrames {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &syslogFrames{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					n, err := br.ReadString(' ')
					if err != nil {
						return
					}
					size, err := strconv.Atoi(strings.TrimSpace(n))
					if err != nil {
						return
					}
					b := make([]byte, size)
					if _, err := io.ReadFull(br, b); err != nil {
						return
					}
					s.mu.Lock()
					s.frames = append(s.frames, string(b))
					s.mu.Unlock()
				}
			}()
		}
	}()
	return s
}

func (s *syslogFrames) containing(sub string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, f := range s.frames {
		if strings.Contains(f, sub) {
			out = append(out, f)
		}
	}
	return out
}

// TestDecisionsReachTheSIEMs: a pull through the real gateway reaches a signed CloudEvents
// webhook and, OCSF-encoded, an RFC 5424 syslog collector.
func TestDecisionsReachTheSIEMs(t *testing.T) {
	hook := &siemWebhook{t: t, secret: "e2e-hmac-key"}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	sys := listenSyslog(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	writeFile(t, cfg, fmt.Appendf(nil, `audit:
  sinks:
    - name: webhook
      type: cloudevents
      url: %s/events
      secret:
        env: E2E_SIEM_HMAC
      retryMin: 10ms
      retryMax: 100ms
    - name: syslog
      type: syslog
      address: %s
      encoding: ocsf
      facility: local4
`, srv.URL, sys.ln.Addr()))
	gw := startGatewayEnv(t, []string{"E2E_SIEM_HMAC=e2e-hmac-key"}, "--config", cfg)
	img := newImage(t)
	repo := "e2e/siem/app"
	if code := pushImage(t, gw.url(""), repo, "1.0.0", img, nil); code != http.StatusCreated {
		t.Fatalf("push: %d", code)
	}
	if get, _ := pullCodes(t, gw.url(""), repo, "1.0.0", nil); get != http.StatusOK {
		t.Fatalf("pull: %d", get)
	}
	subject := repo + "@" + sha256Digest(img.manifest)
	if !poll(30*time.Second, func() bool { return len(hook.decisions(subject)) >= 2 }) {
		t.Fatalf("webhook got %d decision events for %s", len(hook.decisions(subject)), subject)
	}
	actions := map[any]bool{}
	for _, e := range hook.decisions(subject) {
		data := e["data"].(map[string]any)
		actions[data["action"]] = true
		if e["specversion"] != "1.0" || e["id"] == "" || data["verdict"] == "" {
			t.Errorf("event %v", e)
		}
	}
	if !actions["push"] || !actions["pull"] {
		t.Errorf("actions seen %v, want push and pull", actions)
	}
	if !poll(30*time.Second, func() bool { return len(sys.containing(`repository="`+repo+`"`)) >= 2 }) {
		t.Fatalf("syslog collector got no decision for %s", repo)
	}
	metrics := string(httpBody(t, gw.adminURL("/metrics")))
	for _, want := range []string{`portcullis_audit_sink_sent_total{`, `sink="webhook"`, `sink="syslog"`, `portcullis_audit_sink_pending{`, `portcullis_audit_sink_spool_bytes{`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, f := range sys.containing(`repository="` + repo + `"`) {
		if !strings.HasPrefix(f, "<166>1 ") || !strings.Contains(f, "portcullis@32473") || !strings.Contains(f, `"class_uid":6003`) {
			t.Errorf("syslog frame %q: want local4.info, the SD-ID and an OCSF API Activity", f)
		}
	}
}

// TestSpooledDecisionsSurviveARestart: the webhook is down while the gateway runs; after a
// restart over the same spool, with the webhook up, the decisions arrive.
func TestSpooledDecisionsSurviveARestart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	writeFile(t, cfg, fmt.Appendf(nil, `audit:
  spoolDir: %s
  flushTimeout: 100ms
  sinks:
    - name: webhook
      type: cloudevents
      url: http://%s/events
      secret:
        env: E2E_SIEM_HMAC
      retryMin: 10ms
      retryMax: 50ms
`, filepath.Join(dir, "spool"), addr))
	env := []string{"E2E_SIEM_HMAC=k"}
	gw := startGatewayEnv(t, env, "--config", cfg)
	img := newImage(t)
	repo := "e2e/siem/restart"
	if code := pushImage(t, gw.url(""), repo, "1.0.0", img, nil); code != http.StatusCreated {
		t.Fatalf("push: %d", code)
	}
	gw.stop(t)
	<-gw.done

	hook := &siemWebhook{t: t, secret: "k"}
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s taken meanwhile: %v", addr, err)
	}
	srv := &http.Server{Handler: hook}
	go srv.Serve(ln)
	defer srv.Close()
	startGatewayEnv(t, env, "--config", cfg)
	subject := repo + "@" + sha256Digest(img.manifest)
	if !poll(30*time.Second, func() bool { return len(hook.decisions(subject)) >= 1 }) {
		t.Fatalf("the push decision spooled before the restart never arrived")
	}
}

func httpBody(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
