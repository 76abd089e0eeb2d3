package proxy

import (
	"net/http"
	"net/url"
	"strings"
)

// rewriter turns upstream URLs in Location and Link headers into gateway-relative ones, so
// clients keep talking to the gateway. URLs pointing elsewhere (a storage redirect) stay.
type rewriter struct {
	upstream *url.URL // base URL, path without trailing slash
}

// location rewrites one URL reference taken from a response to req.
func (rw rewriter) location(raw string, req *url.URL) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	abs := req.ResolveReference(u)
	if !strings.EqualFold(abs.Host, rw.upstream.Host) || abs.Scheme != rw.upstream.Scheme {
		return raw
	}
	p := abs.EscapedPath()
	prefix := rw.upstream.EscapedPath()
	if prefix != "" {
		rest, ok := strings.CutPrefix(p, prefix)
		if !ok {
			return raw
		}
		p = rest
	}
	out := p
	if abs.RawQuery != "" {
		out += "?" + abs.RawQuery
	}
	return out
}

// headers rewrites Location, Content-Location and Link in h in place.
func (rw rewriter) headers(h http.Header, req *url.URL) {
	for _, k := range []string{"Location", "Content-Location"} {
		if v := h.Get(k); v != "" {
			h.Set(k, rw.location(v, req))
		}
	}
	links := h.Values("Link")
	for i, v := range links {
		links[i] = rw.link(v, req)
	}
}

// link rewrites every <url> in a Link header value.
func (rw rewriter) link(v string, req *url.URL) string {
	var b strings.Builder
	for {
		start := strings.IndexByte(v, '<')
		if start < 0 {
			break
		}
		end := strings.IndexByte(v[start:], '>')
		if end < 0 {
			break
		}
		end += start
		b.WriteString(v[:start+1])
		b.WriteString(rw.location(v[start+1:end], req))
		b.WriteByte('>')
		v = v[end+1:]
	}
	b.WriteString(v)
	return b.String()
}
