package export

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/audit/spool"
)

// Sender delivers a batch of items to one destination. It returns how many items from the
// start of the batch were delivered; err explains why the next one was not. An error
// wrapped with Rejected means the destination refused that item for good (bad data): it
// is dropped, not retried.
type Sender interface {
	Send(ctx context.Context, items []Item) (delivered int, err error)
}

// rejectedError marks a destination's refusal of data it will never accept.
type rejectedError struct{ err error }

func (r *rejectedError) Error() string { return "rejected: " + r.err.Error() }
func (r *rejectedError) Unwrap() error { return r.err }

// Rejected wraps err to say the destination refused the data for good.
func Rejected(err error) error { return &rejectedError{err} }

// IsRejected reports whether err is (or wraps) a Rejected error.
func IsRejected(err error) bool {
	var r *rejectedError
	return errors.As(err, &r)
}

// Drop reasons, the "reason" attribute of the dropped metric.
const (
	// DropQueueFull: the in-memory hand-off to the spool writer was full.
	DropQueueFull = "queue_full"
	// DropSpoolFull: the spool passed its bound and its oldest records were removed.
	DropSpoolFull = "spool_full"
	// DropSpoolError: the spool could not be written (disk error, record too large).
	DropSpoolError = "spool_error"
	// DropRejected: the destination refused the event for good (e.g. HEC 400, HTTP 413).
	DropRejected = "rejected"
	// DropCorrupt: a spooled record could not be read back (damaged disk, torn write).
	DropCorrupt = "corrupt"
	// DropClosed: the event arrived after the sink was closed.
	DropClosed = "closed"
)

// Stats are a sink's counters since it started.
type Stats struct {
	Queued, Sent, Retries int64
	Dropped               map[string]int64
	// Pending is how many events the spool holds.
	Pending int
}

// Sink records events into its spool without waiting and delivers them from there, in
// order, at least once. It implements gate.Recorder.
type Sink struct {
	name   string
	typ    string
	sp     *spool.Spool
	sender Sender
	log    *slog.Logger

	batch      int
	batchBytes int
	types      []string
	retryMin   time.Duration
	retryMax   time.Duration

	mu     sync.RWMutex
	closed bool
	in     chan []byte
	wake   chan struct{}
	// writerDone closes when every event handed over is in the spool; stop ends delivery
	// once the spool is empty; kill ends it at once.
	writerDone chan struct{}
	stop       chan struct{}
	kill       context.CancelFunc
	loopDone   chan struct{}

	queued, sent, retries atomic.Int64
	dropped               sync.Map // reason → *atomic.Int64
	inst                  instruments
}

// Option sets an optional setting of a Sink.
type Option func(*Sink)

// WithLogger sets where delivery problems are logged.
func WithLogger(l *slog.Logger) Option { return func(s *Sink) { s.log = l } }

// WithBatch sets how many events (default 100) and how many bytes of them (default 1 MiB)
// one Send carries at most.
func WithBatch(events, bytes int) Option {
	return func(s *Sink) {
		if events > 0 {
			s.batch = events
		}
		if bytes > 0 {
			s.batchBytes = bytes
		}
	}
}

// WithRetry sets the backoff between failed attempts: from min, doubling to max (defaults
// 1s and 5m), each wait drawn at random between half and all of it (jitter).
func WithRetry(minWait, maxWait time.Duration) Option {
	return func(s *Sink) {
		if minWait > 0 {
			s.retryMin = minWait
		}
		if maxWait > 0 {
			s.retryMax = max(maxWait, s.retryMin)
		}
	}
}

// WithTypes limits the sink to events of these types (audit.TypeDecision, ...); by default
// every event goes out.
func WithTypes(types ...string) Option { return func(s *Sink) { s.types = types } }

// WithMeterProvider sets where the sink's metrics go.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(s *Sink) { s.inst.mp = mp }
}

// WithQueue sets how many events may wait in memory for the spool writer (default 4096);
// past that Record drops them and counts.
func WithQueue(n int) Option {
	return func(s *Sink) {
		if n > 0 {
			s.in = make(chan []byte, n)
		}
	}
}

// New starts a sink named name (of type typ, for metrics and logs) that delivers through
// sender the events spooled in sp, starting with what an earlier process left there. The
// sink owns sp and closes it on Close.
func New(name, typ string, sp *spool.Spool, sender Sender, opts ...Option) (*Sink, error) {
	s := &Sink{
		name: name, typ: typ, sp: sp, sender: sender, log: slog.New(slog.DiscardHandler),
		batch: 100, batchBytes: 1 << 20, retryMin: time.Second, retryMax: 5 * time.Minute,
		in: make(chan []byte, 4096), wake: make(chan struct{}, 1),
		writerDone: make(chan struct{}), stop: make(chan struct{}), loopDone: make(chan struct{}),
	}
	s.inst.mp = noop.NewMeterProvider()
	for _, o := range opts {
		o(s)
	}
	if err := s.inst.register(s); err != nil {
		return nil, fmt.Errorf("audit sink %s metrics: %w", name, err)
	}
	if n := sp.Lost(); n > 0 {
		s.drop(DropCorrupt, int64(n))
		s.log.Warn("audit sink spool had damaged records", slog.String("sink", name), slog.Int("segments", n))
	}
	ctx, kill := context.WithCancel(context.Background())
	s.kill = kill
	go s.write()
	go s.deliver(ctx)
	s.signal()
	return s, nil
}

