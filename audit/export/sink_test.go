package export

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/audit/spool"
)

var secret = []byte("s3cr3t-hmac-key")

func openSpool(t *testing.T, dir string, maxBytes int64) *spool.Spool {
	t.Helper()
	sp, err := spool.Open(dir, maxBytes)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

func newSink(t *testing.T, name string, sp *spool.Spool, s Sender, opts ...Option) *Sink {
	t.Helper()
	opts = append([]Option{WithRetry(time.Millisecond, 20*time.Millisecond)}, opts...)
	sk, err := New(name, "test", sp, s, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		sk.Close(ctx)
	})
	return sk
}

func record(t *testing.T, s *Sink, events ...audit.Event) {
	t.Helper()
	for _, e := range events {
		if err := s.Record(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
}

func idOf(t *testing.T, e audit.Event) string {
	raw, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return EventID(raw)
}

func TestCloudEventsSignedWithStableIDsAndRedeliveredUnderTheSameID(t *testing.T) {
	rcv := &ceReceiver{t: t, secret: secret, failAfterAccept: true}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	ce, err := NewCloudEvents(CloudEventsConfig{URL: srv.URL, Secret: secret, Source: "//gw-1"})
	if err != nil {
		t.Fatal(err)
	}
	sk := newSink(t, "ce", openSpool(t, t.TempDir(), 1<<20), ce)
	events := []audit.Event{event(1, "allow"), event(2, "deny"), event(3, "warn")}
	record(t, sk, events...)
	waitFor(t, "3 events delivered", func() bool { return sk.Stats().Sent == 3 })
	got := rcv.deliveries()
	if len(got) != 6 {
		t.Fatalf("%d deliveries, want each event twice (the first acknowledgement was lost)", len(got))
	}
	byID := map[string][]map[string]any{}
	for _, d := range got {
		byID[d["id"].(string)] = append(byID[d["id"].(string)], d)
	}
	for _, e := range events {
		id := idOf(t, e)
		ds := byID[id]
		if len(ds) != 2 {
			t.Fatalf("event %s delivered %d times under id %s; ids seen: %v", e.RequestID, len(ds), id, byID)
		}
		a, _ := json.Marshal(ds[0]["data"])
		b, _ := json.Marshal(ds[1]["data"])
		if string(a) != string(b) {
			t.Errorf("redelivery changed the data: %s vs %s", a, b)
		}
		d := ds[0]
		if d["subject"] != "team/app@"+e.Digest || d["type"] != "dev.portcullis.decision.v1" || d["source"] != "//gw-1" || d["datacontenttype"] != "application/json" {
			t.Errorf("envelope %v", d)
		}
		if data := d["data"].(map[string]any); data["verdict"] != e.Verdict || data["requestId"] != e.RequestID {
			t.Errorf("data %v", data)
		}
	}
	if st := sk.Stats(); st.Retries < 3 || st.Pending != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSignatureSchemeRoundTrip(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"a":1}`)
	h := Sign(secret, now, body)
	if err := VerifySignature(secret, h, body, now.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := VerifySignature(secret, h, []byte(`{"a":2}`), now, 5*time.Minute); err == nil {
		t.Fatal("a changed body verified")
	}
	if err := VerifySignature(secret, h, body, now.Add(10*time.Minute), 5*time.Minute); err == nil {
		t.Fatal("a replay after the tolerance verified")
	}
	if err := VerifySignature([]byte("other"), h, body, now, 5*time.Minute); err == nil {
		t.Fatal("the wrong secret verified")
	}
}

func TestCloudEventsOCSFOneEventPerRecord(t *testing.T) {
	rcv := &ceReceiver{t: t, secret: secret}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	ce, _ := NewCloudEvents(CloudEventsConfig{URL: srv.URL, Secret: secret, Encoding: EncodingOCSF, ProductVersion: "9.9.9"})
	sk := newSink(t, "ce-ocsf", openSpool(t, t.TempDir(), 1<<20), ce)
	e := event(1, "deny")
	e.Vulnerabilities = &audit.Vulnerabilities{New: []audit.Finding{{ID: "CVE-2024-9", Package: "zlib", Version: "1.2", Severity: "HIGH"}}}
	record(t, sk, e)
	waitFor(t, "delivery", func() bool { return sk.Stats().Sent == 1 })
	got := rcv.deliveries()
	if len(got) != 2 {
		t.Fatalf("%d CloudEvents, want an API Activity and a Vulnerability Finding", len(got))
	}
	id := idOf(t, e)
	if got[0]["type"] != "dev.portcullis.ocsf.api_activity.v1" || got[0]["id"] != id || got[0]["dataschema"] != "https://schema.ocsf.io/1.3.0/classes/api_activity" {
		t.Errorf("first %v", got[0])
	}
	if got[1]["type"] != "dev.portcullis.ocsf.vulnerability_finding.v1" || got[1]["id"] != id+"-f1" {
		t.Errorf("second %v", got[1])
	}
	if cls := got[1]["data"].(map[string]any)["class_uid"]; cls != 2002.0 {
		t.Errorf("finding class_uid %v", cls)
	}
}

func TestHECBatchesEnvelopesAndDropsOnlyTheRefusedEvent(t *testing.T) {
	rcv := &hecReceiver{t: t, token: "tok-123"}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	hec, err := NewHEC(HECConfig{URL: srv.URL, Token: "tok-123", Index: "security", Host: "gw-1"})
	if err != nil {
		t.Fatal(err)
	}
	sp := openSpool(t, t.TempDir(), 1<<20)
	// Spool before the sink starts, so the first batch holds all of them.
	var events []audit.Event
	for i := range 6 {
		e := event(i, "allow")
		if i == 3 {
			e.Repository = "poison"
		}
		events = append(events, e)
		raw, _ := json.Marshal(e)
		sp.Append(raw)
	}
	sk := newSink(t, "hec", sp, hec, WithBatch(10, 0))
	waitFor(t, "the spool to empty", func() bool { return sk.Stats().Pending == 0 })
	got, posts := rcv.got()
	if len(got) != 5 {
		t.Fatalf("%d events indexed, want the 5 good ones", len(got))
	}
	if st := sk.Stats(); st.Dropped[DropRejected] != 1 || st.Sent != 5 {
		t.Fatalf("stats %+v, want 1 rejected and 5 sent", st)
	}
	if posts < 2 {
		t.Fatalf("%d POSTs", posts)
	}
	for i, env := range got {
		want := events[i]
		if i >= 3 {
			want = events[i+1]
		}
		ev := env["event"].(map[string]any)
		if ev["requestId"] != want.RequestID || env["index"] != "security" || env["host"] != "gw-1" || env["source"] != "portcullis" || env["sourcetype"] != "portcullis:decision" {
			t.Errorf("envelope %d: %v", i, env)
		}
		if env["time"].(float64) != float64(want.Time.Unix()) {
			t.Errorf("time %v, want %d", env["time"], want.Time.Unix())
		}
		if env["fields"].(map[string]any)["portcullis_id"] != idOf(t, want) {
			t.Errorf("fields %v", env["fields"])
		}
	}
}

func TestHECBadTokenIsRetriedNotDropped(t *testing.T) {
	rcv := &hecReceiver{t: t, token: "right"}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	hec, _ := NewHEC(HECConfig{URL: srv.URL, Token: "wrong"})
	sp := openSpool(t, t.TempDir(), 1<<20)
	sk := newSink(t, "hec", sp, hec)
	record(t, sk, event(1, "deny"))
	waitFor(t, "retries", func() bool { st := sk.Stats(); return st.Retries >= 3 && st.Queued == 1 })
	if st := sk.Stats(); st.Pending != 1 || len(st.Dropped) != 0 {
		t.Fatalf("stats %+v: a 401 must keep the event", st)
	}
}

func TestSyslogOctetCountedRFC5424OverTCPAndTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	for _, tc := range []struct {
		name   string
		server *tls.Config
		client *tls.Config
	}{
		{"tcp", nil, nil},
		{"tls", &tls.Config{Certificates: []tls.Certificate{cert}}, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rcv := startSyslog(t, tc.server)
			fac := Facilities["local4"]
			sl, err := NewSyslog(SyslogConfig{Address: rcv.ln.Addr().String(), TLS: tc.client, Facility: &fac, Hostname: "gw-1"})
			if err != nil {
				t.Fatal(err)
			}
			defer sl.Close()
			sk := newSink(t, "syslog", openSpool(t, t.TempDir(), 1<<20), sl)
			events := []audit.Event{event(1, "allow"), event(2, "deny"), event(3, "warn")}
			events[1].Repository = `we"ird]\repo`
			record(t, sk, events...)
			waitFor(t, "3 messages", func() bool { m, _ := rcv.got(); return len(m) == 3 })
			msgs, errs := rcv.got()
			for _, err := range errs {
				t.Error(err)
			}
			for i, m := range msgs {
				e := events[i]
				wantSev := map[string]int{"allow": 6, "deny": 4, "warn": 5}[e.Verdict]
				if m.pri != 20*8+wantSev {
					t.Errorf("%s: PRI %d, want facility 20 severity %d", e.Verdict, m.pri, wantSev)
				}
				if m.host != "gw-1" || m.app != "portcullis" || m.msgid != "decision" || m.sd["@id"] != "portcullis@32473" {
					t.Errorf("header %+v", m)
				}
				if _, err := time.Parse(time.RFC3339Nano, m.timestamp); err != nil || !strings.HasSuffix(m.timestamp, "Z") {
					t.Errorf("timestamp %q", m.timestamp)
				}
				if m.sd["id"] != idOf(t, e) || m.sd["repository"] != e.Repository || m.sd["verdict"] != e.Verdict {
					t.Errorf("structured data %v", m.sd)
				}
				var got audit.Event
				if err := json.Unmarshal(m.msg, &got); err != nil || got.RequestID != e.RequestID {
					t.Errorf("MSG %q: %v", m.msg, err)
				}
			}
		})
	}
}

