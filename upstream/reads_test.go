package upstream_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/upstream"
)

// pushed is an image pushed for a test.
type pushed struct {
	img    v1.Image
	digest string
	raw    []byte
	layer  v1.Hash
	size   int64
}

// push writes a random image to base's repo:tag, with opts (credentials).
func push(t *testing.T, base, repoTag string, opts ...remote.Option) pushed {
	t.Helper()
	img, err := random.Image(2048, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(strings.TrimPrefix(base, "http://")+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, opts...); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	raw, _ := img.RawManifest()
	ls, _ := img.Layers()
	ld, _ := ls[0].Digest()
	sz, _ := ls[0].Size()
	return pushed{img: img, digest: d.String(), raw: raw, layer: ld, size: sz}
}

// counting counts the response body bytes read through it.
type counting struct {
	next http.RoundTripper
	n    atomic.Int64
}

func (c *counting) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err == nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &c.n}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func client(t *testing.T, base string, rt http.RoundTripper) *upstream.Client {
	t.Helper()
	c, err := upstream.New(base, rt)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wantKind checks err is the *ReadError of sentinel, recognisable both ways.
func wantKind(t *testing.T, err, sentinel error) {
	t.Helper()
	var re *upstream.ReadError
	if !errors.Is(err, sentinel) || !errors.As(err, &re) {
		t.Fatalf("error %v, want a *ReadError matching %v", err, sentinel)
	}
	if re.NotFound() != (sentinel == upstream.ErrNotFound) || re.Unsupported() != (sentinel == upstream.ErrUnsupported) || re.TooLarge() != (sentinel == upstream.ErrTooLarge) {
		t.Errorf("behaviour methods of %v disagree with %v", err, sentinel)
	}
}

func TestManifestAndBlobReads(t *testing.T) {
	t.Parallel()
	base := regtest.Registry(t)
	img := push(t, base, "team/app:v1")
	c := client(t, base, http.DefaultTransport)
	ctx := context.Background()

	for _, ref := range []string{"v1", img.digest} {
		body, mt, err := c.Manifest(ctx, "team/app", ref)
		if err != nil || !bytes.Equal(body, img.raw) || mt != string(types.DockerManifestSchema2) {
			t.Errorf("Manifest(%s) = %d bytes, %q, %v", ref, len(body), mt, err)
		}
	}
	_, _, err := c.Manifest(ctx, "team/app", "v2")
	wantKind(t, err, upstream.ErrNotFound)
	_, _, err = c.Manifest(ctx, "team/nope", "v1")
	wantKind(t, err, upstream.ErrNotFound)

	blob, err := c.Blob(ctx, "team/app", img.layer.String(), 1<<20)
	if err != nil || int64(len(blob)) != img.size {
		t.Errorf("Blob = %d bytes, %v; want %d", len(blob), err, img.size)
	}
	_, err = c.Blob(ctx, "team/app", img.layer.String(), img.size-1)
	wantKind(t, err, upstream.ErrTooLarge)
	_, err = c.Blob(ctx, "team/app", "sha256:"+strings.Repeat("0", 64), 1<<20)
	wantKind(t, err, upstream.ErrNotFound)
	if _, err := c.Blob(ctx, "team/app", "sha256:zz", 1<<20); err == nil {
		t.Error("Blob of an invalid digest: no error")
	}
}

func TestManifestOverTheCapIsNotRead(t *testing.T) {
	t.Parallel()
	base := regtest.Registry(t)
	img := push(t, base, "team/app:v1")
	big := mutate.Annotations(img.img, map[string]string{"padding": strings.Repeat("x", upstream.MaxManifestBytes)}).(v1.Image)
	ref, _ := name.ParseReference(strings.TrimPrefix(base, "http://")+"/team/app:big", name.Insecure)
	if err := remote.Write(ref, big); err != nil {
		t.Fatal(err)
	}
	rt := &counting{next: http.DefaultTransport}
	_, _, err := client(t, base, rt).Manifest(context.Background(), "team/app", "big")
	wantKind(t, err, upstream.ErrTooLarge)
	if n := rt.n.Load(); n > 4096 {
		t.Errorf("read %d bytes of a manifest over the cap", n)
	}
}

// misbehaving serves what a broken or hostile upstream might: bytes that do not match
// the digest asked for, bodies with no Content-Length, odd referrers answers.
func misbehaving(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case strings.HasPrefix(p, "/v2/wrong/"):
			w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
			_, _ = w.Write([]byte(`{"schemaVersion":2}`))
		case strings.HasPrefix(p, "/v2/chunked/"):
			f := w.(http.Flusher)
			for range 1100 {
				_, _ = w.Write(bytes.Repeat([]byte("x"), 1024))
				f.Flush()
			}
		case p == "/v2/r405/referrers/"+zero:
			w.WriteHeader(http.StatusMethodNotAllowed)
		case p == "/v2/html/referrers/"+zero:
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<html>welcome</html>"))
		case p == "/v2/unknown/referrers/"+zero:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known"}]}`))
		default:
			http.Error(w, `{"errors":[{"code":"UNAVAILABLE"}]}`, http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

var zero = "sha256:" + strings.Repeat("0", 64)

func TestMisbehavingUpstream(t *testing.T) {
	t.Parallel()
	srv := misbehaving(t)
	c := client(t, srv.URL, http.DefaultTransport)
	ctx := context.Background()
	var re *upstream.ReadError

	if _, _, err := c.Manifest(ctx, "wrong", zero); err == nil || errors.As(err, &re) {
		t.Errorf("manifest not matching its digest: %v, want a plain error", err)
	}
	if _, err := c.Blob(ctx, "wrong", zero, 1<<20); err == nil || errors.As(err, &re) {
		t.Errorf("blob not matching its digest: %v, want a plain error", err)
	}
	rt := &counting{next: http.DefaultTransport}
	_, _, err := client(t, srv.URL, rt).Manifest(ctx, "chunked", "v1")
	wantKind(t, err, upstream.ErrTooLarge)
	if n := rt.n.Load(); n > upstream.MaxManifestBytes+64<<10 {
		t.Errorf("read %d bytes of an endless manifest", n)
	}
	for _, repo := range []string{"r405", "html"} {
		_, err := c.Referrers(ctx, repo, zero)
		wantKind(t, err, upstream.ErrUnsupported)
	}
	_, err = c.Referrers(ctx, "unknown", zero)
	wantKind(t, err, upstream.ErrNotFound)
	if _, err := c.Referrers(ctx, "down", zero); err == nil || errors.As(err, &re) {
		t.Errorf("503: %v, want a plain error", err)
	}
	if _, _, err := c.Manifest(ctx, "down", "v1"); err == nil || errors.As(err, &re) {
		t.Errorf("503: %v, want a plain error", err)
	}
}

func TestReferrers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	dist := regtest.Registry(t)
	img := push(t, dist, "team/app:v1")
	_, err := client(t, dist, http.DefaultTransport).Referrers(ctx, "team/app", img.digest)
	wantKind(t, err, upstream.ErrUnsupported) // distribution v3: "404 page not found"

	srv := httptest.NewServer(registry.New(registry.WithReferrersSupport(true), registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	img = push(t, srv.URL, "team/app:v1")
	art := mutate.Subject(mustAppend(t, static.NewLayer([]byte("{}"), "application/vnd.dev.sigstore.bundle.v0.3+json")),
		v1.Descriptor{MediaType: types.DockerManifestSchema2, Digest: mustHash(t, img.digest), Size: int64(len(img.raw))}).(v1.Image)
	artDigest, _ := art.Digest()
	ref, _ := name.ParseReference(strings.TrimPrefix(srv.URL, "http://")+"/team/app@"+artDigest.String(), name.Insecure)
	if err := remote.Write(ref, art); err != nil {
		t.Fatal(err)
	}
	c := client(t, srv.URL, http.DefaultTransport)
	index, err := c.Referrers(ctx, "team/app", img.digest)
	if err != nil {
		t.Fatal(err)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(index, &idx); err != nil || len(idx.Manifests) != 1 || idx.Manifests[0].Digest != artDigest {
		t.Errorf("referrers index %s (%v), want %s listed", index, err, artDigest)
	}
	_, err = c.Referrers(ctx, "team/nope", img.digest)
	wantKind(t, err, upstream.ErrNotFound)
}

func mustAppend(t *testing.T, l v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(mutate.MediaType(mutate.ConfigMediaType(empty.Image, "application/vnd.oci.empty.v1+json"), types.OCIManifestSchema1), l)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func mustHash(t *testing.T, s string) v1.Hash {
	t.Helper()
	h, err := v1.NewHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestServiceAccountBasicAuth(t *testing.T) {
	t.Parallel()
	base := regtest.Registry(t, regtest.Htpasswd(t, "svc", "s3cret"))
	img := push(t, base, "team/app:v1", remote.WithAuth(&authn.Basic{Username: "svc", Password: "s3cret"}))
	ctx := context.Background()
	anon := client(t, base, http.DefaultTransport)
	sa := anon.WithServiceAccount("svc", "s3cret")

	var ae *upstream.AuthError
	if _, _, err := anon.Manifest(ctx, "team/app", "v1"); !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Errorf("anonymous read: %v, want an AuthError 401", err)
	}
	if body, _, err := sa.Manifest(ctx, "team/app", img.digest); err != nil || !bytes.Equal(body, img.raw) {
		t.Errorf("service account read: %v", err)
	}
	if _, err := sa.Blob(ctx, "team/app", img.layer.String(), 1<<20); err != nil {
		t.Errorf("service account blob: %v", err)
	}
	if _, err := sa.Referrers(ctx, "team/app", img.digest); !errors.Is(err, upstream.ErrUnsupported) {
		t.Errorf("service account referrers: %v, want ErrUnsupported", err)
	}
	if _, _, err := anon.WithServiceAccount("svc", "wrong").Manifest(ctx, "team/app", "v1"); !errors.As(err, &ae) {
		t.Errorf("wrong password: %v, want an AuthError", err)
	}
	if _, _, err := anon.Manifest(ctx, "team/app", "v1"); !errors.As(err, &ae) {
		t.Errorf("WithServiceAccount changed the original client: %v", err)
	}
	// A client's own Authorization is passed as is, never replaced by the account.
	if _, err := sa.Head(ctx, "team/app", "v1", "Basic bm9ib2R5Om5vcGU="); !errors.As(err, &ae) {
		t.Errorf("Head with the client's own wrong credentials: %v, want an AuthError", err)
	}
}

func TestServiceAccountTokenAuth(t *testing.T) {
	t.Parallel()
	opt, ts := regtest.TokenAuth(t, "svc", "s3cret")
	base := regtest.Registry(t, opt)
	img := push(t, base, "team/app:v1", remote.WithAuth(&authn.Basic{Username: "svc", Password: "s3cret"}))
	ctx := context.Background()
	sa := client(t, base, http.DefaultTransport).WithServiceAccount("svc", "s3cret")

	issued := ts.Issued()
	for range 3 {
		if body, _, err := sa.Manifest(ctx, "team/app", "v1"); err != nil || !bytes.Equal(body, img.raw) {
			t.Fatalf("Manifest: %v", err)
		}
		if _, err := sa.Blob(ctx, "team/app", img.layer.String(), 1<<20); err != nil {
			t.Fatalf("Blob: %v", err)
		}
	}
	if n := ts.Issued() - issued; n != 1 {
		t.Errorf("%d tokens fetched for six reads of one repository, want 1", n)
	}
	scopes := ts.Scopes()
	if last := scopes[len(scopes)-1]; last != "repository:team/app:pull" {
		t.Errorf("last scope %q, want a pull scope for the repository", last)
	}
	if _, _, err := sa.Manifest(ctx, "team/other", "v1"); !errors.Is(err, upstream.ErrNotFound) {
		t.Errorf("another repository: %v, want ErrNotFound with its own token", err)
	}

	refused := ts.Refused()
	_, _, err := client(t, base, http.DefaultTransport).WithServiceAccount("svc", "wrong").Manifest(ctx, "team/app", "v1")
	if err == nil || !strings.Contains(err.Error(), "refused the service account") || ts.Refused() != refused+1 {
		t.Errorf("wrong password: %v (refused %d)", err, ts.Refused()-refused)
	}
	tok, err := ts.Token("repository:team/app:pull")
	if err != nil {
		t.Fatal(err)
	}
	if d, err := sa.Head(ctx, "team/app", "v1", "Bearer "+tok); err != nil || d.Digest != img.digest {
		t.Errorf("Head with the client's own token: %+v, %v", d, err)
	}
}

// TestCredentialsStayOnTheUpstreamHost follows a blob redirect to object storage (a
// second server): the storage never sees the service account.
func TestCredentialsStayOnTheUpstreamHost(t *testing.T) {
	t.Parallel()
	data := []byte("layer bytes in object storage")
	dgst := fmt.Sprintf("sha256:%x", sha256.Sum256(data))
	var storageAuth atomic.Value
	storageAuth.Store("")
	storage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		storageAuth.Store(r.Header.Get("Authorization"))
		_, _ = w.Write(data)
	}))
	t.Cleanup(storage.Close)
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "svc" || p != "s3cret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		http.Redirect(w, r, storage.URL+"/bucket/blob?sig=x", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(reg.Close)
	got, err := client(t, reg.URL, http.DefaultTransport).WithServiceAccount("svc", "s3cret").Blob(context.Background(), "team/app", dgst, 1<<20)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Blob through a redirect: %q, %v", got, err)
	}
	if a := storageAuth.Load().(string); a != "" {
		t.Errorf("object storage received Authorization %q", a)
	}
}

func TestHTTPSUpstreamNeverSendsCredentialsToAPlainHTTPRealm(t *testing.T) {
	t.Parallel()
	var realmHits atomic.Int64
	realm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { realmHits.Add(1) }))
	t.Cleanup(realm.Close)
	reg := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+realm.URL+`/token",service="reg"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(reg.Close)
	_, _, err := client(t, reg.URL, reg.Client().Transport).WithServiceAccount("svc", "s3cret").Manifest(context.Background(), "team/app", "v1")
	if err == nil || !strings.Contains(err.Error(), "plain-http") || realmHits.Load() != 0 {
		t.Errorf("err %v, realm hits %d; want a refusal and no request", err, realmHits.Load())
	}
}

// FuzzChallenge feeds arbitrary WWW-Authenticate headers to the service account's
// challenge handling: no panic, and a token request only ever goes to the realm named.
func FuzzChallenge(f *testing.F) {
	for _, s := range []string{
		`Bearer realm="https://auth.example/token",service="registry.example",scope="repository:team/app:pull"`,
		`Bearer realm=https://auth.example/token, service=reg`,
		`bearer REALM="https://auth.example/t\"oken",error="insufficient_scope"`,
		`Basic realm="registry"`,
		`Bearer realm="`, `Bearer ,,,=,=`, `Bearer realm="http://[::1`, "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			h := http.Header{}
			h.Set("WWW-Authenticate", header)
			if r.URL.Host == "registry.example" {
				return &http.Response{StatusCode: http.StatusUnauthorized, Header: h, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
			}
			return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(`{"token":"t"}`)), Request: r}, nil
		})
		c, err := upstream.New("https://registry.example", rt)
		if err != nil {
			t.Fatal(err)
		}
		_, _, _ = c.WithServiceAccount("svc", "pw").Manifest(context.Background(), "team/app", "v1")
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