// Name is the sink's name.
func (s *Sink) Name() string { return s.name }

// Record hands e to the spool writer and returns at once: it never waits for the
// destination or the disk. An event that cannot be handed over is dropped and counted.
func (s *Sink) Record(ctx context.Context, e audit.Event) error {
	if len(s.types) > 0 && !slices.Contains(s.types, e.Type) {
		return nil
	}
	raw, err := json.Marshal(e)
	if err != nil {
		s.drop(DropSpoolError, 1)
		return fmt.Errorf("audit sink %s: encoding event: %w", s.name, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		s.drop(DropClosed, 1)
		return fmt.Errorf("audit sink %s: closed", s.name)
	}
	select {
	case s.in <- raw:
		return nil
	default:
		s.drop(DropQueueFull, 1)
		return fmt.Errorf("audit sink %s: queue full, event dropped", s.name)
	}
}

// write moves handed-over events into the spool, syncing whenever it catches up.
func (s *Sink) write() {
	defer close(s.writerDone)
	for raw := range s.in {
		s.append(raw)
		if len(s.in) == 0 {
			if err := s.sp.Sync(); err != nil {
				s.log.Error("audit sink spool sync failed", slog.String("sink", s.name), slog.String("error", err.Error()))
			}
			s.signal()
		}
	}
}

func (s *Sink) append(raw []byte) {
	dropped, err := s.sp.Append(raw)
	if dropped > 0 {
		s.drop(DropSpoolFull, int64(dropped))
	}
	if err != nil {
		s.drop(DropSpoolError, 1)
		s.log.Error("audit event not spooled", slog.String("sink", s.name), slog.String("error", err.Error()))
		return
	}
	s.queued.Add(1)
	s.inst.queued.Add(context.Background(), 1, s.inst.attrs)
}

func (s *Sink) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Sink) drop(reason string, n int64) {
	c, _ := s.dropped.LoadOrStore(reason, new(atomic.Int64))
	c.(*atomic.Int64).Add(n)
	s.inst.dropped.Add(context.Background(), n, metric.WithAttributeSet(attribute.NewSet(
		attribute.String("sink", s.name), attribute.String("type", s.typ), attribute.String("reason", reason))))
}

