package pullthrough

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/cache"
)

// Verdict is the gate's answer on a digest a moved tag would point at.
type Verdict struct {
	// Allowed: the digest may be served, so the on-prem tag may move to it.
	Allowed bool
	// Pending: it could not be decided yet (still being scanned); ask again soon.
	Pending bool
	// Message says why it is refused or pending.
	Message string
}

// Judge decides whether a pull of repo@digest through the door host would be allowed.
type Judge interface {
	Judge(ctx context.Context, repo, digest, host string, manifest []byte) Verdict
}

// Recorder takes audit events (audit sinks are Recorders).
type Recorder interface {
	Record(ctx context.Context, e audit.Event) error
}

// Fetcher copies images from source registries into the upstream on first pull and keeps
// mirrored tags fresh.
type Fetcher struct {
	srcs    *sources
	upHost  string
	upOpts  []name.Option
	upAuth  authn.Authenticator
	upRT    http.RoundTripper
	srcRT   http.RoundTripper
	locker  cache.Locker
	judge   Judge
	sink    Recorder
	wait    func(repo, host string) time.Duration
	onMove  func(ctx context.Context, repo, tag string)
	log     *slog.Logger
	lockTTL time.Duration
	lockMax time.Duration

	mu      sync.Mutex
	fresh   map[string]memo
	present map[string]bool
	flights map[string]*flight
}

// memo is what this replica knows of a mirrored tag until a time.
type memo struct {
	until   time.Time
	warning string
}

// flight is one check (and fetch) of a reference in this replica; callers join it.
type flight struct {
	done    chan struct{}
	warning string
	moved   bool
	err     error
}

// Option sets an optional Fetcher setting.
type Option func(*Fetcher)

// WithUpstreamAuth sets the gateway's service account at the upstream.
func WithUpstreamAuth(username, password string) Option {
	return func(f *Fetcher) {
		if username != "" {
			f.upAuth = &authn.Basic{Username: username, Password: password}
		}
	}
}

// WithSourceTransport sets how sources are reached (default: http.DefaultTransport).
func WithSourceTransport(rt http.RoundTripper) Option { return func(f *Fetcher) { f.srcRT = rt } }

// WithJudge sets who decides whether a moved tag's new digest may be served. Without one
// a mirrored tag never moves on-prem.
func WithJudge(j Judge) Option { return func(f *Fetcher) { f.judge = j } }

// WithRecorder sets where tag moves (and refused moves) are recorded.
func WithRecorder(r Recorder) Option { return func(f *Fetcher) { f.sink = r } }

// WithPullWait sets how long a pull waits for its fetch, per repository and door host
// (the environment's pull wait); default 20s.
func WithPullWait(wait func(repo, host string) time.Duration) Option {
	return func(f *Fetcher) { f.wait = wait }
}

// WithTagMoved sets what to do when an on-prem tag moved (forget cached tag digests).
func WithTagMoved(fn func(ctx context.Context, repo, tag string)) Option {
	return func(f *Fetcher) { f.onMove = fn }
}

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(f *Fetcher) { f.log = l } }

// New returns a Fetcher copying from srcs into the upstream at upstreamURL (reached
// through upstreamRT), taking locker's locks so that one replica fetches each image.
func New(upstreamURL string, upstreamRT http.RoundTripper, locker cache.Locker, srcs []Source, opts ...Option) (*Fetcher, error) {
	u, err := url.Parse(upstreamURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("pull-through: upstream URL %q: want http(s)://host[:port]", upstreamURL)
	}
	if strings.Trim(u.Path, "/") != "" {
		return nil, fmt.Errorf("pull-through: upstream URL %q: an upstream under a path is not supported", upstreamURL)
	}
	ss, err := newSources(srcs)
	if err != nil {
		return nil, fmt.Errorf("pull-through: %w", err)
	}
	f := &Fetcher{
		srcs: ss, upHost: u.Host, upRT: upstreamRT, locker: locker, upAuth: authn.Anonymous,
		srcRT: http.DefaultTransport, log: slog.Default(),
		wait:    func(string, string) time.Duration { return 20 * time.Second },
		lockTTL: 2 * time.Minute, lockMax: 30 * time.Minute,
		fresh: map[string]memo{}, present: map[string]bool{}, flights: map[string]*flight{},
	}
	if u.Scheme == "http" {
		f.upOpts = append(f.upOpts, name.Insecure)
	}
	for _, o := range opts {
		o(f)
	}
	return f, nil
}

// Map returns the on-prem repository name of a request for name: with ns naming a
// mirrored source (containerd's ?ns=docker.io), its name under the source's namespace;
// otherwise name itself. ok is false when ns names no mirrored source (the request is
// for the on-prem registry).
func (f *Fetcher) Map(name, ns string) (string, bool) {
	if ns == "" {
		return name, false
	}
	src := f.srcs.forNS(ns)
	if src == nil {
		return name, false
	}
	return src.namespace + "/" + src.sourcePath(name), true
}

