package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/portcullis-dev/portcullis/pullcred"
)

// ScanCredentials checks the short-lived pull credentials the gateway mints for scanner
// adapters (pullcred.Issuer): what user:secret allows, pullcred.ErrInvalid when nothing.
type ScanCredentials interface {
	Check(ctx context.Context, user, secret string) (pullcred.Grant, error)
}

// WithScanCredentials makes the proxy accept the scanner adapters' pull credentials
// (Basic or Bearer, user pullcred.UserPrefix + id; see pullcred.FromAuthorization) that creds checks, for GET and HEAD of the one
// manifest digest and the blobs of the one repository each was minted for, and nothing
// else. Those requests reach the upstream through service, the transport of the
// gateway's own reads (upstream.Client.WithServiceAccount's), and are not decided: the
// scan they serve is how the decision gets its evidence. Without this option such a
// credential is refused, never passed to the upstream.
func WithScanCredentials(creds ScanCredentials, service http.RoundTripper) Option {
	return func(s *settings) { s.scanCreds, s.scanTransport = creds, service }
}

// scanRealm is the Basic realm named in the challenges to a refused scan credential.
const scanRealm = `Basic realm="portcullis scanner adapter pulls"`

// serveScanPull answers r when it carries a scan credential (true), and leaves every
// other request alone (false).
func (p *Proxy) serveScanPull(w http.ResponseWriter, r *http.Request, route Route) bool {
	user, secret, ok := pullcred.FromAuthorization(r.Header.Get("Authorization"))
	if !ok {
		return false
	}
	unauthorized := func(msg string) {
		e := errorf(http.StatusUnauthorized, CodeUnauthorized, "%s", msg)
		e.Header = http.Header{"Www-Authenticate": {scanRealm}}
		writeError(w, r, e)
	}
	if p.scanCreds == nil {
		unauthorized("this gateway mints no scanner adapter credentials; " + user + " is not one of its users")
		return true
	}
	grant, err := p.scanCreds.Check(r.Context(), user, secret)
	switch {
	case errors.Is(err, pullcred.ErrInvalid):
		p.log.LogAttrs(r.Context(), slog.LevelWarn, "refused a scanner adapter credential",
			slog.String("request_id", requestIDFrom(r.Context())), slog.String("user", user),
			slog.String("remote", r.RemoteAddr), slog.String("path", r.URL.Path))
		unauthorized("scanner adapter credential " + user + " is unknown, expired or revoked")
		return true
	case err != nil:
		writeError(w, r, errorf(http.StatusServiceUnavailable, CodeUnavailable, "could not check the scanner adapter credential: %v", err))
		return true
	}
	deny := func(what string) {
		writeError(w, r, errorf(http.StatusForbidden, CodeDenied,
			"scanner adapter credential %s only pulls %s@%s (manifest by digest, and blobs of %s): %s",
			user, grant.Repository, grant.Digest, grant.Repository, what))
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		deny(r.Method + " is not a pull")
		return true
	}
	switch {
	case route.Kind == KindBase:
		// The version check clients make before pulling.
		w.Header().Set("Docker-Distribution-Api-Version", "registry/2.0")
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "2")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = io.WriteString(w, "{}")
		}
		return true
	case route.Kind != KindManifest && route.Kind != KindBlob:
		deny("not a manifest or blob request")
		return true
	case route.Name != grant.Repository:
		deny("repository " + route.Name + " is another one")
		return true
	case route.Kind == KindManifest && !route.IsDigest():
		deny("tag " + route.Reference + " is not a digest")
		return true
	case route.Kind == KindManifest && route.Reference != grant.Digest:
		deny("manifest " + route.Reference + " is another one")
		return true
	}
	p.forwardScanPull(w, r, route)
	return true
}

// forwardScanPull sends an allowed scan pull to the upstream as the gateway's service
// account: the client's Authorization is dropped, the manifest's bytes are checked
// against its digest, blobs stream through and are typed as octet streams.
func (p *Proxy) forwardScanPull(w http.ResponseWriter, r *http.Request, route Route) {
	u := *p.upstream
	u.Path = p.upstream.Path + r.URL.Path
	u.RawPath = ""
	method := r.Method
	if route.Kind == KindManifest {
		method = http.MethodGet // the bytes are checked before anything is answered
	}
	out, err := http.NewRequestWithContext(r.Context(), method, u.String(), nil)
	if err != nil {
		writeError(w, r, err)
		return
	}
	for _, k := range []string{"Accept", "User-Agent"} {
		if v := r.Header.Values(k); len(v) > 0 {
			out.Header[k] = v
		}
	}
	if route.Kind == KindBlob {
		if v := r.Header.Get("Range"); v != "" {
			out.Header.Set("Range", v)
		}
	}
	out.Header.Set("X-Request-Id", requestIDFrom(r.Context()))
	resp, err := p.scanTransport.RoundTrip(out)
	if err != nil {
		writeError(w, r, upstreamError(p.upstream.Host, err))
		return
	}
	defer resp.Body.Close()
	p.rw.headers(resp.Header, out.URL)
	if route.Kind == KindManifest && resp.StatusCode == http.StatusOK {
		body, err := p.verifyManifest(resp, route)
		if err != nil {
			writeError(w, r, err)
			return
		}
		h := w.Header()
		for _, k := range []string{"Content-Type", "Content-Length", "Docker-Content-Digest", "Etag"} {
			if v := resp.Header.Get(k); v != "" {
				h.Set(k, v)
			}
		}
		h.Set("Docker-Distribution-Api-Version", "registry/2.0")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(body)
		}
		return
	}
	h := w.Header()
	for _, k := range []string{"Content-Type", "Content-Length", "Content-Range", "Accept-Ranges", "Docker-Content-Digest",
		"Etag", "Location", "Docker-Distribution-Api-Version", "Retry-After"} {
		if v := resp.Header.Values(k); len(v) > 0 {
			h[k] = v
		}
	}
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		// The upstream refused the gateway's own service account: not the adapter's doing,
		// and its challenge would send the adapter to a realm its credential means nothing to.
		writeError(w, r, errorf(http.StatusBadGateway, CodeUnavailable,
			"the upstream refused the gateway's service account reading %s (HTTP %d): check upstream.serviceAccount", route.Name, resp.StatusCode))
		return
	}
	if route.Kind == KindBlob && resp.StatusCode >= 200 && resp.StatusCode < 300 {
		h.Set("Content-Type", "application/octet-stream")
	}
	if resp.ContentLength >= 0 {
		h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	w.WriteHeader(resp.StatusCode)
	if r.Method == http.MethodHead {
		return
	}
	buf := bufferPool{}.Get()
	defer bufferPool{}.Put(buf)
	_, _ = io.CopyBuffer(writerOnly{w}, resp.Body, buf)
}
