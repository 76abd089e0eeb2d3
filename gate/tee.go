package gate

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/scan/layer"
)

// Upload tee limits. A session buffers at most teeBuffer bytes ahead of its analysis;
// when the analysis falls that far behind, the upload waits for it at most teeStall, then
// the session is dropped (its layer is read back when the manifest arrives) and the upload
// goes on at full speed. At most teeSessions sessions are followed at once; one idle for
// teeIdle (a client that gave up, or went on through another replica) is dropped.
const (
	teeBuffer   = 32 << 20
	teeStall    = 2 * time.Second
	teeSessions = 64
	teeIdle     = 10 * time.Minute
)

// UploadTee analyses layer blobs while they are uploaded through the gateway, so that the
// manifest push finds their analysis in the cache instead of reading them back from the
// upstream. It follows upload sessions the gateway saw open, in order, on this replica;
// anything else (chunks through another replica, out-of-order chunks, an analysis that
// cannot keep up) is dropped, never failed: the scanner reads those layers back.
type UploadTee struct {
	scanner  *Scanner
	wants    func(repo, host string) bool
	log      *slog.Logger
	outcomes metric.Int64Counter // nil until Instrument

	mu       sync.Mutex
	sessions map[string]*teeSession // by upload id
	running  int                    // analyses not finished yet, monolithic uploads included
	pending  map[string]*teeSession // by blob digest: complete, analysis running
}

// NewUploadTee returns a tee analysing uploads with s, for repositories where wants says
// a scan will be needed (the push's policy has vulnerability or secret rules). It makes s
// wait for a layer's analysis in progress rather than read the layer back.
func NewUploadTee(s *Scanner, wants func(repo, host string) bool, log *slog.Logger) *UploadTee {
	if log == nil {
		log = slog.Default()
	}
	t := &UploadTee{scanner: s, wants: wants, log: log, sessions: map[string]*teeSession{}, pending: map[string]*teeSession{}}
	s.tee = t
	return t
}

// Instrument counts the tee's followed uploads by how they ended in mp
// (portcullis.upload.tee{outcome}): analysed (stored for the scan), dropped (not followed to
// the end: out of order, refused, too far behind, idle), not-a-layer (the analysis failed: a
// config blob, an artifact), incomplete (stopped at a limit before the end of the layer) and
// mismatch (not the bytes the registry stored).
func (t *UploadTee) Instrument(mp metric.MeterProvider) error {
	c, err := mp.Meter("github.com/portcullis-dev/portcullis/gate").Int64Counter("portcullis.upload.tee",
		metric.WithDescription("Uploads the gateway followed to analyse layers as they stream, by how they ended: analysed, dropped, not-a-layer, incomplete, mismatch."))
	if err != nil {
		return err
	}
	t.outcomes = c
	return nil
}

// count records how a followed upload ended.
func (t *UploadTee) count(outcome string) {
	if t.outcomes != nil {
		t.outcomes.Add(context.Background(), 1, metric.WithAttributes(attribute.String("outcome", outcome)))
	}
}

// teeSession is one followed upload: the bytes flow through chunks to an analysis. Lock
// order: UploadTee.mu may be taken while holding a session's mu, never the other way round.
type teeSession struct {
	t  *UploadTee
	id string

	mu       sync.Mutex // serialises the writers (one request at a time per session)
	offset   int64      // bytes accepted by the upstream so far
	written  int64      // bytes handed to the analysis so far
	dropped  bool
	closed   bool
	lastUsed atomic.Int64 // unix nanoseconds

	chunks  chan []byte
	quit    chan struct{} // closed when the session is dropped
	digests chan string   // the digest of the completed blob, sent before chunks closes
	cur     []byte        // what is left to read of the chunk the analysis is reading
	curBuf  []byte        // that chunk's whole buffer, returned to the pool once read
	done    chan struct{} // closed when the analysis ended
}

// Opened starts following a new upload session when the policy will want its layers.
func (t *UploadTee) Opened(repo, host, id string) {
	if !t.wants(repo, host) {
		return
	}
	if s := t.add(id); s != nil {
		go s.analyse()
	}
}

// Monolithic follows a single-request upload.
func (t *UploadTee) Monolithic(repo, host string) TeeChunk {
	if !t.wants(repo, host) {
		return nil
	}
	s := t.add("")
	if s == nil {
		return nil
	}
	go s.analyse()
	return &teeChunk{s: s}
}

