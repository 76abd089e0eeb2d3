package proxy

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/portcullis-dev/portcullis/gate"
)

// UploadTee sees the bytes of blob uploads as they stream to the upstream, so that layers
// are analysed while they arrive rather than read back when the manifest is pushed. It must
// never slow an upload for long nor fail one: what it cannot follow it drops, and the
// layer is read back later.
type UploadTee interface {
	// Opened says the upstream opened upload session id in repo for a client that used host.
	Opened(repo, host, id string)
	// Chunk returns where the body of one PATCH or PUT of session id goes; offset is where
	// the client says the body starts (-1 when it does not say). Nil means the session is
	// not followed.
	Chunk(id string, offset int64) gate.TeeChunk
	// Monolithic returns where the body of a single-request upload (POST with a digest)
	// to repo goes; nil when it is not followed.
	Monolithic(repo, host string) gate.TeeChunk
}

// WithUploadTee lets t see blob uploads as they stream (see UploadTee).
func WithUploadTee(t UploadTee) Option { return func(s *settings) { s.tee = t } }

// teeKey carries a request's gate.TeeChunk to the response hooks.
type teeKey struct{}

// teeUpload hands the body of an upload request to the tee, returning the request to
// forward instead of r.
func (p *Proxy) teeUpload(r *http.Request, route Route) *http.Request {
	var chunk gate.TeeChunk
	switch {
	case route.Kind == KindUpload && (r.Method == http.MethodPatch || r.Method == http.MethodPut):
		chunk = p.tee.Chunk(route.UploadID, rangeStart(r.Header.Get("Content-Range")))
	case route.Kind == KindUploadStart && r.Method == http.MethodPost && r.URL.Query().Get("digest") != "" && r.ContentLength != 0:
		chunk = p.tee.Monolithic(route.Name, doorHost(r))
	}
	if chunk == nil {
		return r
	}
	r = r.WithContext(context.WithValue(r.Context(), teeKey{}, chunk))
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &teeBody{ReadCloser: r.Body, chunk: chunk}
	}
	return r
}

// teeEnd tells the tee how an upload request ended, and which sessions the upstream opened.
func (p *Proxy) teeEnd(resp *http.Response, route Route, host string) {
	if chunk, ok := resp.Request.Context().Value(teeKey{}).(gate.TeeChunk); ok {
		digest := ""
		if resp.StatusCode == http.StatusCreated {
			digest = resp.Request.URL.Query().Get("digest")
		}
		chunk.End(resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusCreated, digest)
	}
	if route.Kind == KindUploadStart && resp.Request.Method == http.MethodPost && resp.StatusCode == http.StatusAccepted {
		if id := uploadIDOf(resp.Header.Get("Location")); id != "" {
			p.tee.Opened(route.Name, host, id)
		}
	}
}

// teeFailed tells the tee that an upload request did not reach the upstream or got no answer.
func teeFailed(r *http.Request) {
	if chunk, ok := r.Context().Value(teeKey{}).(gate.TeeChunk); ok {
		chunk.End(false, "")
	}
}

// teeBody copies what the upstream reads of a request body to a gate.TeeChunk.
type teeBody struct {
	io.ReadCloser
	chunk gate.TeeChunk
}

func (b *teeBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.chunk.Write(p[:n])
	}
	return n, err
}

// rangeStart reads the first offset of a Content-Range header ("0-1023"; "bytes 0-1023/*"
// is tolerated), -1 when there is none or it does not parse.
func rangeStart(h string) int64 {
	h = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(h), "bytes"))
	start, _, ok := strings.Cut(h, "-")
	if !ok {
		return -1
	}
	n, err := strconv.ParseInt(strings.TrimSpace(start), 10, 64)
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// uploadIDOf takes the upload session id from an upload Location ("/v2/<name>/blobs/uploads/<id>?…").
func uploadIDOf(location string) string {
	u, err := url.Parse(location)
	if err != nil {
		return ""
	}
	dir, id := path.Split(u.Path)
	if !strings.HasSuffix(dir, "/blobs/uploads/") {
		return ""
	}
	return id
}
