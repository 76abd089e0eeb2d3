package cache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Near is a LockingStore that keeps copies of some kinds of keys (by default the hot
// path's: manifests, tag memos, access memos) in process memory in front of a shared
// store, so that a warm read costs no round trip to Redis. Every other key, and every
// lock, goes straight to the shared store.
//
// Replicas keep each other's copies honest over Redis pub/sub: a Set or Delete of a kept
// kind, through any replica, writes the shared store first and then tells every replica
// to drop its copy. A copy is kept only while this replica's subscription is confirmed,
// and never across a gap in it: when the subscription is lost (an error, or no answer to
// a ping), every copy is dropped and reads go to the shared store until it is confirmed
// again. A read that raced an invalidation is not kept. A copy never outlives the value's
// expiry in the shared store, nor MaxAge, which bounds what a lost invalidation message
// could cost.
type Near struct {
	inner    LockingStore
	client   redis.UniversalClient
	kinds    map[string]bool
	maxBytes int64
	maxAge   time.Duration
	negAge   time.Duration
	ping     time.Duration
	channel  string
	id       string

	mu     sync.Mutex // orders fills against invalidations
	epoch  atomic.Uint64
	local  atomic.Pointer[Memory]
	live   atomic.Bool
	reason atomic.Pointer[string]
	heard  atomic.Uint64 // invalidation messages received, for tests

	cancel context.CancelFunc
	done   chan struct{}
}

// NearOptions configures NewNear; zero fields take the defaults.
type NearOptions struct {
	// MaxBytes bounds the copies (keys, values, overhead); default 64 MiB.
	MaxBytes int64
	// MaxAge bounds how long a copy is kept without reading the shared store again;
	// default one minute.
	MaxAge time.Duration
	// Kinds are the key kinds kept; default KindManifest, KindTag, KindAccess.
	Kinds []string
	// PingEvery is how long the subscription may stay quiet before it is pinged; a ping
	// unanswered for as long again counts as a lost subscription. Default one second.
	PingEvery time.Duration
	// Channel is the pub/sub channel; default Prefix + "near".
	Channel string
}

// DefaultNearBytes is NearOptions.MaxBytes's default.
const DefaultNearBytes = 64 << 20

// negativeAge bounds how long "nothing stored here" is kept.
const negativeAge = 10 * time.Second

// NewNear returns a Near over inner, kept honest through client's pub/sub, and starts its
// subscription; Close stops it. Until the subscription is confirmed, Near reads through.
func NewNear(inner LockingStore, client redis.UniversalClient, o NearOptions) *Near {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultNearBytes
	}
	if o.MaxAge <= 0 {
		o.MaxAge = time.Minute
	}
	if len(o.Kinds) == 0 {
		o.Kinds = []string{KindManifest, KindTag, KindAccess}
	}
	if o.PingEvery <= 0 {
		o.PingEvery = time.Second
	}
	if o.Channel == "" {
		o.Channel = Prefix + "near"
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Near{
		inner: inner, client: client, kinds: map[string]bool{}, maxBytes: o.MaxBytes,
		maxAge: o.MaxAge, negAge: min(negativeAge, o.MaxAge), ping: o.PingEvery,
		channel: o.Channel, id: newToken(), cancel: cancel, done: make(chan struct{}),
	}
	for _, k := range o.Kinds {
		n.kinds[k] = true
	}
	n.local.Store(NewMemory(n.maxBytes))
	n.setReason("not subscribed yet")
	go n.watch(ctx)
	return n
}

// Close stops the subscription; inner and client stay open, their owner closes them.
func (n *Near) Close() {
	n.cancel()
	<-n.done
}

// Live reports whether copies are being kept and served, and if not, why.
func (n *Near) Live() (bool, string) {
	if n.live.Load() {
		return true, ""
	}
	return false, *n.reason.Load()
}

func (n *Near) setReason(s string) { n.reason.Store(&s) }

// kept reports whether key is of a kind Near keeps copies of.
func (n *Near) kept(key string) bool { return n.kinds[KindOf(key)] }

// Local values: a first byte of 1 and the value, or a single 0 for "nothing stored".
const (
	localAbsent  = 0
	localPresent = 1
)

// lookLocal returns the copy of key, if one is kept and Near is live.
func (n *Near) lookLocal(ctx context.Context, key string) (Lookup, bool) {
	if !n.live.Load() || !n.kept(key) {
		return Lookup{}, false
	}
	v, ok, _ := n.local.Load().Get(ctx, key)
	if !ok || len(v) == 0 {
		return Lookup{}, false
	}
	if v[0] == localAbsent {
		return Lookup{}, true
	}
	return Lookup{Value: v[1:], OK: true}, true
}

// Get returns the copy of key if one is kept, else reads the shared store (and keeps a
// copy when key is of a kept kind).
func (n *Near) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if !n.kept(key) {
		return n.inner.Get(ctx, key)
	}
	out, err := n.GetMany(ctx, key)
	if err != nil {
		return nil, false, err
	}
	return out[0].Value, out[0].OK, nil
}