func TestSyslogReconnectsAfterTheCollectorRestarts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // down: nothing listens yet
	sl, _ := NewSyslog(SyslogConfig{Address: addr})
	defer sl.Close()
	sk := newSink(t, "syslog", openSpool(t, t.TempDir(), 1<<20), sl)
	for i := range 5 {
		record(t, sk, event(i, "allow"))
	}
	waitFor(t, "retries while down with everything spooled", func() bool { st := sk.Stats(); return st.Retries >= 2 && st.Queued == 5 })
	if st := sk.Stats(); st.Pending != 5 || st.Sent != 0 {
		t.Fatalf("while down: %+v", st)
	}
	rcv := &syslogReceiver{}
	rcv.ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s taken meanwhile: %v", addr, err)
	}
	defer rcv.ln.Close()
	go func() {
		for {
			c, err := rcv.ln.Accept()
			if err != nil {
				return
			}
			go rcv.serve(c)
		}
	}()
	waitFor(t, "delivery after the collector started", func() bool { m, _ := rcv.got(); return len(m) >= 5 })
	msgs, _ := rcv.got()
	ids := map[string]bool{}
	for _, m := range msgs {
		ids[m.sd["id"]] = true
	}
	for i := range 5 {
		if !ids[idOf(t, event(i, "allow"))] {
			t.Errorf("event %d lost", i)
		}
	}
}