// Source returns the registry whose namespace holds the on-prem repository repo
// (docker.io for mirror/docker.io/library/nginx), "" when no source maps it.
func (f *Fetcher) Source(repo string) string {
	if src, _, ok := f.srcs.resolve(repo); ok {
		return src.Registry
	}
	return ""
}

// Ensure makes the upstream hold what a pull of repo:ref (or repo@digest) through the
// door host should serve: nothing to do for a name no source maps; for a mirrored name,
// the image is fetched when the upstream lacks it, and a tag is re-checked at the source
// once its freshness interval has passed. The caller waits up to the pull wait; the
// fetch goes on without it. warning, when set, is to be sent to the client (the source
// could not be asked, or moved the tag to a digest that is not served); moved reports that
// the on-prem tag now points elsewhere. An *Error is a pull to refuse.
func (f *Fetcher) Ensure(ctx context.Context, repo, ref, host string) (warning string, moved bool, err error) {
	src, path, ok := f.srcs.resolve(repo)
	if !ok {
		return "", false, nil
	}
	if !src.allows(path) {
		return "", false, notMirrored(src, path)
	}
	digestRef := strings.Contains(ref, ":")
	key := repo + ":" + ref
	if digestRef {
		key = repo + "@" + ref
	}
	f.mu.Lock()
	if digestRef && f.present[key] {
		f.mu.Unlock()
		return "", false, nil
	}
	if m, ok := f.fresh[key]; ok && !digestRef && time.Now().Before(m.until) {
		f.mu.Unlock()
		return m.warning, false, nil
	}
	fl, running := f.flights[key]
	if !running {
		fl = &flight{done: make(chan struct{})}
		f.flights[key] = fl
		go func() {
			// The check goes on when the client gives up: the next pull finds it done.
			bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.lockMax)
			defer cancel()
			if digestRef {
				fl.err = f.ensureDigest(bg, src, repo, path, ref, host)
			} else {
				fl.warning, fl.moved, fl.err = f.ensureTag(bg, src, repo, path, ref, host)
			}
			f.mu.Lock()
			delete(f.flights, key)
			f.mu.Unlock()
			close(fl.done)
		}()
	}
	f.mu.Unlock()
	wait := f.wait(repo, host)
	var expired <-chan time.Time
	if wait >= 0 { // negative: no bound
		timer := time.NewTimer(wait)
		defer timer.Stop()
		expired = timer.C
	}
	select {
	case <-fl.done:
		return fl.warning, fl.moved, fl.err
	case <-expired:
		return "", false, stillFetching(src, path, ref, wait)
	case <-ctx.Done():
		return "", false, ctx.Err()
	}
}

// ensureDigest fetches repo@dgst when the upstream lacks it.
func (f *Fetcher) ensureDigest(ctx context.Context, src *source, repo, path, dgst, host string) error {
	has, err := f.upstreamHas(ctx, repo, dgst)
	if err != nil {
		return upstreamUnavailable(err)
	}
	if !has {
		if _, below := src.budget.belowFloor(); below {
			return sourceUnavailable(src, path, dgst, f.floorError(src))
		}
		release, err := f.lock(ctx, src, path, dgst)
		if err != nil {
			return sourceUnavailable(src, path, dgst, err)
		}
		defer release()
		if has, err = f.upstreamHas(ctx, repo, dgst); err != nil {
			return upstreamUnavailable(err)
		}
		if !has {
			if _, err := f.copy(ctx, src, path, repo, dgst); err != nil {
				if isNotFound(err) {
					return unknownAtSource(src, path, dgst)
				}
				return sourceUnavailable(src, path, dgst, err)
			}
		}
	}
	f.mu.Lock()
	f.present[repo+"@"+dgst] = true
	f.mu.Unlock()
	return nil
}