// add registers a new session (id "" is not registered: a monolithic upload), nil when
// too many are followed already.
func (t *UploadTee) add(id string) *teeSession {
	t.sweep()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.running >= teeSessions {
		return nil
	}
	s := &teeSession{t: t, id: id, chunks: make(chan []byte, teeBuffer/(32<<10)), quit: make(chan struct{}),
		digests: make(chan string, 1), done: make(chan struct{})}
	s.lastUsed.Store(time.Now().UnixNano())
	if id != "" {
		t.sessions[id] = s
	}
	t.running++
	return s
}

// Chunk continues a followed session; offset -1 means "where the last chunk ended".
func (t *UploadTee) Chunk(id string, offset int64) TeeChunk {
	t.mu.Lock()
	s := t.sessions[id]
	t.mu.Unlock()
	if s == nil {
		return nil
	}
	s.mu.Lock()
	ok := !s.dropped && !s.closed && (offset < 0 || offset == s.offset) && s.written == s.offset
	if !ok {
		s.dropLocked()
	}
	s.mu.Unlock()
	if !ok {
		t.forget(id, s)
		return nil
	}
	s.lastUsed.Store(time.Now().UnixNano())
	return &teeChunk{s: s}
}

// TeeChunk receives the body of one upload request (see proxy.UploadTee).
type TeeChunk interface {
	// Write takes a copy of p; it does not fail, and waits at most a short while.
	Write(p []byte)
	// End says whether the upstream accepted the request and, once the upload is
	// complete, the blob's digest.
	End(accepted bool, digest string)
}

// forget stops tracking session s under id.
func (t *UploadTee) forget(id string, s *teeSession) {
	if id == "" {
		return
	}
	t.mu.Lock()
	if t.sessions[id] == s {
		delete(t.sessions, id)
	}
	t.mu.Unlock()
}

// sweep drops sessions idle for teeIdle.
func (t *UploadTee) sweep() {
	cutoff := time.Now().Add(-teeIdle).UnixNano()
	var idle []*teeSession
	t.mu.Lock()
	for id, s := range t.sessions {
		if s.lastUsed.Load() < cutoff {
			idle = append(idle, s)
			delete(t.sessions, id)
		}
	}
	t.mu.Unlock()
	for _, s := range idle {
		s.mu.Lock()
		s.dropLocked()
		s.mu.Unlock()
	}
}

// await waits, at most until ctx ends, for the analysis of an uploaded blob still running.
func (t *UploadTee) await(ctx context.Context, digest string) {
	t.mu.Lock()
	s := t.pending[digest]
	t.mu.Unlock()
	if s == nil {
		return
	}
	select {
	case <-s.done:
	case <-ctx.Done():
	}
}

// teeChunk is one request's body of a session.
type teeChunk struct {
	s   *teeSession
	n   int64
	end bool
}

// teeChunkSize is the size of the pooled buffers chunks are copied into.
const teeChunkSize = 32 << 10

// teeBuffers recycles chunk buffers between the writers and the analyses.
var teeBuffers = sync.Pool{New: func() any { b := make([]byte, teeChunkSize); return &b }}

// Write copies p into the session, waiting at most teeStall for the analysis to make room.
func (c *teeChunk) Write(p []byte) {
	s := c.s
	s.mu.Lock()
	for len(p) > 0 && !s.dropped && !s.closed {
		bp := teeBuffers.Get().(*[]byte)
		n := copy(*bp, p)
		b := (*bp)[:n]
		if !s.send(b) {
			teeBuffers.Put(bp)
			break
		}
		p = p[n:]
		c.n += int64(n)
		s.written += int64(n)
	}
	dropped := s.dropped
	s.mu.Unlock()
	if dropped {
		s.t.forget(s.id, s)
	}
}

// send hands b to the analysis, waiting at most teeStall for room; false means it was
// not sent (the session is dropped: now, if the analysis fell behind). s.mu is held.
func (s *teeSession) send(b []byte) bool {
	select {
	case s.chunks <- b:
		return true
	default:
	}
	timer := time.NewTimer(teeStall)
	defer timer.Stop()
	select {
	case s.chunks <- b:
		return true
	case <-s.quit:
	case <-timer.C:
		s.t.log.Info("upload analysis fell behind; the layer will be read back when its manifest arrives", slog.String("upload", s.id))
		s.dropLocked()
	}
	return false
}