// TestReceiverDownThenUpDeliversEverything: a CloudEvents receiver on a closed port, then
// listening: nothing is lost and duplicates (if any) carry the same id.
func TestReceiverDownThenUpDeliversEverything(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ce, _ := NewCloudEvents(CloudEventsConfig{URL: "http://" + addr + "/hook", Secret: secret})
	sk := newSink(t, "ce", openSpool(t, t.TempDir(), 1<<20), ce)
	const n = 40
	var want []string
	for i := range n {
		e := event(i, "allow")
		record(t, sk, e)
		want = append(want, idOf(t, e))
	}
	waitFor(t, "failed attempts with everything spooled", func() bool { st := sk.Stats(); return st.Retries >= 3 && st.Queued == n })
	if st := sk.Stats(); st.Pending != n {
		t.Fatalf("while down, spool holds %d, want %d", st.Pending, n)
	}
	rcv := &ceReceiver{t: t, secret: secret}
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s taken meanwhile: %v", addr, err)
	}
	srv := &http.Server{Handler: rcv}
	go srv.Serve(ln)
	defer srv.Close()
	waitFor(t, "everything delivered", func() bool { return sk.Stats().Sent == n })
	seen := map[string]int{}
	for _, d := range rcv.deliveries() {
		seen[d["id"].(string)]++
	}
	for _, id := range want {
		if seen[id] == 0 {
			t.Errorf("event %s lost", id)
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct ids, want %d (a duplicate must reuse its id)", len(seen), n)
	}
}

