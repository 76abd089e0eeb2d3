package proxy

import (
	"bytes"

	"io"
	"net/http"
	"strconv"

	"github.com/opencontainers/go-digest"

	// Register the digest algorithms go-digest can verify.
	_ "crypto/sha256"
	_ "crypto/sha512"
)

// readCapped reads at most max bytes from r, failing with tooBig if there are more.
func readCapped(r io.Reader, max int64, tooBig func() *Error) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, tooBig()
	}
	return data, nil
}

// bufferManifest reads a pushed manifest (size-capped) so its digest can be checked and
// the exact bytes forwarded.
func (p *Proxy) bufferManifest(r *http.Request, route Route) ([]byte, string, error) {
	tooBig := func() *Error {
		return errorf(http.StatusRequestEntityTooLarge, CodeSizeInvalid,
			"manifest is larger than this gateway's limit of %d bytes", p.maxManifest)
	}
	if r.ContentLength > p.maxManifest {
		return nil, "", tooBig()
	}
	body, err := readCapped(r.Body, p.maxManifest, tooBig)
	r.Body.Close()
	if err != nil {
		return nil, "", err
	}
	got := digest.SHA256.FromBytes(body)
	if route.IsDigest() {
		want := digest.Digest(route.Reference)
		if got = want.Algorithm().FromBytes(body); got != want {
			return nil, "", errorf(http.StatusBadRequest, CodeDigestInvalid,
				"manifest body has digest %s, not the %s named in the URL", got, want)
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	r.ContentLength = int64(len(body))
	r.TransferEncoding = nil
	r.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return body, got.String(), nil
}

// verifyManifest reads an upstream manifest (size-capped) and serves it only if its
// digest matches both the digest asked for and the upstream's Docker-Content-Digest.
func (p *Proxy) verifyManifest(resp *http.Response, route Route) ([]byte, error) {
	tooBig := func() *Error {
		return errorf(http.StatusBadGateway, CodeManifestInvalid,
			"upstream manifest for %s:%s is larger than this gateway's limit of %d bytes", route.Name, route.Reference, p.maxManifest)
	}
	if resp.ContentLength > p.maxManifest {
		return nil, tooBig()
	}
	body, err := readCapped(resp.Body, p.maxManifest, tooBig)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	got, err := checkManifestDigest(body, route, resp.Header.Get("Docker-Content-Digest"))
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	resp.Header.Set("Docker-Content-Digest", got.String())
	return body, nil
}

// checkManifestDigest computes the digest of body and compares it with the reference
// (when it is a digest) and the upstream's header (when present). It returns the digest
// to advertise: the reference's algorithm, else the header's, else sha256.
func checkManifestDigest(body []byte, route Route, header string) (digest.Digest, error) {
	alg := digest.SHA256
	if route.IsDigest() {
		alg = digest.Digest(route.Reference).Algorithm()
	}
	if header != "" {
		hd, err := digest.Parse(header)
		if err != nil {
			return "", errorf(http.StatusBadGateway, CodeDigestInvalid, "upstream sent an invalid Docker-Content-Digest %q", header)
		}
		if got := hd.Algorithm().FromBytes(body); got != hd {
			return "", mismatch(route, "the upstream's Docker-Content-Digest "+header, got)
		}
		if !route.IsDigest() {
			alg = hd.Algorithm()
		}
	}
	got := alg.FromBytes(body)
	if route.IsDigest() && got.String() != route.Reference {
		return "", mismatch(route, "the digest requested", got)
	}
	return got, nil
}

// checkHeadDigest rejects a HEAD answer whose advertised digest is not the one asked for.
func checkHeadDigest(resp *http.Response, route Route) error {
	h := resp.Header.Get("Docker-Content-Digest")
	if route.IsDigest() && h != "" && h != route.Reference {
		return errorf(http.StatusBadGateway, CodeDigestInvalid,
			"upstream answered %s for %s@%s: refusing to vouch for a different manifest", h, route.Name, route.Reference)
	}
	return nil
}

func mismatch(route Route, what string, got digest.Digest) *Error {
	return errorf(http.StatusBadGateway, CodeDigestInvalid,
		"upstream manifest for %s:%s has digest %s, which does not match %s; not served", route.Name, route.Reference, got, what)
}
