package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/portcullis-dev/portcullis/cache"
)

// The OCI 1.1 referrers API, served by the gateway for upstreams that lack it (such as
// distribution v3): referrers are kept in the fallback tag "<alg>-<hex>" as an OCI index,
// exactly as clients without the API would keep them, so cosign, oras and notation find
// each other's artifacts whichever way they look.

const (
	mediaTypeOCIIndex = "application/vnd.oci.image.index.v1+json"
	// nativeRecheck is how long the gateway trusts that the upstream lacks the API.
	nativeRecheck = 10 * time.Minute
)

// referrers holds the gateway's referrers state.
type referrers struct {
	// noNativeUntil is the unix-nano time until which the upstream is taken to lack the API.
	noNativeUntil atomic.Int64
	// nativeSeen is set once the upstream answered a referrers request itself.
	nativeSeen atomic.Bool
	// locks serialise fallback-index updates per repository and subject in this process.
	locks keyedMutex
}

func (rs *referrers) lock(key string) func() { return rs.locks.lock(key) }

// fleetLocker is a cache shared by replicas that also hands out locks (cache.Locker).
type fleetLocker interface {
	Lock(ctx context.Context, key string, ttl time.Duration) (token string, ok bool, err error)
	Unlock(ctx context.Context, key, token string) error
}

// How long a fallback-index update holds the replicas' lock, and waits for it.
const (
	fleetLockTTL  = 30 * time.Second
	fleetLockWait = 10 * time.Second
)

// fleetLock takes key in the cache the replicas share, so that two replicas never
// read-modify-write one fallback index at once, and returns its release. It waits at most
// fleetLockWait; without a locking cache, when the cache fails, or past the wait it goes on
// without the lock (logged): the process lock still serialises this replica.
func (p *Proxy) fleetLock(ctx context.Context, key string) func() {
	l, ok := p.cache.(fleetLocker)
	if !ok {
		return func() {}
	}
	deadline := time.Now().Add(fleetLockWait)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		token, got, err := l.Lock(ctx, key, fleetLockTTL)
		if err != nil || !got && time.Now().After(deadline) {
			p.log.LogAttrs(ctx, slog.LevelWarn, "updating a referrers fallback index without the replicas' lock",
				slog.String("lock", key), slog.Any("error", err))
			return func() {}
		}
		if got {
			return func() { _ = l.Unlock(context.WithoutCancel(ctx), key, token) }
		}
		select {
		case <-ctx.Done():
			return func() {}
		case <-time.After(wait):
		}
	}
}

