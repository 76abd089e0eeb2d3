package proxy_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/internal/regtest"
)

func TestPushPullImage(t *testing.T) { eachVia(t, testPushPullImage) }

func testPushPullImage(t *testing.T, via upstreamVia) {
	t.Parallel()
	e := newEnvVia(t, via, nil)
	img := randomImage(t, 64<<10, 3)
	want, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	opts := e.remoteOpts(t, nil)
	if err := remote.Write(ref(t, e.gwHost, "team/app:v1"), img, opts...); err != nil {
		t.Fatalf("push through the gateway: %v", err)
	}

	// The upstream really holds the image the gateway said it stored.
	direct, err := remote.Get(ref(t, e.upHost, "team/app:v1"))
	if err != nil {
		t.Fatalf("upstream after push: %v", err)
	}
	if direct.Digest != want {
		t.Fatalf("upstream has %s, pushed %s", direct.Digest, want)
	}

	for _, r := range []string{"team/app:v1", "team/app@" + want.String()} {
		t.Run(r, func(t *testing.T) {
			got, err := remote.Image(ref(t, e.gwHost, r), opts...)
			if err != nil {
				t.Fatalf("pull through the gateway: %v", err)
			}
			if d, _ := got.Digest(); d != want {
				t.Errorf("pulled %s, pushed %s", d, want)
			}
			// validate.Image reads every layer and the config and checks their digests.
			if err := validate.Image(got); err != nil {
				t.Errorf("pulled image: %v", err)
			}
			wantRaw, _ := img.RawManifest()
			gotRaw, _ := got.RawManifest()
			if !bytes.Equal(wantRaw, gotRaw) {
				t.Errorf("manifest bytes differ:\n got %s\nwant %s", gotRaw, wantRaw)
			}
		})
	}
}

func TestManifestHeadAndDelete(t *testing.T) { eachVia(t, testManifestHeadAndDelete) }

func testManifestHeadAndDelete(t *testing.T, via upstreamVia) {
	t.Parallel()
	e := newEnvVia(t, via, nil)
	img := randomImage(t, 1024, 1)
	if err := remote.Write(ref(t, e.gwHost, "app:v1"), img, e.remoteOpts(t, nil)...); err != nil {
		t.Fatal(err)
	}
	raw, _ := img.RawManifest()
	d, _ := img.Digest()
	mt, _ := img.MediaType()

	for _, target := range []string{"/v2/app/manifests/v1", "/v2/app/manifests/" + d.String()} {
		resp, body := e.gw(t, http.MethodHead, target, nil, "Accept", string(mt))
		wantStatus(t, resp, body, http.StatusOK)
		if len(body) != 0 {
			t.Errorf("HEAD %s: %d body bytes", target, len(body))
		}
		if got := resp.Header.Get("Docker-Content-Digest"); got != d.String() {
			t.Errorf("HEAD %s: Docker-Content-Digest %q, want %s", target, got, d)
		}
		if resp.ContentLength != int64(len(raw)) {
			t.Errorf("HEAD %s: Content-Length %d, want %d", target, resp.ContentLength, len(raw))
		}
		if got := resp.Header.Get("Content-Type"); got != string(mt) {
			t.Errorf("HEAD %s: Content-Type %q, want %q", target, got, mt)
		}
	}

	// ggcr's Head and Delete speak the same API.
	desc, err := remote.Head(ref(t, e.gwHost, "app:v1"), e.remoteOpts(t, nil)...)
	if err != nil || desc.Digest != d {
		t.Fatalf("remote.Head = %v, %v; want %s", desc, err, d)
	}

	resp, body := e.gw(t, http.MethodDelete, "/v2/app/manifests/"+d.String(), nil)
	wantStatus(t, resp, body, http.StatusAccepted)
	resp, body = e.up(t, http.MethodGet, "/v2/app/manifests/"+d.String(), nil, "Accept", string(mt))
	wantStatus(t, resp, body, http.StatusNotFound)
	resp, body = e.gw(t, http.MethodGet, "/v2/app/manifests/"+d.String(), nil, "Accept", string(mt))
	wantStatus(t, resp, body, http.StatusNotFound)
	if !strings.Contains(string(body), "MANIFEST_UNKNOWN") {
		t.Errorf("GET after DELETE: %s, want the upstream's MANIFEST_UNKNOWN", body)
	}

	// Deleting through ggcr (by digest) after re-pushing.
	if err := remote.Write(ref(t, e.gwHost, "app:v2"), img, e.remoteOpts(t, nil)...); err != nil {
		t.Fatal(err)
	}
	if err := remote.Delete(ref(t, e.gwHost, "app@"+d.String()), e.remoteOpts(t, nil)...); err != nil {
		t.Fatalf("remote.Delete: %v", err)
	}
	if _, err := remote.Head(ref(t, e.upHost, "app@"+d.String())); err == nil {
		t.Error("manifest still upstream after remote.Delete through the gateway")
	}
}

