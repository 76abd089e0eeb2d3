package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
)

// MaxManifestBytes caps the manifests and referrers indexes Manifest and Referrers read.
const MaxManifestBytes = 1 << 20

var (
	// ErrUnsupported means the upstream does not implement the referrers API.
	ErrUnsupported = errors.New("referrers API not supported upstream")
	// ErrTooLarge means the content is over the size cap; it was not read whole.
	ErrTooLarge = errors.New("over the size limit")
)

// ReadError is a read the upstream answered without the content: not found (Err is
// ErrNotFound), no referrers API (ErrUnsupported) or over the cap (ErrTooLarge). Its
// NotFound, Unsupported and TooLarge methods let packages that do not import this one
// (verify) recognise it.
type ReadError struct {
	// Op is what was read: "manifest", "blob" or "referrers".
	Op string
	// Ref is repo:tag or repo@digest.
	Ref string
	// Status is the upstream's HTTP status, 0 when the cap was hit.
	Status int
	// Code is the first OCI error code of the upstream's answer, if any.
	Code string
	// Err is ErrNotFound, ErrUnsupported or ErrTooLarge.
	Err error
}

// Error describes the answer.
func (e *ReadError) Error() string {
	s := fmt.Sprintf("%s %s: %v", e.Op, e.Ref, e.Err)
	switch {
	case e.Status != 0 && e.Code != "":
		s += fmt.Sprintf(" (%d %s)", e.Status, e.Code)
	case e.Status != 0:
		s += fmt.Sprintf(" (%d)", e.Status)
	}
	return s
}

// Unwrap returns the sentinel, for errors.Is.
func (e *ReadError) Unwrap() error { return e.Err }

// NotFound reports whether the manifest, blob or repository does not exist.
func (e *ReadError) NotFound() bool { return e.Err == ErrNotFound }

// Unsupported reports whether the upstream has no referrers API.
func (e *ReadError) Unsupported() bool { return e.Err == ErrUnsupported }

// TooLarge reports whether the content is over the size cap.
func (e *ReadError) TooLarge() bool { return e.Err == ErrTooLarge }

// Manifest reads the manifest repo:ref (a tag or a digest) as the gateway itself, capped
// at MaxManifestBytes and, when ref is a digest, checked against it. It returns the
// bytes and the upstream's Content-Type. Missing is a *ReadError with ErrNotFound.
func (c *Client) Manifest(ctx context.Context, repo, ref string) ([]byte, string, error) {
	sep := ":"
	want, derr := digest.Parse(ref)
	if derr == nil {
		sep = "@"
	}
	name := repo + sep + ref
	resp, err := c.get(ctx, "/v2/"+repo+"/manifests/"+ref, Accept)
	if err != nil {
		return nil, "", fmt.Errorf("reading manifest %s upstream: %w", name, err)
	}
	defer resp.Body.Close()
	if err := answer(resp, "manifest", name); err != nil {
		return nil, "", err
	}
	body, err := readCapped(resp, MaxManifestBytes, "manifest", name)
	if err != nil {
		return nil, "", err
	}
	if derr == nil && want.Algorithm().FromBytes(body) != want {
		return nil, "", fmt.Errorf("manifest %s upstream: content does not match the digest", name)
	}
	return body, resp.Header.Get("Content-Type"), nil
}

// Blob reads the blob repo@dgst as the gateway itself, up to limit bytes (a *ReadError
// with ErrTooLarge beyond), and checks it against dgst.
func (c *Client) Blob(ctx context.Context, repo, dgst string, limit int64) ([]byte, error) {
	want, err := digest.Parse(dgst)
	if err != nil {
		return nil, fmt.Errorf("blob %s@%s: %w", repo, dgst, err)
	}
	name := repo + "@" + dgst
	resp, err := c.get(ctx, "/v2/"+repo+"/blobs/"+dgst, "*/*")
	if err != nil {
		return nil, fmt.Errorf("reading blob %s upstream: %w", name, err)
	}
	defer resp.Body.Close()
	if err := answer(resp, "blob", name); err != nil {
		return nil, err
	}
	body, err := readCapped(resp, limit, "blob", name)
	if err != nil {
		return nil, err
	}
	if want.Algorithm().FromBytes(body) != want {
		return nil, fmt.Errorf("blob %s upstream: content does not match the digest", name)
	}
	return body, nil
}

