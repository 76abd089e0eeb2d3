package export

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/audit"
)

// ceReceiver is a CloudEvents webhook: it checks the signature with its own HMAC code
// (not the package's) and the envelope, and keeps every delivery.
type ceReceiver struct {
	t      *testing.T
	secret []byte
	mu     sync.Mutex
	got    []map[string]any // in arrival order, duplicates included
	// failAfterAccept answers 500 to the first delivery of each id after keeping it: an
	// acknowledgement lost on the way back.
	failAfterAccept bool
	seenOnce        map[string]bool
	block           chan struct{} // when set, every request waits for it to close
}

func (r *ceReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if r.block != nil {
		select {
		case <-r.block:
		case <-req.Context().Done():
			return
		}
	}
	body, _ := io.ReadAll(req.Body)
	if ct := req.Header.Get("Content-Type"); ct != "application/cloudevents+json" {
		r.t.Errorf("Content-Type %q", ct)
		http.Error(w, "content type", http.StatusUnsupportedMediaType)
		return
	}
	if err := checkSignature(r.secret, req.Header.Get("Portcullis-Signature"), body); err != nil {
		r.t.Errorf("signature: %v", err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var ce map[string]any
	if err := json.Unmarshal(body, &ce); err != nil {
		r.t.Errorf("body is not JSON: %v", err)
		http.Error(w, "json", http.StatusBadRequest)
		return
	}
	for _, k := range []string{"specversion", "id", "source", "type", "time", "datacontenttype", "data"} {
		if _, ok := ce[k]; !ok {
			r.t.Errorf("CloudEvent lacks %s: %s", k, body)
		}
	}
	if ce["specversion"] != "1.0" {
		r.t.Errorf("specversion %v", ce["specversion"])
	}
	if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(ce["time"])); err != nil {
		r.t.Errorf("time %v is not RFC 3339", ce["time"])
	}
	r.mu.Lock()
	r.got = append(r.got, ce)
	id := fmt.Sprint(ce["id"])
	fail := r.failAfterAccept && !r.seenOnce[id]
	if r.seenOnce == nil {
		r.seenOnce = map[string]bool{}
	}
	r.seenOnce[id] = true
	r.mu.Unlock()
	if fail {
		http.Error(w, "lost ack", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (r *ceReceiver) deliveries() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]any(nil), r.got...)
}

// checkSignature verifies "t=<unix>,v1=<hex>" = HMAC-SHA256(secret, t "." body), within 5 minutes.
func checkSignature(secret []byte, header string, body []byte) error {
	m := regexp.MustCompile(`^t=(\d+),v1=([0-9a-f]{64})$`).FindStringSubmatch(header)
	if m == nil {
		return fmt.Errorf("header %q is not t=<unix>,v1=<hex>", header)
	}
	sec, _ := strconv.ParseInt(m[1], 10, 64)
	if d := time.Since(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("timestamp %s too far from now", m[1])
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(m[1] + "." + string(body)))
	if hex.EncodeToString(mac.Sum(nil)) != m[2] {
		return errors.New("HMAC mismatch")
	}
	return nil
}

// hecReceiver is a Splunk-HEC-like collector: it checks the path, the token and each
// envelope, and refuses (400, HEC code 6) any batch holding an event whose repository is
// "poison".
type hecReceiver struct {
	t      *testing.T
	token  string
	mu     sync.Mutex
	events []map[string]any
	posts  int
}

func (h *hecReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != "/services/collector/event" {
		h.t.Errorf("HEC path %q", req.URL.Path)
		http.NotFound(w, req)
		return
	}
	if req.Header.Get("Authorization") != "Splunk "+h.token {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"text":"Invalid token","code":4}`)
		return
	}
	dec := json.NewDecoder(req.Body)
	var batch []map[string]any
	for {
		var env map[string]any
		if err := dec.Decode(&env); err == io.EOF {
			break
		} else if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"text":"Invalid data format","code":6}`)
			return
		}
		for _, k := range []string{"time", "host", "source", "sourcetype", "event"} {
			if _, ok := env[k]; !ok {
				h.t.Errorf("HEC envelope lacks %s: %v", k, env)
			}
		}
		if _, ok := env["time"].(float64); !ok {
			h.t.Errorf("HEC time %v is not epoch seconds", env["time"])
		}
		if ev, _ := env["event"].(map[string]any); ev["repository"] == "poison" {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"text":"Invalid data format","code":6,"invalid-event-number":0}`)
			return
		}
		batch = append(batch, env)
	}
	h.mu.Lock()
	h.events = append(h.events, batch...)
	h.posts++
	h.mu.Unlock()
	io.WriteString(w, `{"text":"Success","code":0}`)
}

func (h *hecReceiver) got() ([]map[string]any, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]map[string]any(nil), h.events...), h.posts
}

// syslogReceiver is a TCP (or TLS) syslog collector reading RFC 6587 octet-counted frames
// and parsing each as RFC 5424.
type syslogReceiver struct {
	ln   net.Listener
	mu   sync.Mutex
	msgs []syslogMsg
	errs []error
}

type syslogMsg struct {
	pri                                 int
	timestamp, host, app, procid, msgid string
	sd                                  map[string]string
	msg                                 []byte
}

func startSyslog(t *testing.T, tc *tls.Config) *syslogReceiver {
	t.Helper()
	var ln net.Listener
	var err error
	if tc != nil {
		ln, err = tls.Listen("tcp", "127.0.0.1:0", tc)
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	r := &syslogReceiver{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go r.serve(c)
		}
	}()
	return r
}

var rfc5424 = regexp.MustCompile(`^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) \[(\S+)((?: [^= \]"]+="(?:[^"\\\]]|\\.)*")*)\] (?s)(.*)$`)
var sdParam = regexp.MustCompile(` ([^= \]"]+)="((?:[^"\\\]]|\\.)*)"`)

func (r *syslogReceiver) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		lenText, err := br.ReadString(' ')
		if err != nil {
			return
		}
		n, err := strconv.Atoi(strings.TrimSuffix(lenText, " "))
		if err != nil || n <= 0 {
			r.fail(fmt.Errorf("frame length %q", lenText))
			return
		}
		frame := make([]byte, n)
		if _, err := io.ReadFull(br, frame); err != nil {
			r.fail(fmt.Errorf("short frame: %v", err))
			return
		}
		m := rfc5424.FindSubmatch(frame)
		if m == nil {
			r.fail(fmt.Errorf("not RFC 5424: %q", frame))
			continue
		}
		pri, _ := strconv.Atoi(string(m[1]))
		msg := syslogMsg{pri: pri, timestamp: string(m[2]), host: string(m[3]), app: string(m[4]), procid: string(m[5]), msgid: string(m[6]), sd: map[string]string{"@id": string(m[7])}}
		for _, p := range sdParam.FindAllSubmatch(m[8], -1) {
			msg.sd[string(p[1])] = strings.NewReplacer(`\"`, `"`, `\\`, `\`, `\]`, `]`).Replace(string(p[2]))
		}
		body, ok := strings.CutPrefix(string(m[9]), "\ufeff")
		if !ok {
			r.fail(fmt.Errorf("MSG without BOM: %q", m[9]))
		}
		msg.msg = []byte(body)
		r.mu.Lock()
		r.msgs = append(r.msgs, msg)
		r.mu.Unlock()
	}
}

func (r *syslogReceiver) fail(err error) {
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.mu.Unlock()
}

func (r *syslogReceiver) got() ([]syslogMsg, []error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]syslogMsg(nil), r.msgs...), append([]error(nil), r.errs...)
}

// event returns a distinct decision event.
func event(i int, verdict string) audit.Event {
	return audit.Event{
		Time: time.Date(2026, 12, 7, 10, 0, i, 0, time.UTC), Type: audit.TypeDecision, RequestID: fmt.Sprintf("req-%d", i),
		Action: "pull", Repository: "team/app", Reference: "v1", Digest: fmt.Sprintf("sha256:%064x", i),
		Environment: "prod", Verdict: verdict, Client: audit.Client{Addr: "10.0.0.9:4000", User: "ci"},
	}
}

// waitFor polls cond until it holds; the test's own timeout bounds it.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