// blobData returns n random bytes and their digest.
func blobData(t *testing.T, n int) ([]byte, digest.Digest) {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b, digest.FromBytes(b)
}

// withQuery adds k=v to a Location that may already carry a query (distribution's _state).
func withQuery(loc, k, v string) string {
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	return loc + sep + url.QueryEscape(k) + "=" + url.QueryEscape(v)
}

// startUpload POSTs to repo's upload endpoint on the gateway and returns the session's
// Location.
func (e gwEnv) startUpload(t *testing.T, repo string) string {
	t.Helper()
	return e.startUploadAt(t, e.gateway, repo)
}

// startUploadAt starts an upload on base, the gateway or the upstream.
func (e gwEnv) startUploadAt(t *testing.T, base, repo string) string {
	t.Helper()
	c := e.client
	if base != e.gateway {
		c = http.DefaultClient
	}
	resp, body := send(t, c, http.MethodPost, base, "/v2/"+repo+"/blobs/uploads/", nil)
	wantStatus(t, resp, body, http.StatusAccepted)
	loc := resp.Header.Get("Location")
	if base == e.gateway && !strings.HasPrefix(loc, "/v2/"+repo+"/blobs/uploads/") {
		t.Fatalf("upload Location %q, want a gateway path under /v2/%s/blobs/uploads/", loc, repo)
	}
	if base == e.gateway && resp.Header.Get("Docker-Upload-UUID") == "" {
		t.Error("POST upload: no Docker-Upload-UUID")
	}
	return loc
}