// GetMany answers each key from its copy when one is kept, and the others from the shared
// store in one call.
func (n *Near) GetMany(ctx context.Context, keys ...string) ([]Lookup, error) {
	out := make([]Lookup, len(keys))
	var missing []int
	for i, k := range keys {
		l, ok := n.lookLocal(ctx, k)
		if !ok {
			missing = append(missing, i)
			continue
		}
		out[i] = l
	}
	if len(missing) == 0 {
		return out, nil
	}
	ask := make([]string, len(missing))
	for j, i := range missing {
		ask[j] = keys[i]
	}
	start := n.epoch.Load()
	got, withTTL, err := n.readInner(ctx, ask)
	if err != nil {
		return nil, err
	}
	for j, i := range missing {
		out[i] = got[j]
	}
	n.fill(ask, got, withTTL, start)
	return out, nil
}

// readInner reads keys from the shared store, with their TTLs when it reports them and a
// copy of one of them may be kept.
func (n *Near) readInner(ctx context.Context, keys []string) ([]Lookup, bool, error) {
	if t, ok := n.inner.(TTLGetter); ok && n.live.Load() && slices.ContainsFunc(keys, n.kept) {
		got, err := t.GetManyTTL(ctx, keys...)
		return got, err == nil, err
	}
	got, err := GetMany(ctx, n.inner, keys...)
	return got, false, err
}