// Referrers reads the referrers API's OCI index for repo@dgst as the gateway itself.
//
// A registry that implements the API answers 200 with an index, even an empty one. So
// 404 NAME_UNKNOWN or MANIFEST_UNKNOWN is ErrNotFound (no such repository), while any
// other 404 (distribution v3's plain "404 page not found"), 405, 501, 400 UNSUPPORTED, or
// a 200 whose body is not an OCI index, is ErrUnsupported: use the referrers tag scheme.
func (c *Client) Referrers(ctx context.Context, repo, dgst string) ([]byte, error) {
	if _, err := digest.Parse(dgst); err != nil {
		return nil, fmt.Errorf("referrers of %s@%s: %w", repo, dgst, err)
	}
	name := repo + "@" + dgst
	const index = "application/vnd.oci.image.index.v1+json"
	resp, err := c.get(ctx, "/v2/"+repo+"/referrers/"+dgst, index)
	if err != nil {
		return nil, fmt.Errorf("listing referrers of %s upstream: %w", name, err)
	}
	defer resp.Body.Close()
	unsupported := &ReadError{Op: "referrers", Ref: name, Status: resp.StatusCode, Err: ErrUnsupported}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound, http.StatusBadRequest:
		code := errorCode(resp)
		switch {
		case resp.StatusCode == http.StatusNotFound && (code == "NAME_UNKNOWN" || code == "MANIFEST_UNKNOWN"):
			return nil, &ReadError{Op: "referrers", Ref: name, Status: resp.StatusCode, Code: code, Err: ErrNotFound}
		case resp.StatusCode == http.StatusNotFound || code == "UNSUPPORTED":
			unsupported.Code = code
			return nil, unsupported
		}
		return nil, fmt.Errorf("listing referrers of %s upstream: %s %s", name, resp.Status, code)
	case http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return nil, unsupported
	default:
		if err := answer(resp, "referrers", name); err != nil {
			return nil, err
		}
	}
	body, err := readCapped(resp, MaxManifestBytes, "referrers", name)
	if err != nil {
		return nil, err
	}
	var idx struct {
		MediaType string             `json:"mediaType"`
		Manifests *[]json.RawMessage `json:"manifests"`
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if json.Unmarshal(body, &idx) != nil || idx.Manifests == nil ||
		(idx.MediaType != "" && idx.MediaType != index) || (ct != index && ct != "application/json") {
		return nil, unsupported
	}
	return body, nil
}

// get sends a GET for path below the base URL, following redirects (a blob may live
// in object storage); credentials are only ever added for the upstream's own host.
func (c *Client) get(ctx context.Context, path, accept string) (*http.Response, error) {
	u := *c.base
	u.Path += path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", accept)
	return (&http.Client{Transport: c.rt}).Do(req)
}

// answer turns a non-200 answer into an error: 404 is ErrNotFound, 401/403 an
// *AuthError, anything else an upstream failure.
func answer(resp *http.Response, op, name string) error {
	switch resp.StatusCode {
	case http.StatusOK:
		return nil
	case http.StatusNotFound:
		return &ReadError{Op: op, Ref: name, Status: resp.StatusCode, Code: errorCode(resp), Err: ErrNotFound}
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("reading %s %s upstream: %w", op, name,
			&AuthError{Status: resp.StatusCode, WWWAuthenticate: resp.Header.Get("WWW-Authenticate")})
	}
	return fmt.Errorf("reading %s %s upstream: %s %s", op, name, resp.Status, errorCode(resp))
}

// readCapped reads the body, refusing (unread) one whose Content-Length is over limit
// and stopping one byte past limit otherwise.
func readCapped(resp *http.Response, limit int64, op, name string) ([]byte, error) {
	tooLarge := &ReadError{Op: op, Ref: name, Err: ErrTooLarge}
	if resp.ContentLength > limit {
		return nil, tooLarge
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s %s upstream: %w", op, name, err)
	}
	if int64(len(body)) > limit {
		return nil, tooLarge
	}
	return body, nil
}

// errorCode returns the first OCI error code in an error answer's body, or "".
func errorCode(resp *http.Response) string {
	var e struct {
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	if json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&e) != nil || len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].Code
}

