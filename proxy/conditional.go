package proxy

import (
	"net/http"
	"strings"
)

// conditionalHeaders are the request headers that would let the upstream answer a
// manifest request without its bytes (304) or with part of them (206). The gateway strips
// them from manifest requests, decides on the whole manifest, and only then answers
// If-None-Match itself (etagMatches): a denied manifest is never confirmed by a 304.
var conditionalHeaders = []string{"If-None-Match", "If-Match", "If-Modified-Since", "If-Unmodified-Since", "If-Range", "Range"}

// stripConditional removes the conditional and range headers from h.
func stripConditional(h http.Header) {
	for _, k := range conditionalHeaders {
		h.Del(k)
	}
}

// etagMatches reports whether an If-None-Match value names the manifest digest dgst:
// "*", or a list of entity tags one of which (weak or strong) is the digest, quoted as
// distribution writes it or bare.
func etagMatches(ifNoneMatch, dgst string) bool {
	if ifNoneMatch == "" || dgst == "" {
		return false
	}
	for _, tag := range strings.Split(ifNoneMatch, ",") {
		tag = strings.TrimSpace(tag)
		if tag == "*" {
			return true
		}
		tag = strings.TrimPrefix(tag, "W/")
		if strings.Trim(tag, `"`) == dgst {
			return true
		}
	}
	return false
}

// notModified turns an allowed manifest response into a 304 for a client whose copy is
// current: no body, the entity tag kept.
func notModified(resp *http.Response) {
	resp.StatusCode = http.StatusNotModified
	resp.Status = "304 Not Modified"
	resp.Body = http.NoBody
	resp.ContentLength = 0
	resp.Header.Del("Content-Length")
	resp.Header.Del("Content-Type")
	if resp.Header.Get("Etag") == "" {
		resp.Header.Set("Etag", `"`+resp.Header.Get("Docker-Content-Digest")+`"`)
	}
}
