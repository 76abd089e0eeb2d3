package verify_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/upstream"
	"github.com/portcullis-dev/portcullis/verify"
)

// reg is a running registry with a verifier reading it through upstream.Client.
type reg struct {
	url, host string
	client    *upstream.Client
	verifier  *verify.Verifier
	read      atomic.Int64 // response body bytes read through client
	reqs      requestLog   // requests sent through client
}

// requestLog records requests as "METHOD path".
type requestLog struct {
	mu   sync.Mutex
	reqs []string
}

func (l *requestLog) add(r *http.Request) {
	l.mu.Lock()
	l.reqs = append(l.reqs, r.Method+" "+r.URL.Path)
	l.mu.Unlock()
}

// since returns the requests after the first mark ones, and the new mark.
func (l *requestLog) since(mark int) ([]string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.reqs[mark:]...), len(l.reqs)
}

// distribution starts a distribution v3 registry (no referrers API: cosign falls back
// to the referrers tag scheme).
func distribution(t testing.TB, opts ...verify.Option) *reg {
	return newReg(t, regtest.Registry(t), opts...)
}

// ggcrRegistry starts go-containerregistry's registry with the referrers API, which
// stores manifests without validating them.
func ggcrRegistry(t testing.TB, opts ...verify.Option) *reg {
	srv := httptest.NewServer(registry.New(registry.WithReferrersSupport(true), registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return newReg(t, srv.URL, opts...)
}

func newReg(t testing.TB, url string, opts ...verify.Option) *reg {
	t.Helper()
	r := &reg{url: url, host: strings.TrimPrefix(url, "http://")}
	c, err := upstream.New(url, countingTransport{next: http.DefaultTransport, n: &r.read, log: &r.reqs})
	if err != nil {
		t.Fatal(err)
	}
	r.client = c
	r.verifier = verify.New(c, opts...)
	return r
}

// countingTransport counts the response body bytes read and logs the requests.
type countingTransport struct {
	next http.RoundTripper
	n    *atomic.Int64
	log  *requestLog
}

func (c countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.log.add(req)
	resp, err := c.next.RoundTrip(req)
	if err == nil {
		resp.Body = countingBody{ReadCloser: resp.Body, n: c.n}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// ref parses a reference in the registry.
func (r *reg) ref(t testing.TB, s string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(r.host+"/"+s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// image is a pushed image.
type image struct {
	repo, digest string
	size         int64
	mediaType    types.MediaType
}

// hex returns the image digest's hex part.
func (i image) hex() string { return strings.TrimPrefix(i.digest, "sha256:") }

// pushImage pushes a random image to repo by digest.
func (r *reg) pushImage(t testing.TB, repo string) image {
	t.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	raw, _ := img.RawManifest()
	mt, _ := img.MediaType()
	if err := remote.Write(r.ref(t, repo+"@"+d.String()), img); err != nil {
		t.Fatal(err)
	}
	return image{repo: repo, digest: d.String(), size: int64(len(raw)), mediaType: mt}
}

// withoutSpent returns res without its work report, for comparisons of what was found.
func withoutSpent(res verify.Result) verify.Result {
	res.Spent = verify.Spent{}
	return res
}

// verify runs Verify on the image with the zero Goal: every artifact within the budget
// is examined.
func (r *reg) verify(t testing.TB, img image, authorities ...verify.Authority) verify.Result {
	t.Helper()
	res, err := r.verifier.Verify(context.Background(), img.repo, img.digest, authorities, verify.Goal{})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return res
}

// rawManifest is a manifest to push as is.
type rawManifest struct {
	body []byte
	mt   types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.body, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }

// pushBlob uploads data to repo and returns its descriptor.
func (r *reg) pushBlob(t testing.TB, repo string, data []byte, mt string) map[string]any {
	t.Helper()
	l := static.NewLayer(data, types.MediaType(mt))
	repoRef, err := name.NewRepository(r.host+"/"+repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteLayer(repoRef, l); err != nil {
		t.Fatal(err)
	}
	d, _ := l.Digest()
	return map[string]any{"mediaType": mt, "digest": d.String(), "size": len(data)}
}

// putRaw PUTs body as the manifest repo:ref with media type mt, bypassing any client-side
// check, and returns its digest.
func (r *reg) putRaw(t testing.TB, repo, ref string, body []byte, mt string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, r.url+"/v2/"+repo+"/manifests/"+ref, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mt)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("PUT %s:%s: %s %s", repo, ref, resp.Status, b)
	}
	sum := sha256.Sum256(body)
	return fmt.Sprintf("sha256:%x", sum)
}

// fallbackDigest returns the digest of the referrers fallback tag of img, or "".
func (r *reg) fallbackDigest(t testing.TB, img image) string {
	t.Helper()
	desc, err := remote.Head(r.ref(t, img.repo+":sha256-"+img.hex()))
	if err != nil {
		return ""
	}
	return desc.Digest.String()
}

// remoteGet returns the raw manifest at ref.
func remoteGet(r *reg, t testing.TB, ref string) ([]byte, error) {
	t.Helper()
	desc, err := remote.Get(r.ref(t, ref))
	if err != nil {
		return nil, err
	}
	return desc.Manifest, nil
}