// WithServiceAccount returns a client for the gateway's own reads that authenticates as
// user (password pass; both empty for anonymous token auth): HTTP Basic on every request
// to the upstream's host, and, when the upstream answers 401 with a Bearer challenge,
// a token fetched once from the challenge's realm (with the challenge's service and
// scope, as that user) and reused until it expires. Requests that already carry an
// Authorization header (a client's own credentials, as Head sends) are left alone, and
// credentials never go to another host (an object-store redirect) nor, from an https
// upstream, to a plain-http realm. c itself is unchanged.
func (c *Client) WithServiceAccount(user, pass string) *Client {
	next := c.rt
	if next == nil {
		next = http.DefaultTransport
	}
	return &Client{base: c.base, rt: &serviceAccount{
		next: next, host: c.base.Host, https: c.base.Scheme == "https",
		user: user, pass: pass, tokens: map[string]token{},
	}}
}

// Transport is the transport c reads through: with WithServiceAccount, the one that
// authenticates as the service account (tokens included) any request without an
// Authorization header.
func (c *Client) Transport() http.RoundTripper {
	if c.rt == nil {
		return http.DefaultTransport
	}
	return c.rt
}

// serviceAccount is the transport that authenticates the gateway's own reads.
type serviceAccount struct {
	next       http.RoundTripper
	host       string
	https      bool
	user, pass string

	mu     sync.Mutex
	tokens map[string]token // by repository scope
}

// token is a bearer token and when to stop using it.
type token struct {
	value   string
	expires time.Time
}

// RoundTrip authenticates req as the service account.
func (sa *serviceAccount) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != sa.host || req.Header.Get("Authorization") != "" {
		return sa.next.RoundTrip(req)
	}
	scope := scopeOf(req.URL.Path)
	resp, err := sa.next.RoundTrip(sa.authorize(req, sa.cached(scope)))
	if err != nil || resp.StatusCode != http.StatusUnauthorized || (req.Body != nil && req.GetBody == nil) {
		return resp, err
	}
	ch, ok := bearerChallenge(resp.Header.Values("WWW-Authenticate"))
	if !ok {
		return resp, nil
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	tok, err := sa.fetchToken(req.Context(), ch, scope)
	if err != nil {
		return nil, err
	}
	retry := sa.authorize(req, tok)
	if req.GetBody != nil {
		if retry.Body, err = req.GetBody(); err != nil {
			return nil, err
		}
	}
	return sa.next.RoundTrip(retry)
}

// authorize returns a copy of req carrying the bearer token, or Basic credentials.
func (sa *serviceAccount) authorize(req *http.Request, bearer string) *http.Request {
	r := req.Clone(req.Context())
	switch {
	case bearer != "":
		r.Header.Set("Authorization", "Bearer "+bearer)
	case sa.user != "":
		r.SetBasicAuth(sa.user, sa.pass)
	}
	return r
}

// cached returns an unexpired token for scope, or "".
func (sa *serviceAccount) cached(scope string) string {
	sa.mu.Lock()
	defer sa.mu.Unlock()
	t, ok := sa.tokens[scope]
	if !ok || time.Now().After(t.expires) {
		return ""
	}
	return t.value
}