func TestRestartDeliversWhatWasSpooled(t *testing.T) {
	dir := t.TempDir()
	down, _ := NewCloudEvents(CloudEventsConfig{URL: "http://127.0.0.1:1/nothing-listens", Secret: secret})
	first, err := New("ce", "cloudevents", openSpool(t, dir, 1<<20), down, WithRetry(time.Millisecond, 5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 10 {
		e := event(i, "deny")
		record(t, first, e)
		want = append(want, idOf(t, e))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // no time to flush: everything stays spooled
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if first.Stats().Pending != 10 {
		t.Fatalf("spooled %d at shutdown", first.Stats().Pending)
	}
	// A new process: a new Sink over the same directory.
	rcv := &ceReceiver{t: t, secret: secret}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	up, _ := NewCloudEvents(CloudEventsConfig{URL: srv.URL, Secret: secret})
	second := newSink(t, "ce", openSpool(t, dir, 1<<20), up)
	waitFor(t, "the spooled events", func() bool { return second.Stats().Sent == 10 })
	got := rcv.deliveries()
	for i, id := range want {
		if got[i]["id"] != id {
			t.Fatalf("delivery %d id %v, want %s (in order, same ids)", i, got[i]["id"], id)
		}
	}
}

func TestSpoolBoundDropsOldestAndCounts(t *testing.T) {
	down, _ := NewCloudEvents(CloudEventsConfig{URL: "http://127.0.0.1:1/", Secret: secret})
	sk := newSink(t, "ce", openSpool(t, t.TempDir(), 8<<10), down)
	const n = 200
	for i := range n {
		record(t, sk, event(i, "allow"))
	}
	waitFor(t, "all spooled", func() bool { st := sk.Stats(); return st.Queued == n })
	st := sk.Stats()
	if st.Dropped[DropSpoolFull] == 0 {
		t.Fatalf("nothing dropped from an 8 KiB spool: %+v", st)
	}
	if int64(st.Pending)+st.Dropped[DropSpoolFull] != n {
		t.Fatalf("pending %d + dropped %d != %d", st.Pending, st.Dropped[DropSpoolFull], n)
	}
}

// TestRecordDoesNotWaitForABlockedReceiver: the receiver never answers; Record still
// returns for every event and the spool holds them all.
func TestRecordDoesNotWaitForABlockedReceiver(t *testing.T) {
	rcv := &ceReceiver{t: t, secret: secret, block: make(chan struct{})}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	defer close(rcv.block)
	ce, _ := NewCloudEvents(CloudEventsConfig{URL: srv.URL, Secret: secret, Timeout: time.Hour})
	sk := newSink(t, "ce", openSpool(t, t.TempDir(), 1<<20), ce)
	const n = 500
	for i := range n {
		if err := sk.Record(context.Background(), event(i, "allow")); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "all spooled", func() bool { return sk.Stats().Queued == n })
	if st := sk.Stats(); st.Pending != n || st.Sent != 0 {
		t.Fatalf("stats %+v: the receiver is blocked, so all %d must wait in the spool", st, n)
	}
}

func TestQueueFullDropsInsteadOfBlocking(t *testing.T) {
	// A sink whose spool writer is not running: the hand-off holds one event.
	s := &Sink{name: "x", typ: "test", in: make(chan []byte, 1)}
	s.inst.mp = noop.NewMeterProvider()
	if err := s.inst.register(s); err != nil {
		t.Fatal(err)
	}
	if err := s.Record(context.Background(), event(1, "allow")); err != nil {
		t.Fatal(err)
	}
	err := s.Record(context.Background(), event(2, "allow"))
	if err == nil || !strings.Contains(err.Error(), "queue full") {
		t.Fatalf("second Record: %v, want queue full", err)
	}
	if droppedCount(s, DropQueueFull) != 1 {
		t.Fatal("queue_full drop not counted")
	}
}

func TestTypesFilter(t *testing.T) {
	rcv := &ceReceiver{t: t, secret: secret}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	ce, _ := NewCloudEvents(CloudEventsConfig{URL: srv.URL, Secret: secret})
	sk := newSink(t, "ce", openSpool(t, t.TempDir(), 1<<20), ce, WithTypes(audit.TypeDecision))
	q := event(1, "allow")
	q.Type = audit.TypeQuery
	record(t, sk, q, event(2, "deny"))
	waitFor(t, "delivery", func() bool { return sk.Stats().Sent == 1 })
	if got := rcv.deliveries(); len(got) != 1 || got[0]["type"] != "dev.portcullis.decision.v1" {
		t.Fatalf("got %v", got)
	}
}

func TestMetricsPerSink(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	rcv := &hecReceiver{t: t, token: "t"}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	hec, _ := NewHEC(HECConfig{URL: srv.URL, Token: "t"})
	sk := newSink(t, "splunk-a", openSpool(t, t.TempDir(), 1<<20), hec, WithMeterProvider(mp))
	bad := event(2, "deny")
	bad.Repository = "poison"
	record(t, sk, event(1, "allow"), bad)
	waitFor(t, "delivery", func() bool { st := sk.Stats(); return st.Sent+st.Dropped[DropRejected] == 2 })
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					if v, _ := p.Attributes.Value(attribute.Key("sink")); v.AsString() == "splunk-a" {
						r, _ := p.Attributes.Value(attribute.Key("reason"))
						got[m.Name+"/"+r.AsString()] += p.Value
					}
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					got[m.Name] = p.Value
				}
			}
		}
	}
	for k, want := range map[string]int64{
		"portcullis.audit.sink.queued/": 2, "portcullis.audit.sink.sent/": 1,
		"portcullis.audit.sink.dropped/rejected": 1, "portcullis.audit.sink.pending": 0,
	} {
		if got[k] != want {
			t.Errorf("%s = %d, want %d (all: %v)", k, got[k], want, got)
		}
	}
}