// fill keeps copies of what a read that started at epoch start found, unless an
// invalidation (or a change of subscription) came in meanwhile. A found value whose TTL
// is unknown is not kept: its copy could outlive it.
func (n *Near) fill(keys []string, got []Lookup, withTTL bool, start uint64) {
	if !n.live.Load() {
		return
	}
	if s, ok := n.inner.(interface{ Status() (bool, string) }); ok {
		if up, _ := s.Status(); !up {
			return // values from a fallback are this process's alone: not the shared truth
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.epoch.Load() != start || !n.live.Load() {
		return
	}
	local := n.local.Load()
	ctx := context.Background()
	for i, k := range keys {
		if !n.kept(k) {
			continue
		}
		l := got[i]
		switch {
		case !l.OK:
			_ = local.Set(ctx, k, []byte{localAbsent}, n.negAge)
		case withTTL:
			ttl := n.maxAge
			if l.TTL > 0 {
				ttl = min(ttl, l.TTL)
			}
			_ = local.Set(ctx, k, append([]byte{localPresent}, l.Value...), ttl)
		}
	}
}

// Set writes value under key to the shared store, then drops every replica's copy of key.
func (n *Near) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := n.inner.Set(ctx, key, value, ttl); err != nil {
		return err
	}
	return n.invalidate(ctx, key)
}

// Delete removes key from the shared store, then drops every replica's copy of key.
func (n *Near) Delete(ctx context.Context, key string) error {
	if err := n.inner.Delete(ctx, key); err != nil {
		return err
	}
	return n.invalidate(ctx, key)
}

// Flush drops every copy in every replica (after a policy reload, for instance).
func (n *Near) Flush(ctx context.Context) error {
	n.dropAll()
	return n.publish(ctx, "all")
}

// invalidate drops this replica's copy of key and tells the others to drop theirs. The
// shared store has been written already, so a replica reading key after the message
// reads the new value. A failure to publish is returned: the other replicas keep their
// copy for at most MaxAge.
func (n *Near) invalidate(ctx context.Context, key string) error {
	if !n.kept(key) {
		return nil
	}
	n.dropKeys([]string{key})
	return n.publish(ctx, "del\n"+key)
}

// publishTimeout bounds one invalidation message.
const publishTimeout = time.Second

// publish sends msg, tagged with this replica's id, on the channel. While the shared
// store is down (a Resilient serving from its fallback) writes stay in this process, so
// there is nothing to tell and nothing is sent: a dead Redis costs no wait.
func (n *Near) publish(ctx context.Context, msg string) error {
	if s, ok := n.inner.(interface{ Status() (bool, string) }); ok {
		if up, _ := s.Status(); !up {
			return nil
		}
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	if err := n.client.Publish(pctx, n.channel, n.id+" "+msg).Err(); err != nil {
		return fmt.Errorf("near cache: telling other replicas: %w", err)
	}
	return nil
}

// dropKeys drops the copies of keys; reads in flight will not keep theirs.
func (n *Near) dropKeys(keys []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.epoch.Add(1)
	local := n.local.Load()
	for _, k := range keys {
		_ = local.Delete(context.Background(), k)
	}
}

// dropAll drops every copy; reads in flight will not keep theirs.
func (n *Near) dropAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.epoch.Add(1)
	n.local.Store(NewMemory(n.maxBytes))
}

// apply carries out an invalidation message from another replica.
func (n *Near) apply(payload string) {
	sender, msg, _ := strings.Cut(payload, " ")
	if sender == n.id {
		return
	}
	op, rest, _ := strings.Cut(msg, "\n")
	switch op {
	case "del":
		n.dropKeys(strings.Split(rest, "\n"))
	default: // "all", or anything this version does not know: the safe answer
		n.dropAll()
	}
}

// Lock takes key in the shared store.
func (n *Near) Lock(ctx context.Context, key string, ttl time.Duration) (string, bool, error) {
	return n.inner.Lock(ctx, key, ttl)
}

// Extend renews a lock in the shared store.
func (n *Near) Extend(ctx context.Context, key, token string, ttl time.Duration) (bool, error) {
	return n.inner.Extend(ctx, key, token, ttl)
}

// Unlock releases a lock in the shared store.
func (n *Near) Unlock(ctx context.Context, key, token string) error {
	return n.inner.Unlock(ctx, key, token)
}

// watch keeps the subscription, dropping every copy whenever it is lost.
func (n *Near) watch(ctx context.Context) {
	defer close(n.done)
	for pause := 50 * time.Millisecond; ctx.Err() == nil; pause = min(2*pause, 2*time.Second) {
		ps := n.client.Subscribe(ctx, n.channel)
		if n.listen(ctx, ps) {
			pause = 50 * time.Millisecond
		}
		_ = ps.Close()
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
	n.lost("closed")
}

// listen reads the subscription until it is lost, and reports whether it was confirmed
// at some point.
func (n *Near) listen(ctx context.Context, ps *redis.PubSub) (confirmed bool) {
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, n.ping)
		if err != nil {
			if ctx.Err() != nil {
				return confirmed
			}
			var te interface{ Timeout() bool }
			if errors.As(err, &te) && te.Timeout() && !pinged {
				if perr := ps.Ping(ctx); perr == nil {
					pinged = true
					continue
				}
			}
			n.lost("subscription lost: " + err.Error())
			return confirmed
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" && m.Channel == n.channel {
				n.confirmed()
				confirmed = true
			} else {
				n.lost("unsubscribed")
			}
		case *redis.Message:
			n.apply(m.Payload)
			n.heard.Add(1)
		}
	}
}

// confirmed starts keeping copies, from empty: messages sent before may have been missed.
func (n *Near) confirmed() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.epoch.Add(1)
	n.local.Store(NewMemory(n.maxBytes))
	n.live.Store(true)
	n.setReason("")
}

// lost stops serving and keeping copies and drops them all.
func (n *Near) lost(reason string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.live.Store(false)
	n.setReason(reason)
	n.epoch.Add(1)
	n.local.Store(NewMemory(n.maxBytes))
}