// deliver sends what the spool holds until the sink is stopped (after draining) or killed.
func (s *Sink) deliver(ctx context.Context) {
	defer close(s.loopDone)
	attempt := 0
	isolate := 0 // items left to send one at a time, to find the one a batch was refused for
	for ctx.Err() == nil {
		n := s.batch
		if isolate > 0 {
			n = 1
		}
		entries, next, lost := s.sp.Peek(n, s.batchBytes)
		if lost > 0 {
			s.drop(DropCorrupt, int64(lost))
		}
		if len(entries) == 0 {
			if lost > 0 {
				s.ack(next)
				continue
			}
			select {
			case <-s.wake:
				continue
			case <-s.stop:
				return
			case <-ctx.Done():
				return
			}
		}
		items := make([]Item, 0, len(entries))
		pos := make([]spool.Position, 0, len(entries))
		for _, en := range entries {
			var e audit.Event
			if err := json.Unmarshal(en.Data, &e); err != nil {
				// Not an event: it cannot be delivered, now or later.
				s.drop(DropCorrupt, 1)
				if len(items) == 0 {
					s.ack(en.Next)
					continue
				}
				break
			}
			items = append(items, Item{ID: EventID(en.Data), Event: e, Raw: en.Data})
			pos = append(pos, en.Next)
		}
		if len(items) == 0 {
			continue
		}
		delivered, err := s.sender.Send(ctx, items)
		delivered = min(max(delivered, 0), len(items))
		if delivered > 0 {
			// Count before the cursor moves: whoever sees the spool empty sees the
			// counters final.
			s.sent.Add(int64(delivered))
			s.inst.sent.Add(context.Background(), int64(delivered), s.inst.attrs)
			s.ack(pos[delivered-1])
			isolate = max(isolate-delivered, 0)
		}
		if err == nil {
			attempt = 0
			continue
		}
		if IsRejected(err) && ctx.Err() == nil {
			if len(items)-delivered > 1 {
				// A batch was refused: send its items one by one to find the bad one.
				isolate = len(items) - delivered
				continue
			}
			s.drop(DropRejected, 1)
			s.ack(pos[delivered])
			s.log.Warn("audit event rejected by the destination, dropped", slog.String("sink", s.name), slog.String("id", items[delivered].ID), slog.String("error", err.Error()))
			isolate = max(isolate-1, 0)
			attempt = 0
			continue
		}
		if ctx.Err() != nil {
			return
		}
		s.retries.Add(1)
		s.inst.retries.Add(context.Background(), 1, s.inst.attrs)
		wait := s.backoff(attempt)
		var ra *RetryAfter
		if errors.As(err, &ra) {
			wait = min(max(wait, ra.Wait), s.retryMax)
		}
		attempt++
		s.log.Warn("audit sink delivery failed, retrying", slog.String("sink", s.name), slog.String("error", err.Error()),
			slog.Int("pending", s.sp.Pending()), slog.Duration("retry_in", wait))
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// backoff is the wait before retry number attempt: retryMin doubled attempt times, capped
// at retryMax, then drawn uniformly from its upper half.
func (s *Sink) backoff(attempt int) time.Duration {
	d := s.retryMax
	if attempt < 40 {
		d = min(s.retryMin<<attempt, s.retryMax)
	}
	return d/2 + rand.N(d/2+1)
}

func (s *Sink) ack(p spool.Position) {
	if err := s.sp.Ack(p); err != nil {
		s.log.Error("audit sink spool cursor not saved (events may be sent again)", slog.String("sink", s.name), slog.String("error", err.Error()))
	}
}

// Stats returns the sink's counters. Pending is read first and the counters move before
// the spool's cursor does, so a Stats with Pending 0 counts every event that left the spool.
func (s *Sink) Stats() Stats {
	st := Stats{Pending: s.sp.Pending(), Dropped: map[string]int64{}}
	st.Queued, st.Sent, st.Retries = s.queued.Load(), s.sent.Load(), s.retries.Load()
	s.dropped.Range(func(k, v any) bool {
		st.Dropped[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return st
}

// Close stops accepting events, spools those handed over, and keeps delivering until the
// spool is empty or ctx ends; what is left stays in the spool for the next start.
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.in)
	s.mu.Unlock()
	<-s.writerDone
	// Deliver what is spooled, within ctx.
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		for s.sp.Pending() > 0 {
			s.signal()
			select {
			case <-ctx.Done():
				return
			case <-s.loopDone:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	select {
	case <-flushed:
	case <-ctx.Done():
	}
	close(s.stop)
	s.kill()
	<-s.loopDone
	s.inst.unregister()
	left := s.sp.Pending()
	err := s.sp.Close()
	if left > 0 {
		s.log.Warn("audit sink closed with events still spooled; they go out on the next start", slog.String("sink", s.name), slog.Int("pending", left))
	}
	return err
}

// instruments are a sink's metrics.
type instruments struct {
	mp                             metric.MeterProvider
	attrs                          metric.MeasurementOption
	queued, sent, retries, dropped metric.Int64Counter
	reg                            metric.Registration
}

func (in *instruments) register(s *Sink) error {
	m := in.mp.Meter("github.com/portcullis-dev/portcullis/audit/export")
	in.attrs = metric.WithAttributeSet(attribute.NewSet(attribute.String("sink", s.name), attribute.String("type", s.typ)))
	var err error
	if in.queued, err = m.Int64Counter("portcullis.audit.sink.queued", metric.WithDescription("Audit events written to a SIEM sink's spool, by sink.")); err != nil {
		return err
	}
	if in.sent, err = m.Int64Counter("portcullis.audit.sink.sent", metric.WithDescription("Audit events a SIEM sink delivered, by sink.")); err != nil {
		return err
	}
	if in.retries, err = m.Int64Counter("portcullis.audit.sink.retries", metric.WithDescription("Failed delivery attempts a SIEM sink will retry, by sink.")); err != nil {
		return err
	}
	if in.dropped, err = m.Int64Counter("portcullis.audit.sink.dropped", metric.WithDescription("Audit events a SIEM sink lost, by sink and reason (queue_full, spool_full, spool_error, rejected, corrupt, closed).")); err != nil {
		return err
	}
	pending, err := m.Int64ObservableGauge("portcullis.audit.sink.pending", metric.WithDescription("Audit events waiting in a SIEM sink's spool, by sink."))
	if err != nil {
		return err
	}
	spoolBytes, err := m.Int64ObservableGauge("portcullis.audit.sink.spool.bytes", metric.WithDescription("Size of a SIEM sink's spool files, by sink."), metric.WithUnit("By"))
	if err != nil {
		return err
	}
	in.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(pending, int64(s.sp.Pending()), metric.WithAttributeSet(attribute.NewSet(attribute.String("sink", s.name), attribute.String("type", s.typ))))
		o.ObserveInt64(spoolBytes, s.sp.Bytes(), metric.WithAttributeSet(attribute.NewSet(attribute.String("sink", s.name), attribute.String("type", s.typ))))
		return nil
	}, pending, spoolBytes)
	return err
}

func (in *instruments) unregister() {
	if in.reg != nil {
		_ = in.reg.Unregister()
	}
}