func TestCloseFlushesWithinItsBound(t *testing.T) {
	rcv := &ceReceiver{t: t, secret: secret}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	ce, _ := NewCloudEvents(CloudEventsConfig{URL: srv.URL, Secret: secret})
	sp := openSpool(t, filepath.Join(t.TempDir(), "s"), 1<<20)
	sk, err := New("ce", "cloudevents", sp, ce)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		record(t, sk, event(i, "allow"))
	}
	if err := sk.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(rcv.deliveries()) != 50 {
		t.Fatalf("Close delivered %d of 50 with a reachable receiver", len(rcv.deliveries()))
	}
	if err := sk.Record(context.Background(), event(99, "allow")); err == nil || sk.Stats().Dropped[DropClosed] != 1 {
		t.Fatal("Record after Close must fail and count")
	}
}

func TestBackoffGrowsWithJitterUpToTheCap(t *testing.T) {
	s := &Sink{retryMin: time.Second, retryMax: time.Minute}
	for attempt, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, time.Minute, time.Minute} {
		for range 50 {
			d := s.backoff(attempt)
			if d < want/2 || d > want {
				t.Fatalf("attempt %d waits %s, want within [%s, %s]", attempt, d, want/2, want)
			}
		}
	}
	if s.backoff(1000) > time.Minute {
		t.Fatal("no cap for large attempts")
	}
}

func droppedCount(s *Sink, reason string) int64 {
	v, ok := s.dropped.Load(reason)
	if !ok {
		return 0
	}
	return v.(*atomic.Int64).Load()
}

func TestRetryAfterIsHonouredUpToRetryMax(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	ce, _ := NewCloudEvents(CloudEventsConfig{URL: srv.URL, Secret: secret})
	_, err := ce.Send(context.Background(), []Item{{ID: "x", Event: event(1, "allow"), Raw: []byte(`{}`)}})
	var ra *RetryAfter
	if !errors.As(err, &ra) || ra.Wait != time.Hour {
		t.Fatalf("err = %v, want a RetryAfter of 1h", err)
	}
	// The sink waits for it, but never longer than retryMax (20ms here): delivery follows.
	sk := newSink(t, "ce", openSpool(t, t.TempDir(), 1<<20), ce)
	calls.Store(0)
	record(t, sk, event(2, "allow"))
	waitFor(t, "delivery after the capped Retry-After", func() bool { return sk.Stats().Sent == 1 })
}