// finishUpload PUTs the digest (and body, if any) to loc and checks the created blob.
func (e gwEnv) finishUpload(t *testing.T, repo, loc string, body []byte, d digest.Digest) {
	t.Helper()
	hdr := []string{"Content-Type", "application/octet-stream"}
	resp, rb := e.gw(t, http.MethodPut, withQuery(loc, "digest", d.String()), body, hdr...)
	wantStatus(t, resp, rb, http.StatusCreated)
	if got, want := resp.Header.Get("Location"), "/v2/"+repo+"/blobs/"+d.String(); got != want {
		t.Errorf("PUT upload: Location %q, want %q", got, want)
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != d.String() {
		t.Errorf("PUT upload: Docker-Content-Digest %q, want %s", got, d)
	}
}

// wantBlob checks that both the gateway and the upstream serve exactly data as repo's d.
func (e gwEnv) wantBlob(t *testing.T, repo string, d digest.Digest, data []byte) {
	t.Helper()
	for _, get := range []func(*testing.T, string, string, []byte, ...string) (*http.Response, []byte){e.gw, e.up} {
		resp, body := get(t, http.MethodGet, "/v2/"+repo+"/blobs/"+d.String(), nil)
		wantStatus(t, resp, body, http.StatusOK)
		if !bytes.Equal(body, data) {
			t.Errorf("GET %s: %d bytes differ from the %d uploaded", resp.Request.URL, len(body), len(data))
		}
	}
}

func TestBlobUploads(t *testing.T) { eachVia(t, testBlobUploads) }

func testBlobUploads(t *testing.T, via upstreamVia) {
	t.Parallel()
	e := newEnvVia(t, via, nil)

	t.Run("monolithic", func(t *testing.T) {
		t.Parallel()
		data, d := blobData(t, 300<<10)
		loc := e.startUpload(t, "mono")
		e.finishUpload(t, "mono", loc, data, d)
		e.wantBlob(t, "mono", d, data)
	})

	t.Run("chunked", func(t *testing.T) {
		t.Parallel()
		data, d := blobData(t, 700<<10+13)
		loc := e.startUpload(t, "chunked")
		chunks := [][2]int{{0, 256 << 10}, {256 << 10, 512 << 10}, {512 << 10, len(data)}}
		for _, c := range chunks {
			resp, body := e.gw(t, http.MethodPatch, loc, data[c[0]:c[1]],
				"Content-Type", "application/octet-stream",
				"Content-Range", fmt.Sprintf("%d-%d", c[0], c[1]-1))
			wantStatus(t, resp, body, http.StatusAccepted)
			if got, want := resp.Header.Get("Range"), fmt.Sprintf("0-%d", c[1]-1); got != want {
				t.Errorf("PATCH %d-%d: Range %q, want %q", c[0], c[1]-1, got, want)
			}
			loc = resp.Header.Get("Location")
		}

		// Upload status: GET on the session.
		resp, body := e.gw(t, http.MethodGet, loc, nil)
		wantStatus(t, resp, body, http.StatusNoContent)
		if got, want := resp.Header.Get("Range"), fmt.Sprintf("0-%d", len(data)-1); got != want {
			t.Errorf("upload status: Range %q, want %q", got, want)
		}
		if resp.Header.Get("Docker-Upload-UUID") == "" {
			t.Error("upload status: no Docker-Upload-UUID")
		}
		loc = resp.Header.Get("Location")

		e.finishUpload(t, "chunked", loc, nil, d)
		e.wantBlob(t, "chunked", d, data)
	})

	t.Run("chunk out of order", func(t *testing.T) {
		t.Parallel()
		data, _ := blobData(t, 1000)
		loc := e.startUpload(t, "chunked")
		resp, body := e.gw(t, http.MethodPatch, loc, data[500:],
			"Content-Type", "application/octet-stream", "Content-Range", "500-999")
		wantStatus(t, resp, body, http.StatusRequestedRangeNotSatisfiable)
	})

	t.Run("streamed", func(t *testing.T) {
		t.Parallel()
		data, d := blobData(t, 1<<20+7)
		loc := e.startUpload(t, "streamed")
		// A body of unknown length (ContentLength 0 with a body) goes out with chunked
		// transfer encoding and no Content-Length or Content-Range.
		req, err := http.NewRequest(http.MethodPatch, e.gateway+loc, io.MultiReader(bytes.NewReader(data)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		rb, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantStatus(t, resp, rb, http.StatusAccepted)
		if got, want := resp.Header.Get("Range"), fmt.Sprintf("0-%d", len(data)-1); got != want {
			t.Errorf("streamed PATCH: Range %q, want %q", got, want)
		}
		e.finishUpload(t, "streamed", resp.Header.Get("Location"), nil, d)
		e.wantBlob(t, "streamed", d, data)
	})

	t.Run("wrong digest", func(t *testing.T) {
		t.Parallel()
		data, _ := blobData(t, 4096)
		_, other := blobData(t, 10)
		loc := e.startUpload(t, "wrongdigest")
		resp, body := e.gw(t, http.MethodPut, withQuery(loc, "digest", other.String()), data,
			"Content-Type", "application/octet-stream")
		wantStatus(t, resp, body, http.StatusBadRequest)
		if !strings.Contains(string(body), "DIGEST_INVALID") {
			t.Errorf("upstream's DIGEST_INVALID not passed through: %s", body)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		t.Parallel()
		data, _ := blobData(t, 4096)
		loc := e.startUpload(t, "cancel")
		resp, body := e.gw(t, http.MethodPatch, loc, data, "Content-Type", "application/octet-stream")
		wantStatus(t, resp, body, http.StatusAccepted)
		loc = resp.Header.Get("Location")
		resp, body = e.gw(t, http.MethodDelete, loc, nil)
		wantStatus(t, resp, body, http.StatusNoContent)
		resp, body = e.gw(t, http.MethodGet, loc, nil)
		wantStatus(t, resp, body, http.StatusNotFound)
		if !strings.Contains(string(body), "BLOB_UPLOAD_UNKNOWN") {
			t.Errorf("status of a cancelled upload: %s, want BLOB_UPLOAD_UNKNOWN", body)
		}
	})
}

func TestBlobGetRangeHeadDelete(t *testing.T) { eachVia(t, testBlobGetRangeHeadDelete) }

func testBlobGetRangeHeadDelete(t *testing.T, via upstreamVia) {
	t.Parallel()
	e := newEnvVia(t, via, nil)
	data, d := blobData(t, 100<<10)
	e.finishUpload(t, "ranged", e.startUpload(t, "ranged"), data, d)
	path := "/v2/ranged/blobs/" + d.String()

	tests := []struct {
		rng        string
		start, end int // inclusive
	}{
		{"bytes=0-0", 0, 0},
		{"bytes=10-19", 10, 19},
		{"bytes=50000-", 50000, len(data) - 1},
		{"bytes=-100", len(data) - 100, len(data) - 1},
	}
	for _, tt := range tests {
		resp, body := e.gw(t, http.MethodGet, path, nil, "Range", tt.rng)
		wantStatus(t, resp, body, http.StatusPartialContent)
		if !bytes.Equal(body, data[tt.start:tt.end+1]) {
			t.Errorf("Range %s: got %d bytes, not data[%d:%d]", tt.rng, len(body), tt.start, tt.end+1)
		}
		if got, want := resp.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-%d/%d", tt.start, tt.end, len(data)); got != want {
			t.Errorf("Range %s: Content-Range %q, want %q", tt.rng, got, want)
		}
	}

	resp, body := e.gw(t, http.MethodHead, path, nil)
	wantStatus(t, resp, body, http.StatusOK)
	if resp.ContentLength != int64(len(data)) || resp.Header.Get("Docker-Content-Digest") != d.String() || len(body) != 0 {
		t.Errorf("HEAD blob: length %d digest %q body %d", resp.ContentLength, resp.Header.Get("Docker-Content-Digest"), len(body))
	}

	resp, body = e.gw(t, http.MethodDelete, path, nil)
	wantStatus(t, resp, body, http.StatusAccepted)
	resp, body = e.up(t, http.MethodHead, path, nil)
	wantStatus(t, resp, body, http.StatusNotFound)
}

func TestCrossRepoMount(t *testing.T) { eachVia(t, testCrossRepoMount) }

func testCrossRepoMount(t *testing.T, via upstreamVia) {
	t.Parallel()
	e := newEnvVia(t, via, nil)
	data, d := blobData(t, 8192)
	e.finishUpload(t, "src/app", e.startUpload(t, "src/app"), data, d)

	resp, body := e.gw(t, http.MethodPost, "/v2/dst/app/blobs/uploads/?mount="+d.String()+"&from=src/app", nil)
	wantStatus(t, resp, body, http.StatusCreated)
	if got, want := resp.Header.Get("Location"), "/v2/dst/app/blobs/"+d.String(); got != want {
		t.Errorf("mount Location %q, want %q", got, want)
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != d.String() {
		t.Errorf("mount Docker-Content-Digest %q, want %s", got, d)
	}
	e.wantBlob(t, "dst/app", d, data)

	// A mount from a repository without the blob falls back to a new upload session.
	resp, body = e.gw(t, http.MethodPost, "/v2/dst/other/blobs/uploads/?mount="+d.String()+"&from=nowhere", nil)
	wantStatus(t, resp, body, http.StatusAccepted)
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "/v2/dst/other/blobs/uploads/") {
		t.Errorf("fallback Location %q", loc)
	}
}

// pushTags pushes one small image under each tag, straight to the upstream.
func (e gwEnv) pushTags(t *testing.T, repo string, tags ...string) {
	t.Helper()
	img := randomImage(t, 256, 1)
	for _, tag := range tags {
		if err := remote.Write(ref(t, e.upHost, repo+":"+tag), img); err != nil {
			t.Fatal(err)
		}
	}
}

// nextLink returns the target of a Link rel="next" header, or "".
func nextLink(t *testing.T, resp *http.Response) string {
	t.Helper()
	v := resp.Header.Get("Link")
	if v == "" {
		return ""
	}
	start, end := strings.IndexByte(v, '<'), strings.IndexByte(v, '>')
	if start != 0 || end < 0 || !strings.Contains(v[end:], `rel="next"`) {
		t.Fatalf("malformed Link header %q", v)
	}
	return v[1:end]
}

func TestTagsListPagination(t *testing.T) { eachVia(t, testTagsListPagination) }

func testTagsListPagination(t *testing.T, via upstreamVia) {
	t.Parallel()
	e := newEnvVia(t, via, nil)
	want := []string{"t1", "t2", "t3", "t4", "t5"}
	e.pushTags(t, "paged/app", want...)

	resp, body := e.gw(t, http.MethodGet, "/v2/paged/app/tags/list?n=2", nil)
	wantStatus(t, resp, body, http.StatusOK)
	link := nextLink(t, resp)
	if link != "/v2/paged/app/tags/list?last=t2&n=2" {
		t.Errorf("first page Link target %q, want the gateway-relative /v2/paged/app/tags/list?last=t2&n=2", link)
	}
	var page struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatal(err)
	}
	if page.Name != "paged/app" || !slices.Equal(page.Tags, []string{"t1", "t2"}) {
		t.Errorf("first page %+v", page)
	}

	// Following the links through the gateway visits every tag once.
	got := slices.Clone(page.Tags)
	for pages := 1; link != ""; pages++ {
		if pages > 10 {
			t.Fatal("Link headers never end")
		}
		resp, body = e.gw(t, http.MethodGet, link, nil)
		wantStatus(t, resp, body, http.StatusOK)
		page.Tags = nil
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		got = append(got, page.Tags...)
		link = nextLink(t, resp)
	}
	if !slices.Equal(got, want) {
		t.Errorf("paged tags %v, want %v", got, want)
	}

	// last without n.
	resp, body = e.gw(t, http.MethodGet, "/v2/paged/app/tags/list?last=t3", nil)
	wantStatus(t, resp, body, http.StatusOK)
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(page.Tags, []string{"t4", "t5"}) {
		t.Errorf("tags after t3: %v", page.Tags)
	}

	// ggcr pages with n and follows the Link itself.
	repo, err := name.NewRepository(e.gwHost+"/paged/app", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	tags, err := remote.List(repo, append(e.remoteOpts(t, nil), remote.WithPageSize(2))...)
	if err != nil || !slices.Equal(tags, want) {
		t.Errorf("remote.List = %v, %v; want %v", tags, err, want)
	}
}

func TestCatalog(t *testing.T) { eachVia(t, testCatalog) }

func testCatalog(t *testing.T, via upstreamVia) {
	t.Parallel()
	e := newEnvVia(t, via, nil)
	want := []string{"a/one", "b/two", "c/three"}
	for _, r := range want {
		e.pushTags(t, r, "v1")
	}
	var got []string
	link := "/v2/_catalog?n=1"
	for pages := 0; link != ""; pages++ {
		if pages > 10 {
			t.Fatal("Link headers never end")
		}
		resp, body := e.gw(t, http.MethodGet, link, nil)
		wantStatus(t, resp, body, http.StatusOK)
		var page struct {
			Repositories []string `json:"repositories"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		got = append(got, page.Repositories...)
		link = nextLink(t, resp)
		if link != "" && !strings.HasPrefix(link, "/v2/_catalog?") {
			t.Fatalf("catalog Link %q does not point at the gateway", link)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("catalog %v, want %v", got, want)
	}
	reg, err := name.NewRegistry(e.gwHost, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	repos, err := remote.Catalog(t.Context(), reg, e.remoteOpts(t, nil)...)
	if err != nil || !slices.Equal(repos, want) {
		t.Errorf("remote.Catalog = %v, %v; want %v", repos, err, want)
	}
}

// TestUpstreamUnderPathPrefix runs a registry that builds absolute URLs (distribution's
// default) behind a path prefix, and checks that the gateway turns them into its own.
func TestUpstreamUnderPathPrefix(t *testing.T) {
	t.Parallel()
	up := regtest.Registry(t)
	target, err := url.Parse(up)
	if err != nil {
		t.Fatal(err)
	}
	// A front proxy that serves the registry under /mirror (as some load balancers do),
	// rewriting the registry's absolute Locations to include the prefix.
	front := httptest.NewServer(http.StripPrefix("/mirror", roundTripHandler(target)))
	t.Cleanup(front.Close)
	gw := regtest.Gateway(t, front.URL+"/mirror", testLogger(t))
	e := newEnvFor(t, front.URL, gw.URL)

	data, d := blobData(t, 2048)
	loc := e.startUpload(t, "prefixed")
	e.finishUpload(t, "prefixed", loc, data, d)
	resp, body := e.gw(t, http.MethodGet, "/v2/prefixed/blobs/"+d.String(), nil)
	wantStatus(t, resp, body, http.StatusOK)
	if !bytes.Equal(body, data) {
		t.Error("blob differs through a prefixed upstream")
	}
}

// roundTripHandler forwards requests to target and adds /mirror to the path of absolute
// Locations that point at the front server.
func roundTripHandler(target *url.URL) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := r.Clone(r.Context())
		out.RequestURI = ""
		out.URL.Scheme, out.URL.Host = target.Scheme, target.Host
		frontHost := r.Host
		out.Host = frontHost // the registry builds Locations from Host
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		if loc := resp.Header.Get("Location"); strings.HasPrefix(loc, "http://"+frontHost+"/v2/") {
			w.Header().Set("Location", "http://"+frontHost+"/mirror"+strings.TrimPrefix(loc, "http://"+frontHost))
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})
}

// TestQueryAndPathForwardedVerbatim sends requests with oddly escaped queries and paths
// and checks that the upstream receives them byte for byte. A real registry does not echo
// the raw request line, so this upstream records it.
func TestQueryAndPathForwardedVerbatim(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.RequestURI)
		mu.Unlock()
		if strings.Contains(r.URL.Path, "/referrers/") {
			// Answer as a registry with the referrers API, so the gateway relays the
			// request rather than serving the fallback index itself.
			w.Header().Set("Content-Type", "application/vnd.oci.image.index.v1+json")
			_, _ = w.Write([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(up.Close)
	gw := regtest.Gateway(t, up.URL, testLogger(t))

	targets := []string{
		"/v2/a/tags/list?n=2&last=a%2Fb%2fc",
		"/v2/a/tags/list?x=%zz&y=a;b&z=%E2%82%AC&w=+%20&&=&k=v=w&%00&last",
		"/v2/a/tags/list?last=t%2B1&n=0010&n=2",
		"/v2/_catalog?n=1&last=a%2fb",
		"/v2/a/blobs/uploads/?mount=sha256%3A" + dgst[7:] + "&from=b%2Fc",
		"/v2/a/blobs/uploads/ab%2Bc%3D?_state=x%2By%3D%3D&digest=" + dgst,
		"/v2/a/blobs/uploads/plain-id?_state=a+b%20c",
		"/v2/a/referrers/" + dgst + "?artifactType=application%2Fvnd.dev.cosign.artifact.sig.v1%2Bjson",
		"/v2/a/manifests/v1?",
	}
	c := &http.Client{}
	for _, target := range targets {
		resp, body := send(t, c, http.MethodGet, gw.URL, target, nil)
		if strings.Contains(target, "/referrers/") {
			wantStatus(t, resp, body, http.StatusOK)
		} else {
			wantStatus(t, resp, body, http.StatusNoContent)
		}
		mu.Lock()
		got := seen[len(seen)-1]
		mu.Unlock()
		if got != target {
			t.Errorf("sent %q through the gateway, upstream received %q", target, got)
		}
	}
}

// TestAbsoluteUpstreamURLsRewritten covers what distribution does not send but other
// registries do: absolute Link headers naming the upstream, and redirects to blob storage
// elsewhere, which must stay as they are. The upstream is hand-written for that reason.
func TestAbsoluteUpstreamURLsRewritten(t *testing.T) {
	t.Parallel()
	var upURL string
	up := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/tags/list"):
			w.Header().Add("Link", "<"+upURL+"/v2/a/tags/list?n=2&last=t%2B2>; rel=\"next\"")
			w.Header().Add("Link", "<"+upURL+"/v2/a/tags/list?n=2>; rel=\"first\", <https://docs.example/tags>; rel=\"help\"")
			_, _ = w.Write([]byte(`{"name":"a","tags":["t1","t+2"]}`))
		case strings.Contains(r.URL.Path, "/blobs/uploads/"):
			w.Header().Set("Location", upURL+"/v2/a/blobs/uploads/abc?_state=x%2By")
			w.WriteHeader(http.StatusAccepted)
		default:
			w.Header().Set("Location", "https://storage.example/bucket/blob?X-Sig=a%2Bb&exp=1")
			w.WriteHeader(http.StatusTemporaryRedirect)
		}
	}))
	upURL = up
	gw := regtest.Gateway(t, up, testLogger(t))
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	resp, body := send(t, c, http.MethodGet, gw.URL, "/v2/a/tags/list?n=2", nil)
	wantStatus(t, resp, body, http.StatusOK)
	want := []string{
		`</v2/a/tags/list?n=2&last=t%2B2>; rel="next"`,
		`</v2/a/tags/list?n=2>; rel="first", <https://docs.example/tags>; rel="help"`,
	}
	if got := resp.Header.Values("Link"); !slices.Equal(got, want) {
		t.Errorf("Link %q, want %q", got, want)
	}

	resp, body = send(t, c, http.MethodPost, gw.URL, "/v2/a/blobs/uploads/", nil)
	wantStatus(t, resp, body, http.StatusAccepted)
	if got, want := resp.Header.Get("Location"), "/v2/a/blobs/uploads/abc?_state=x%2By"; got != want {
		t.Errorf("upload Location %q, want %q", got, want)
	}

	resp, body = send(t, c, http.MethodGet, gw.URL, "/v2/a/blobs/"+dgst, nil)
	wantStatus(t, resp, body, http.StatusTemporaryRedirect)
	if got, want := resp.Header.Get("Location"), "https://storage.example/bucket/blob?X-Sig=a%2Bb&exp=1"; got != want {
		t.Errorf("storage redirect Location %q, want it untouched: %q", got, want)
	}
}
