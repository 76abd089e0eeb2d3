package proxy

import (
	"context"
	"net/http"
	"strings"
)

// Door is the listener a request arrived on, as the operator configured it. The host that
// the policy's environments match (`hosts:`) is the door's, never what the client sends,
// unless the door trusts a front proxy to say it: a client that names another door's host
// name in its Host header is still judged by the rules of the door it came through.
type Door struct {
	// Name identifies the door (the listener's name in the configuration).
	Name string
	// Host is the host name environments' `hosts:` are matched against for every request
	// on this door. Empty: no host, so only environments without `hosts:` apply.
	Host string
	// TrustForwardedHost takes the host from X-Forwarded-Host (the last value, the one the
	// nearest proxy added), else from the Host header. Only for a door that nothing but a
	// trusted front proxy can reach.
	TrustForwardedHost bool
}

type doorKey struct{}

// doorInfo is what a request carries about its door: its name and the host it applies.
type doorInfo struct {
	name, host string
}

// Handler returns next with every request marked as having arrived through d. A request
// that reaches the proxy without passing a door has no host.
func (d Door) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := doorInfo{name: d.Name, host: d.host(r)}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), doorKey{}, info)))
	})
}

// host is the host name d applies to r.
func (d Door) host(r *http.Request) string {
	if !d.TrustForwardedHost {
		return d.Host
	}
	if vs := r.Header.Values("X-Forwarded-Host"); len(vs) > 0 {
		last := vs[len(vs)-1]
		if i := strings.LastIndexByte(last, ','); i >= 0 {
			last = last[i+1:]
		}
		if h := strings.TrimSpace(last); h != "" {
			return h
		}
	}
	return r.Host
}

// doorHost returns the host name the policy's `hosts:` are matched against for r (or for
// the upstream request made on its behalf): its door's, "" when it came through no door.
func doorHost(r *http.Request) string {
	info, _ := r.Context().Value(doorKey{}).(doorInfo)
	return info.host
}

// DoorName returns the name of the door a request with ctx arrived on, "" when none.
func DoorName(ctx context.Context) string {
	info, _ := ctx.Value(doorKey{}).(doorInfo)
	return info.name
}
