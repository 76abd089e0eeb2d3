package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// ErrNotFound means the upstream has no such manifest.
var ErrNotFound = errors.New("not found upstream")

// Accept lists the manifest media types the gateway asks for.
var Accept = strings.Join([]string{
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
	"application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.oci.artifact.manifest.v1+json",
}, ", ")

// Client reads from the upstream registry.
type Client struct {
	base *url.URL
	rt   http.RoundTripper
}

// New returns a client for the registry at base, using rt for transport.
func New(base string, rt http.RoundTripper) (*Client, error) {
	u, err := url.Parse(strings.TrimSuffix(base, "/"))
	if err != nil {
		return nil, fmt.Errorf("upstream URL: %w", err)
	}
	return &Client{base: u, rt: rt}, nil
}

// Descriptor is what a HEAD of a manifest tells.
type Descriptor struct {
	Digest    string
	MediaType string
	Size      int64
}

// Head resolves repo:ref to a descriptor, sending authorization (the client's own
// Authorization header value, possibly empty) so the upstream judges access. A missing
// manifest is ErrNotFound.
func (c *Client) Head(ctx context.Context, repo, ref, authorization string) (Descriptor, error) {
	u := *c.base
	u.Path += "/v2/" + repo + "/manifests/" + ref
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u.String(), nil)
	if err != nil {
		return Descriptor{}, err
	}
	req.Header.Set("Accept", Accept)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := c.rt.RoundTrip(req)
	if err != nil {
		return Descriptor{}, fmt.Errorf("resolving %s:%s upstream: %w", repo, ref, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return Descriptor{}, ErrNotFound
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return Descriptor{}, &AuthError{Status: resp.StatusCode, WWWAuthenticate: resp.Header.Get("WWW-Authenticate")}
	case resp.StatusCode != http.StatusOK:
		return Descriptor{}, fmt.Errorf("resolving %s:%s upstream: %s", repo, ref, resp.Status)
	}
	d := Descriptor{Digest: resp.Header.Get("Docker-Content-Digest"), MediaType: resp.Header.Get("Content-Type"), Size: resp.ContentLength}
	if d.Digest == "" {
		return Descriptor{}, fmt.Errorf("resolving %s:%s upstream: no Docker-Content-Digest in the answer", repo, ref)
	}
	return d, nil
}

// TagDigest returns the digest repo:tag points at, or "" when the tag does not exist.
func (c *Client) TagDigest(ctx context.Context, repo, tag, authorization string) (string, error) {
	d, err := c.Head(ctx, repo, tag, authorization)
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	return d.Digest, err
}

// AuthError is the upstream refusing the credentials a read was made with. It carries the
// upstream's challenge so the client can be sent through the upstream's own auth flow.
type AuthError struct {
	Status          int
	WWWAuthenticate string
}

// Error describes the refusal.
func (e *AuthError) Error() string {
	return fmt.Sprintf("upstream refused the credentials (%d %s)", e.Status, http.StatusText(e.Status))
}

// Challenge returns the status and WWW-Authenticate header to relay to the client.
func (e *AuthError) Challenge() (int, string) { return e.Status, e.WWWAuthenticate }