// End moves the session on when the upstream accepted the request, and drops it otherwise.
// A complete upload (digest set) ends the session's input: its analysis finishes and is
// stored under the blob digest and diffID it computed.
func (c *teeChunk) End(accepted bool, digest string) {
	if c.end {
		return
	}
	c.end = true
	s := c.s
	s.mu.Lock()
	switch {
	case s.dropped:
	case !accepted:
		s.dropLocked()
	default:
		s.offset += c.n
	}
	complete := !s.dropped && digest != ""
	if complete {
		s.t.mu.Lock() // the one place both are held: a pending entry must exist before the input ends
		s.t.pending[digest] = s
		s.t.mu.Unlock()
		s.digests <- digest
		s.closed = true
		close(s.chunks)
	}
	forget := s.dropped || complete
	s.mu.Unlock()
	if forget {
		s.t.forget(s.id, s)
	}
	if complete {
		go func() {
			<-s.done
			s.t.mu.Lock()
			if s.t.pending[digest] == s {
				delete(s.t.pending, digest)
			}
			s.t.mu.Unlock()
		}()
	}
}

// dropLocked abandons the session: writers stop, the analysis ends.
func (s *teeSession) dropLocked() {
	if s.dropped {
		return
	}
	s.dropped = true
	close(s.quit)
}

// errDropped ends an analysis whose session was dropped.
var errDropped = errors.New("upload no longer followed")

// Read feeds the analysis from the session's chunks, recycling each buffer once read.
func (s *teeSession) Read(p []byte) (int, error) {
	for len(s.cur) == 0 {
		s.recycle()
		select {
		case b, ok := <-s.chunks:
			if !ok {
				return 0, io.EOF
			}
			s.cur, s.curBuf = b, b
		case <-s.quit:
			return 0, errDropped
		}
	}
	n := copy(p, s.cur)
	s.cur = s.cur[n:]
	return n, nil
}

// recycle returns the buffer read last to the pool.
func (s *teeSession) recycle() {
	if s.curBuf != nil {
		b := s.curBuf[:cap(s.curBuf)]
		teeBuffers.Put(&b)
		s.curBuf = nil
	}
}

// analyse runs the layer analysis over the session's bytes and, when the upload completed
// with the digest the analysis computed, stores it as the scanner would have.
func (s *teeSession) analyse() {
	defer close(s.done)
	defer func() {
		s.t.mu.Lock()
		s.t.running--
		s.t.mu.Unlock()
	}()
	defer func() {
		if r := recover(); r != nil {
			s.t.log.Error("upload analysis failed", slog.Any("panic", r))
		}
	}()
	ctx := context.Background()
	res, err := s.t.scanner.analyzeBlob(ctx, s, "")
	// Whatever the analysis left unread (a blob that is not a layer) is discarded, so
	// writers never wait on it.
	s.recycle()
	for drained := false; !drained; {
		select {
		case b, ok := <-s.chunks:
			if ok {
				s.curBuf = b
				s.recycle()
			}
			drained = !ok
		case <-s.quit:
			drained = true
		}
	}
	var digest string
	select {
	case digest = <-s.digests:
	default:
		s.t.count("dropped") // never completed, or dropped on the way
		return
	}
	switch {
	case err != nil:
		s.t.count("not-a-layer")
		return
	case res.DiffID == "" || res.Digest == "":
		s.t.count("incomplete") // stopped at a limit before the end: the scanner reads it back
		return
	case res.Digest != digest:
		s.t.count("mismatch") // not what the registry stored under that digest: the scanner reads it back
		return
	}
	s.t.count("analysed")
	s.t.storeLayer(ctx, res)
}

// storeLayer caches a layer analysis made from an upload, as Scanner.layer would have:
// under the blob digest and diffID it computed (analyse checked the digest is the one the
// upload completed with).
func (t *UploadTee) storeLayer(ctx context.Context, res layer.Result) {
	if err := t.scanner.storeLayer(ctx, res); err != nil {
		t.log.Warn("could not cache an upload's layer analysis", slog.String("digest", res.Digest), slog.String("diff_id", res.DiffID), slog.String("error", err.Error()))
	}
}

// ScansPush reports whether a push to repo through host will need its layers analysed:
// the policy in force has vulnerability, secret or config rules for it. The upload tee
// follows only those uploads.
func (g *Gate) ScansPush(repo, host string) bool {
	n := g.policy.Load().Needs(policy.ActionPush, repo, host)
	return n.Scan || n.Image
}