// ensureTag checks repo:tag at the source (HEAD) and brings the upstream's tag in line:
// created on first pull, moved when the source moved it and the new digest is allowed.
func (f *Fetcher) ensureTag(ctx context.Context, src *source, repo, path, tag, host string) (warning string, moved bool, err error) {
	key := repo + ":" + tag
	onprem, err := f.upstreamTag(ctx, repo, tag)
	if err != nil {
		return "", false, upstreamUnavailable(err)
	}
	srcDigest, serr := f.sourceHead(ctx, src, path, tag)
	if serr == nil && srcDigest != onprem {
		if rem, below := src.budget.belowFloor(); below {
			serr = fmt.Errorf("%s reports %d pulls remaining, under the floor of %d (rateLimit.minRemainingPulls)", src.Registry, rem, src.MinRemainingPulls)
		}
	}
	switch {
	case serr != nil && isNotFound(serr) && onprem == "":
		return "", false, unknownAtSource(src, path, tag)
	case serr != nil && isNotFound(serr):
		// Gone at the source: the judged copy stays.
		f.remember(key, src.Freshness, "")
		return "", false, nil
	case serr != nil && onprem == "":
		return "", false, sourceUnavailable(src, path, tag, serr)
	case serr != nil:
		w := fmt.Sprintf("source %s could not be asked whether %s:%s moved (%v); serving the copy judged earlier, %s",
			src.Registry, path, tag, short(serr), onprem)
		f.remember(key, min(src.Freshness, staleRetry), w)
		return w, false, nil
	case srcDigest == onprem:
		f.remember(key, src.Freshness, "")
		return "", false, nil
	}
	release, err := f.lock(ctx, src, path, srcDigest)
	if err != nil {
		if onprem != "" {
			return f.keepWith(key, src, fmt.Sprintf("fetching the new digest of %s:%s from %s failed (%v); serving the copy judged earlier, %s", path, tag, src.Registry, short(err), onprem))
		}
		return "", false, sourceUnavailable(src, path, tag, err)
	}
	defer release()
	// Another replica may have done it while this one waited for the lock.
	if cur, err := f.upstreamTag(ctx, repo, tag); err == nil && cur == srcDigest {
		f.remember(key, src.Freshness, "")
		return "", cur != onprem, nil
	}
	manifest, err := f.fetch(ctx, src, path, repo, srcDigest)
	if err != nil {
		if onprem != "" {
			return f.keepWith(key, src, fmt.Sprintf("fetching the new digest of %s:%s from %s failed (%v); serving the copy judged earlier, %s", path, tag, src.Registry, short(err), onprem))
		}
		return "", false, sourceUnavailable(src, path, tag, err)
	}
	if onprem != "" {
		v := Verdict{Message: "no judge is configured for moved tags"}
		if f.judge != nil {
			v = f.judge.Judge(ctx, repo, srcDigest, host, manifest)
		}
		if !v.Allowed {
			w := fmt.Sprintf("source %s moved %s:%s to %s, which is not served: %s; serving the copy judged earlier, %s",
				src.Registry, path, tag, srcDigest, v.Message, onprem)
			f.record(ctx, audit.TypeMirrorTagKept, repo, tag, srcDigest, onprem, host, v.Message)
			until := src.Freshness
			if v.Pending {
				until = min(until, staleRetry)
			}
			f.remember(key, until, w)
			return w, false, nil
		}
	}
	if err := f.tag(ctx, repo, tag, srcDigest); err != nil {
		if onprem != "" {
			return f.keepWith(key, src, fmt.Sprintf("moving %s:%s to %s failed (%v); serving the copy judged earlier, %s", repo, tag, srcDigest, short(err), onprem))
		}
		return "", false, upstreamUnavailable(err)
	}
	if onprem != "" {
		f.record(ctx, audit.TypeMirrorTagMoved, repo, tag, srcDigest, onprem, host, "")
		if f.onMove != nil {
			f.onMove(ctx, repo, tag)
		}
	}
	f.remember(key, src.Freshness, "")
	return "", onprem != "", nil
}

// staleRetry bounds how long a warning (source not asked, move refused or pending) is
// served before the source is asked again.
const staleRetry = 30 * time.Second

func (f *Fetcher) keepWith(key string, src *source, w string) (string, bool, error) {
	f.remember(key, min(src.Freshness, staleRetry), w)
	return w, false, nil
}

func (f *Fetcher) remember(key string, d time.Duration, warning string) {
	f.mu.Lock()
	f.fresh[key] = memo{until: time.Now().Add(d), warning: warning}
	f.mu.Unlock()
}

// lock takes the fleet-wide lock on one source digest, waiting while another replica
// fetches it.
func (f *Fetcher) lock(ctx context.Context, src *source, path, dgst string) (func(), error) {
	if f.locker == nil {
		return func() {}, nil
	}
	return cache.Hold(ctx, f.locker, "pullthrough:"+src.Registry+"/"+path+"@"+dgst, f.lockTTL, f.lockMax)
}

func (f *Fetcher) record(ctx context.Context, typ, repo, tag, dgst, previous, host, why string) {
	f.log.LogAttrs(ctx, slog.LevelInfo, "pull-through: source moved a tag", slog.String("event", typ),
		slog.String("repository", repo), slog.String("tag", tag), slog.String("digest", dgst), slog.String("previous", previous), slog.String("why", why))
	if f.sink == nil {
		return
	}
	e := audit.Event{Time: time.Now().UTC(), Type: typ, Action: "mirror", Repository: repo, Reference: tag, Digest: dgst,
		PreviousDigest: previous, Message: why}
	if err := f.sink.Record(context.WithoutCancel(ctx), e); err != nil {
		f.log.Warn("pull-through: audit event not written", slog.String("error", err.Error()))
	}
}

func (f *Fetcher) floorError(src *source) error {
	rem, _ := src.budget.belowFloor()
	return fmt.Errorf("%s reports %d pulls remaining, under the floor of %d (rateLimit.minRemainingPulls)", src.Registry, rem, src.MinRemainingPulls)
}

func upstreamUnavailable(err error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: "UNAVAILABLE", RetryAfter: 10 * time.Second,
		Message: fmt.Sprintf("the upstream registry could not be read for pull-through: %v; retry later", short(err))}
}

// short keeps an error's first line.
func short(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
