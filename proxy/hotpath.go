package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
// facts make that safe: the tag's digest in that repository (it cannot move: the gateway
// refuses tag moves and is the only door to the upstream; a manifest deleted through the
// gateway starts a new generation of the repository's tag memos), the manifest bytes
// (content-addressed, re-checked against their digest before serving) and the upstream
// having let this very credential pull from this repository within the last minute (so
// the cache never widens access). Pulls by digest are answered the same way once the
// upstream has served that digest from that very repository (a digest memo beside the tag
// memos, under the same generation): a digest alone says nothing about which repositories
// hold it, but the manifest behind it can never change, so no immutability rule is needed.
// In a rollout, containerd resolves the tag with a HEAD and then fetches the index and its
// platform manifest by digest: after the first node, every node's manifests come from the
// cache. With Redis, portcullis serve gives the hot path
// a cache.Near, so a warm hit reads these facts from process memory, with no Redis round
// trip; every write below reaches the other replicas' near caches as an invalidation.

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

// remember records what a served (GET 200) or stored (PUT 201) manifest of a protected
// immutable tag teaches the hot path; anything else the hot path never serves, so it costs
// nothing. It never fails a request: the cache is an optimisation.
func (p *Proxy) remember(r *http.Request, route Route, dgst, mediaType string, body []byte, pulled bool) {
	if !p.hotPathFor(r, route) || dgst == "" || len(body) == 0 || route.IsDigest() && dgst != route.Reference {
		return
	}
	ctx := context.WithoutCancel(r.Context())
	if v, err := cache.Encode(cache.KindManifest, manifestValueVersion, cachedManifest{MediaType: mediaType, Body: body}); err == nil {
		_ = p.cache.Set(ctx, cache.ManifestKey(dgst), v, manifestTTL)
	}
	_ = p.cache.Set(ctx, cache.TagKey(route.Name, route.Reference), []byte(dgst+" "+p.generation(ctx, route.Name)), tagTTL)
	if pulled {
		_ = p.cache.Set(ctx, cache.AccessKey(route.Name, r.Header.Get("Authorization")), []byte{1}, accessTTL)
	}
}

// serveCached answers a manifest GET or HEAD from the cache when every fact it needs is
// there, and reports whether it did.
func (p *Proxy) serveCached(w http.ResponseWriter, r *http.Request, route Route) bool {
	if !p.hotPathFor(r, route) {
		return false
	}
	ctx := r.Context()
	// The access memo, the tag memo and the repository's generation in one round trip.
	facts, err := cache.GetMany(ctx, p.cache, cache.AccessKey(route.Name, r.Header.Get("Authorization")),
		cache.TagKey(route.Name, route.Reference), cache.TagKey(route.Name, generationTag))
	if err != nil || !facts[0].OK || !facts[1].OK {
		return false
	}
	dgst, gen, _ := strings.Cut(string(facts[1].Value), " ")
	if gen != string(facts[2].Value) || route.IsDigest() && dgst != route.Reference {
		return false
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
		writeError(w, r, err)
		return true
	}
	h.Set("Content-Type", m.MediaType)
	h.Set("Content-Length", strconv.Itoa(len(m.Body)))
	h.Set("Docker-Content-Digest", dgst)
	h.Set("Docker-Distribution-Api-Version", "registry/2.0")
	h.Set("Portcullis-Cache", "hit")
	h.Set("Etag", `"`+dgst+`"`)
	if etagMatches(r.Header.Get("If-None-Match"), dgst) {
		h.Del("Content-Length")
		h.Del("Content-Type")
		w.WriteHeader(http.StatusNotModified)
		p.inst.hotHits.Add(ctx, 1)
		return true
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(m.Body)
	}
	p.inst.hotHits.Add(ctx, 1)
	return true
}

// hotPathFor reports whether the hot path may answer (and so learns from) a manifest
// request for route: a pull by digest always (the bytes behind a digest never change), a
// pull by tag only where the policy makes the repository's tags immutable. A digest's
// memo sits among the tag memos under its own reference ("sha256:…" cannot be a tag).
func (p *Proxy) hotPathFor(r *http.Request, route Route) bool {
	return p.cache != nil && p.gate != nil && (route.IsDigest() || p.gate.TagsImmutable(route.Name, doorHost(r)))
}

// generationTag names, among a repository's tag memos, the one holding the repository's
// generation: '@' cannot occur in a tag.
const generationTag = "@generation"

// generation is the current generation of repo's tag memos ("" before any delete).
func (p *Proxy) generation(ctx context.Context, repo string) string {
	g, _, _ := p.cache.Get(ctx, cache.TagKey(repo, generationTag))
	return string(g)
}

// forget starts a new generation of repo's tag memos after a manifest was deleted through
// the gateway, so no tag of repo is served from the cache until it is pulled again.
func (p *Proxy) forget(r *http.Request, repo string) { p.forgetCtx(r.Context(), repo) }

// forgetCtx is forget for a context.
func (p *Proxy) forgetCtx(ctx context.Context, repo string) {
	if p.cache == nil {
		return
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	_ = p.cache.Set(context.WithoutCancel(ctx), cache.TagKey(repo, generationTag), []byte(hex.EncodeToString(b[:])), tagTTL)
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