// descriptor is an OCI content descriptor as it appears in a referrers index.
type descriptor struct {
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

// index is an OCI image index, the shape of both the referrers answer and the fallback tag.
type index struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	Manifests     []descriptor      `json:"manifests"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// manifestHead is what the gateway reads of a manifest to list it as a referrer.
type manifestHead struct {
	MediaType    string `json:"mediaType"`
	ArtifactType string `json:"artifactType"`
	Config       *struct {
		MediaType string `json:"mediaType"`
	} `json:"config"`
	Subject *struct {
		Digest string `json:"digest"`
	} `json:"subject"`
	Annotations map[string]string `json:"annotations"`
}

// subjectOf returns the subject digest a manifest names, or "".
func subjectOf(body []byte) (manifestHead, string) {
	var m manifestHead
	if json.Unmarshal(body, &m) != nil || m.Subject == nil {
		return m, ""
	}
	if _, err := digest.Parse(m.Subject.Digest); err != nil {
		return m, ""
	}
	return m, m.Subject.Digest
}

// referrerDescriptor describes a pushed manifest for its subject's referrers list.
func referrerDescriptor(m manifestHead, body []byte, dgst, contentType string) descriptor {
	mt := m.MediaType
	if mt == "" {
		mt = contentType
	}
	at := m.ArtifactType
	if at == "" && m.Config != nil && mt != mediaTypeOCIIndex {
		at = m.Config.MediaType
	}
	return descriptor{MediaType: mt, ArtifactType: at, Digest: dgst, Size: int64(len(body)), Annotations: m.Annotations}
}

// fallbackTag is the tag the referrers of subject are kept under.
func fallbackTag(subject string) string { return strings.Replace(subject, ":", "-", 1) }

// upstreamRequest makes a request to the upstream on behalf of the client in r (its
// Authorization travels along).
func (p *Proxy) upstreamRequest(r *http.Request, method, path string, body []byte, header http.Header) (*http.Response, error) {
	u := *p.upstream
	u.Path += path
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(r.Context(), method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if a := r.Header.Get("Authorization"); a != "" {
		req.Header.Set("Authorization", a)
	}
	if info, ok := requestFrom(r.Context()); ok {
		req.Header.Set("X-Request-Id", info.id)
	}
	return p.rp.Transport.RoundTrip(req)
}

// readIndex fetches the fallback index of subject; a missing tag is an empty index.
func (p *Proxy) readIndex(r *http.Request, repo, subject string) (index, *http.Response, error) {
	resp, err := p.upstreamRequest(r, http.MethodGet, "/v2/"+repo+"/manifests/"+fallbackTag(subject), nil,
		http.Header{"Accept": {mediaTypeOCIIndex}})
	if err != nil {
		return index{}, nil, err
	}
	defer resp.Body.Close()
	empty := index{SchemaVersion: 2, MediaType: mediaTypeOCIIndex, Manifests: []descriptor{}}
	if resp.StatusCode == http.StatusNotFound {
		return empty, nil, nil
	}
	if resp.StatusCode != http.StatusOK {
		// Keep the answer (a 401 challenge, a 403) readable for relaying after the close.
		errBody, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body = io.NopCloser(bytes.NewReader(errBody))
		return index{}, resp, nil
	}
	body, err := readCapped(resp.Body, p.maxManifest, func() *Error {
		return errorf(http.StatusBadGateway, CodeManifestInvalid, "referrers index for %s is larger than %d bytes", subject, p.maxManifest)
	})
	if err != nil {
		return index{}, nil, err
	}
	var idx index
	if err := json.Unmarshal(body, &idx); err != nil || idx.MediaType != mediaTypeOCIIndex {
		// Something else sits on the fallback tag; do not guess what it lists.
		return index{}, nil, errorf(http.StatusBadGateway, CodeManifestInvalid, "tag %s in %s is not an OCI index of referrers", fallbackTag(subject), repo)
	}
	if idx.Manifests == nil {
		idx.Manifests = []descriptor{}
	}
	return idx, nil, nil
}

// updateFallback adds (or, with remove, removes) d in the fallback index of subject.
func (p *Proxy) updateFallback(r *http.Request, repo, subject string, d descriptor, remove bool) error {
	defer p.refs.lock(repo + "@" + subject)()
	defer p.fleetLock(r.Context(), cache.LockKey("referrers:"+repo+"@"+subject))()
	idx, failed, err := p.readIndex(r, repo, subject)
	if err != nil {
		return err
	}
	if failed != nil {
		return fmt.Errorf("reading referrers index: upstream answered %s", failed.Status)
	}
	kept := idx.Manifests[:0]
	for _, m := range idx.Manifests {
		if m.Digest != d.Digest {
			kept = append(kept, m)
		}
	}
	idx.Manifests = kept
	if !remove {
		idx.Manifests = append(idx.Manifests, d)
	}
	body, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	resp, err := p.upstreamRequest(r, http.MethodPut, "/v2/"+repo+"/manifests/"+fallbackTag(subject), body,
		http.Header{"Content-Type": {mediaTypeOCIIndex}})
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("writing referrers index: upstream answered %s", resp.Status)
	}
	return nil
}

// afterReferrerChange runs when the upstream stored (201) or deleted (202) a manifest with
// a subject. Upstreams with the referrers API answer OCI-Subject themselves; for the others
// the gateway updates the fallback tag and answers OCI-Subject, so the client need not. If
// that fails the client gets no OCI-Subject and keeps the fallback tag itself, as the spec
// has it.
func (p *Proxy) afterReferrerChange(resp *http.Response, st *referrerState) {
	if resp.Header.Get("OCI-Subject") != "" || p.refs.native() {
		return
	}
	d := referrerDescriptor(st.head, st.body, st.digest, st.contentType)
	if err := p.updateFallback(resp.Request, st.repo, st.subject, d, st.remove); err != nil {
		p.log.LogAttrs(resp.Request.Context(), slog.LevelWarn, "could not update the referrers fallback tag",
			slog.String("repository", st.repo), slog.String("subject", st.subject), slog.String("error", err.Error()))
		return
	}
	if !st.remove {
		resp.Header.Set("OCI-Subject", st.subject)
	}
}

// native reports whether the upstream was last seen serving the referrers API itself.
// Until a referrers request shows otherwise, the gateway assumes it does not.
func (rs *referrers) native() bool { return rs.nativeSeen.Load() }

// prepareReferrerChange reads a manifest about to be deleted by digest, so that a referrer
// can be taken out of its subject's fallback index once the upstream deleted it.
func (p *Proxy) prepareReferrerChange(r *http.Request, route Route) *referrerState {
	resp, err := p.upstreamRequest(r, http.MethodGet, "/v2/"+route.Name+"/manifests/"+route.Reference, nil, http.Header{"Accept": {acceptManifests}})
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	body, err := readCapped(resp.Body, p.maxManifest, func() *Error { return &Error{} })
	if err != nil {
		return nil
	}
	head, subject := subjectOf(body)
	if subject == "" {
		return nil
	}
	return &referrerState{repo: route.Name, digest: route.Reference, contentType: resp.Header.Get("Content-Type"),
		subject: subject, body: body, head: head, remove: true}
}

// acceptManifests lists every manifest media type, for the gateway's own reads.
const acceptManifests = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, " +
	"application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json"

// serveReferrers answers GET /v2/<repo>/referrers/<digest>: the upstream's own answer when
// it has the API, else the fallback index, filtered by artifactType.
func (p *Proxy) serveReferrers(w http.ResponseWriter, r *http.Request, route Route) {
	if time.Now().UnixNano() >= p.refs.noNativeUntil.Load() {
		if p.tryNativeReferrers(w, r) {
			return
		}
		p.refs.noNativeUntil.Store(time.Now().Add(nativeRecheck).UnixNano())
	}
	idx, failed, err := p.readIndex(r, route.Name, route.Reference)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			e = upstreamError(p.upstream.Host, err)
		}
		writeError(w, r, e)
		return
	}
	if failed != nil {
		copyResponse(w, failed)
		return
	}
	filters := ""
	if at := r.URL.Query().Get("artifactType"); at != "" {
		kept := []descriptor{}
		for _, m := range idx.Manifests {
			if m.ArtifactType == at {
				kept = append(kept, m)
			}
		}
		idx.Manifests, filters = kept, "artifactType"
	}
	idx.Annotations = nil
	body, _ := json.Marshal(idx)
	h := w.Header()
	h.Set("Content-Type", mediaTypeOCIIndex)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if filters != "" {
		h.Set("OCI-Filters-Applied", filters)
	}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// tryNativeReferrers passes the request to the upstream and reports whether the upstream
// answered it as a registry with the referrers API (an OCI index, or an auth challenge).
func (p *Proxy) tryNativeReferrers(w http.ResponseWriter, r *http.Request) bool {
	resp, err := p.upstreamRequest(r, http.MethodGet, r.URL.Path, nil, http.Header{"Accept": {mediaTypeOCIIndex}})
	if err != nil {
		// A failed exchange says nothing about the API: answer 503 and keep what is known.
		writeError(w, r, upstreamError(p.upstream.Host, err))
		return true
	}
	defer resp.Body.Close()
	native := resp.StatusCode == http.StatusOK && strings.HasPrefix(resp.Header.Get("Content-Type"), mediaTypeOCIIndex)
	if !native && resp.StatusCode != http.StatusUnauthorized && !unknownRepository(resp) {
		p.refs.nativeSeen.Store(false)
		return false
	}
	if native {
		p.refs.nativeSeen.Store(true)
	}
	if native && r.URL.RawQuery != "" {
		// Filters need the query: ask again with it, byte for byte.
		resp.Body.Close()
		u := *p.upstream
		u.Path += r.URL.Path
		u.RawQuery = r.URL.RawQuery
		req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, u.String(), nil)
		if err != nil {
			return false
		}
		req.Header.Set("Accept", mediaTypeOCIIndex)
		if a := r.Header.Get("Authorization"); a != "" {
			req.Header.Set("Authorization", a)
		}
		if resp, err = p.rp.Transport.RoundTrip(req); err != nil {
			return false
		}
		defer resp.Body.Close()
	}
	if resp.Request != nil {
		p.rw.headers(resp.Header, resp.Request.URL)
	}
	copyResponse(w, resp)
	return true
}

// unknownRepository reports whether resp is a 404 NAME_UNKNOWN: how a registry with the
// referrers API answers for a repository it does not have (the only 404 the spec allows
// it), unlike a registry without the API, which does not know the route. The body stays
// readable for relaying.
func unknownRepository(resp *http.Response) bool {
	if resp.StatusCode != http.StatusNotFound {
		return false
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), resp.Body))
	var doc errorBody
	if err != nil || json.Unmarshal(body, &doc) != nil {
		return false
	}
	for _, e := range doc.Errors {
		if e.Code == CodeNameUnknown {
			return true
		}
	}
	return false
}

// copyResponse relays an upstream response as it is.
func copyResponse(w http.ResponseWriter, resp *http.Response) {
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// referrerState carries a manifest with a subject from the request hook (push or delete)
// to the response hook.
type referrerState struct {
	repo, digest, contentType, subject string
	body                               []byte
	head                               manifestHead
	remove                             bool
}

type referrerKey struct{}

func withReferrer(ctx context.Context, st *referrerState) context.Context {
	return context.WithValue(ctx, referrerKey{}, st)
}

func referrerFrom(ctx context.Context) *referrerState {
	st, _ := ctx.Value(referrerKey{}).(*referrerState)
	return st
}