// fetchToken gets a token from the challenge's realm and caches it under scope.
func (sa *serviceAccount) fetchToken(ctx context.Context, ch map[string]string, scope string) (string, error) {
	realm, err := url.Parse(ch["realm"])
	if err != nil || (realm.Scheme != "https" && realm.Scheme != "http") || realm.Host == "" {
		return "", fmt.Errorf("upstream token realm %q is not an http(s) URL", ch["realm"])
	}
	if sa.https && realm.Scheme != "https" {
		return "", fmt.Errorf("refusing to send the service account to plain-http token realm %s", realm.Redacted())
	}
	q := realm.Query()
	if s := ch["service"]; s != "" {
		q.Set("service", s)
	}
	want := ch["scope"]
	if want == "" {
		want = scope
	}
	for _, s := range strings.Fields(want) {
		q.Add("scope", s)
	}
	realm.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, realm.String(), nil)
	if err != nil {
		return "", err
	}
	if sa.user != "" {
		req.SetBasicAuth(sa.user, sa.pass)
	}
	resp, err := (&http.Client{Transport: sa.next}).Do(req)
	if err != nil {
		return "", fmt.Errorf("fetching an upstream token: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return "", fmt.Errorf("upstream token realm %s refused the service account: %w", realm.Host, &AuthError{Status: resp.StatusCode})
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("upstream token realm %s refused the service account: %s", realm.Host, resp.Status)
	}
	var body struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body); err != nil {
		return "", fmt.Errorf("upstream token answer: %w", err)
	}
	tok := body.Token
	if tok == "" {
		tok = body.AccessToken
	}
	if tok == "" {
		return "", errors.New("upstream token answer has no token")
	}
	ttl := time.Duration(body.ExpiresIn) * time.Second
	if ttl <= 0 {
		ttl = 60 * time.Second // the token spec's default
	}
	sa.mu.Lock()
	defer sa.mu.Unlock()
	now := time.Now()
	if len(sa.tokens) > 1024 {
		for k, t := range sa.tokens {
			if now.After(t.expires) {
				delete(sa.tokens, k)
			}
		}
	}
	sa.tokens[scope] = token{value: tok, expires: now.Add(ttl * 9 / 10)}
	return tok, nil
}

// scopeOf returns the pull scope of a /v2/<repo>/(manifests|blobs|referrers|tags)/...
// path, or "" for other paths.
func scopeOf(path string) string {
	i := strings.Index(path, "/v2/")
	if i < 0 {
		return ""
	}
	rest := path[i+len("/v2/"):]
	end := -1
	for _, m := range []string{"/manifests/", "/blobs/", "/referrers/", "/tags/"} {
		end = max(end, strings.LastIndex(rest, m))
	}
	if end <= 0 {
		return ""
	}
	return "repository:" + rest[:end] + ":pull"
}

// bearerChallenge finds a Bearer challenge with a realm among WWW-Authenticate values
// and returns its parameters.
func bearerChallenge(values []string) (map[string]string, bool) {
	for _, v := range values {
		scheme, params := parseChallenge(v)
		if strings.EqualFold(scheme, "bearer") && params["realm"] != "" {
			return params, true
		}
	}
	return nil, false
}

// parseChallenge parses `Scheme k1=v1, k2="quoted \" value"` (RFC 9110 auth-params).
// Parameter names are lowercased; malformed input yields what could be read.
func parseChallenge(h string) (string, map[string]string) {
	h = strings.TrimSpace(h)
	scheme, rest, _ := strings.Cut(h, " ")
	params := map[string]string{}
	for {
		rest = strings.TrimLeft(rest, " \t,")
		if rest == "" {
			return scheme, params
		}
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 {
			return scheme, params
		}
		key := strings.ToLower(strings.TrimSpace(rest[:eq]))
		rest = strings.TrimLeft(rest[eq+1:], " \t")
		var val string
		if strings.HasPrefix(rest, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(rest) && rest[i] != '"'; i++ {
				if rest[i] == '\\' && i+1 < len(rest) {
					i++
				}
				b.WriteByte(rest[i])
			}
			val, rest = b.String(), rest[min(i+1, len(rest)):]
		} else {
			end := strings.IndexAny(rest, ", \t")
			if end < 0 {
				end = len(rest)
			}
			val, rest = rest[:end], rest[end:]
		}
		params[key] = val
	}
}

// OpenBlob streams a blob as the gateway itself, for analysis that must not hold it in
// memory. The caller verifies the digest while reading (the layer analyzer does) and
// closes the body.
func (c *Client) OpenBlob(ctx context.Context, repo, dgst string) (io.ReadCloser, error) {
	if _, err := digest.Parse(dgst); err != nil {
		return nil, fmt.Errorf("blob %s@%s: %w", repo, dgst, err)
	}
	name := repo + "@" + dgst
	resp, err := c.get(ctx, "/v2/"+repo+"/blobs/"+dgst, "*/*")
	if err != nil {
		return nil, fmt.Errorf("reading blob %s upstream: %w", name, err)
	}
	if err := answer(resp, "blob", name); err != nil {
		resp.Body.Close()
		return nil, err
	}
	return resp.Body, nil
}
