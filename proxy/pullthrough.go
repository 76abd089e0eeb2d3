package proxy

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// PullThrough fetches mirrored public images on first pull (package pullthrough).
type PullThrough interface {
	// Map returns the on-prem repository name of a request for name carrying containerd's
	// ns query parameter; ok is false when ns names no mirrored source.
	Map(name, ns string) (mapped string, ok bool)
	// Ensure makes the upstream hold what a pull of repo:ref through the door host should
	// serve (fetching it on first pull, re-checking a tag at its source), waiting at most
	// the pull wait. warning is for the client; an error with an OCIError method is a pull
	// to refuse with that answer.
	Ensure(ctx context.Context, repo, ref, host string) (warning string, moved bool, err error)
	// Source names the registry whose pull-through namespace holds repo, "" for none.
	Source(repo string) string
}

// WithPullThrough sets the pull-through fetcher for mirrored public registries.
func WithPullThrough(pt PullThrough) Option { return func(s *settings) { s.pull = pt } }

// ociAnswer is an error that says how to answer the client.
type ociAnswer interface {
	OCIError() (status int, code, message string, retryAfter time.Duration)
}

// mapNamespace rewrites a read carrying containerd's ns query parameter (?ns=docker.io)
// to the on-prem name of that source, and drops the parameter. Only the repository
// name changes: the environment still comes from the door, never from ns.
func (p *Proxy) mapNamespace(r *http.Request) *http.Request {
	if p.pull == nil || r.URL.RawQuery == "" {
		return r
	}
	q := r.URL.Query()
	ns := q.Get("ns")
	if ns == "" {
		return r
	}
	route, err := ParseRoute(r.URL.Path)
	if err != nil || route.Name == "" {
		return r
	}
	read := r.Method == http.MethodGet || r.Method == http.MethodHead
	switch {
	case read && (route.Kind == KindManifest || route.Kind == KindBlob || route.Kind == KindTags || route.Kind == KindReferrers):
	default:
		return r
	}
	mapped, ok := p.pull.Map(route.Name, ns)
	if !ok || ValidateName(mapped) != nil {
		return r
	}
	rest, found := strings.CutPrefix(r.URL.Path, "/v2/"+route.Name+"/")
	if !found {
		return r
	}
	r = r.Clone(r.Context())
	r.URL.Path = "/v2/" + mapped + "/" + rest
	r.URL.RawPath = ""
	q.Del("ns")
	r.URL.RawQuery = q.Encode()
	r.RequestURI = r.URL.RequestURI()
	return r
}

// refuseWrite answers a push or delete under a pull-through namespace, which only the
// fetcher fills: what is served there must be what the source published. It reports
// whether it answered.
func (p *Proxy) refuseWrite(w http.ResponseWriter, r *http.Request, route Route) bool {
	write := route.Kind == KindUploadStart || route.Kind == KindUpload ||
		route.Kind == KindManifest && (r.Method == http.MethodPut || r.Method == http.MethodDelete)
	if !write {
		return false
	}
	src := p.pull.Source(route.Name)
	if src == "" {
		return false
	}
	writeError(w, r, errorf(http.StatusForbidden, CodeDenied,
		"%s is mirrored from %s on demand (pull-through): only the gateway writes there; push under another name", route.Name, src))
	return true
}

// ensurePulled runs the pull-through fetcher for a manifest read. It reports false when it
// answered the client itself.
func (p *Proxy) ensurePulled(w http.ResponseWriter, r *http.Request, route Route) bool {
	warning, _, err := p.pull.Ensure(r.Context(), route.Name, route.Reference, doorHost(r))
	var a ociAnswer
	switch {
	case err == nil:
		if warning != "" {
			w.Header().Add("Warning", warningHeader(warning))
		}
		return true
	case errors.As(err, &a):
		status, code, msg, retry := a.OCIError()
		e := errorf(status, Code(code), "%s", msg)
		if retry > 0 {
			e.Header = http.Header{"Retry-After": {strconv.Itoa(int(retry.Seconds()))}}
		}
		e.Reason = msg
		writeError(w, r, e)
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		w.WriteHeader(499)
	default:
		writeError(w, r, errorf(http.StatusServiceUnavailable, CodeUnavailable, "pull-through: %v", err))
	}
	return false
}

// TagMoved drops what the hot path remembers of repo's tags: the pull-through fetcher
// moved one of them in the upstream (a public tag moved to a digest the gate allows).
func (p *Proxy) TagMoved(ctx context.Context, repo, _ string) {
	p.forgetCtx(ctx, repo)
}
