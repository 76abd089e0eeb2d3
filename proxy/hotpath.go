package proxy

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/policy"
)

// The hot path: a pull of a tag the gateway protects as immutable, whose manifest it has
// already served, is answered from the cache without asking the upstream. Three cached
// facts make that safe: the tag's digest (it cannot move: the gateway refuses tag moves
// and is the only door to the upstream), the manifest bytes (content-addressed, re-checked
// against their digest before serving) and the upstream having let this very credential
// pull from this repository within the last minute (so the cache never widens access).

// Cache is the store the hot path reads and fills.
type Cache interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
}

// WithCache enables the hot path with store.
func WithCache(store Cache) Option { return func(s *settings) { s.cache = store } }

// Hot-path TTLs.
const (
	accessTTL   = time.Minute
	tagTTL      = time.Hour
	manifestTTL = 24 * time.Hour
	// manifestValueVersion is the format version of cached manifests.
	manifestValueVersion = 1
)

// cachedManifest is a manifest as the hot path stores it.
type cachedManifest struct {
	MediaType string `json:"mediaType"`
	Body      []byte `json:"body"`
}

// remember records what a served (GET 200) or stored (PUT 201) manifest teaches the hot
// path. It never fails a request: the cache is an optimisation.
func (p *Proxy) remember(r *http.Request, route Route, dgst, mediaType string, body []byte, pulled bool) {
	if p.cache == nil || dgst == "" || len(body) == 0 {
		return
	}
	ctx := context.WithoutCancel(r.Context())
	if v, err := cache.Encode(cache.KindManifest, manifestValueVersion, cachedManifest{MediaType: mediaType, Body: body}); err == nil {
		_ = p.cache.Set(ctx, cache.ManifestKey(dgst), v, manifestTTL)
	}
	if !route.IsDigest() && p.gate != nil && p.gate.TagsImmutable(route.Name, r.Host) {
		_ = p.cache.Set(ctx, cache.TagKey(route.Name, route.Reference), []byte(dgst), tagTTL)
	}
	if pulled {
		_ = p.cache.Set(ctx, cache.AccessKey(route.Name, r.Header.Get("Authorization")), []byte{1}, accessTTL)
	}
}

// serveCached answers a manifest GET or HEAD from the cache when every fact it needs is
// there, and reports whether it did.
func (p *Proxy) serveCached(w http.ResponseWriter, r *http.Request, route Route) bool {
	if p.cache == nil || p.gate == nil {
		return false
	}
	ctx := r.Context()
	if _, ok, _ := p.cache.Get(ctx, cache.AccessKey(route.Name, r.Header.Get("Authorization"))); !ok {
		return false
	}
	dgst := route.Reference
	if !route.IsDigest() {
		if !p.gate.TagsImmutable(route.Name, r.Host) {
			return false
		}
		d, ok, _ := p.cache.Get(ctx, cache.TagKey(route.Name, route.Reference))
		if !ok {
			return false
		}
		dgst = string(d)
	}
	want, err := digest.Parse(dgst)
	if err != nil {
		return false
	}
	raw, ok, _ := p.cache.Get(ctx, cache.ManifestKey(dgst))
	var m cachedManifest
	if !ok || !cache.Decode(raw, cache.KindManifest, manifestValueVersion, &m) || want.Algorithm().FromBytes(m.Body) != want {
		return false
	}
	if !accepts(r.Header.Values("Accept"), m.MediaType) {
		return false
	}
	h := w.Header()
	if err := p.admit(r, policy.ActionPull, route, dgst, m.Body, h); err != nil {
		writeError(w, err)
		return true
	}
	h.Set("Content-Type", m.MediaType)
	h.Set("Content-Length", strconv.Itoa(len(m.Body)))
	h.Set("Docker-Content-Digest", dgst)
	h.Set("Docker-Distribution-Api-Version", "registry/2.0")
	h.Set("Portcullis-Cache", "hit")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(m.Body)
	}
	p.inst.hotHits.Add(ctx, 1)
	return true
}

// accepts reports whether a client's Accept headers admit mediaType. No Accept header at
// all is left to the upstream, which decides what such clients get.
func accepts(accept []string, mediaType string) bool {
	if len(accept) == 0 || mediaType == "" {
		return false
	}
	for _, a := range accept {
		for _, part := range strings.Split(a, ",") {
			mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
			if mt == mediaType || mt == "*/*" {
				return true
			}
		}
	}
	return false
}
