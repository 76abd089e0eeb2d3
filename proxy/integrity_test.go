package proxy_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/proxy"
)

// TestManifestPushTooLarge pushes a valid manifest, whose blobs the upstream has, through a
// gateway whose cap is smaller than the manifest: the gateway refuses it with 413
// SIZE_INVALID and the upstream never sees it. Through a gateway with room, it is stored.
func TestManifestPushTooLarge(t *testing.T) {
	t.Parallel()
	up := regtest.Registry(t)
	img := randomImage(t, 128, 4)
	raw, _ := img.RawManifest()
	mt, _ := img.MediaType()
	d, _ := img.Digest()
	// Put the layers and config upstream, so only the manifest is missing.
	if err := remote.Write(ref(t, hostOf(t, up), "big:seed"), img); err != nil {
		t.Fatal(err)
	}
	if err := remote.Delete(ref(t, hostOf(t, up), "big@"+d.String())); err != nil {
		t.Fatal(err)
	}
	limit := int64(len(raw) - 1)
	small := newEnvFor(t, up, regtest.Gateway(t, up, testLogger(t), proxy.WithMaxManifestBytes(limit)).URL)

	for _, target := range []string{"/v2/big/manifests/v1", "/v2/big/manifests/" + d.String()} {
		t.Run("declared length "+target, func(t *testing.T) {
			resp, body := small.gw(t, http.MethodPut, target, raw, "Content-Type", string(mt))
			msg := wantOCIError(t, resp, body, http.StatusRequestEntityTooLarge, proxy.CodeSizeInvalid)
			if !strings.Contains(msg, strconv.FormatInt(limit, 10)) {
				t.Errorf("message %q does not state the limit %d", msg, limit)
			}
		})
		t.Run("chunked "+target, func(t *testing.T) {
			// No Content-Length: the cap must hold while reading.
			resp, body := send(t, small.client, http.MethodPut, small.gateway, target,
				io.MultiReader(bytes.NewReader(raw)), "Content-Type", string(mt))
			wantOCIError(t, resp, body, http.StatusRequestEntityTooLarge, proxy.CodeSizeInvalid)
		})
	}
	resp, body := small.up(t, http.MethodHead, "/v2/big/manifests/"+d.String(), nil, "Accept", string(mt))
	wantStatus(t, resp, body, http.StatusNotFound)

	// Exactly at the cap is allowed, and the upstream then has the manifest.
	exact := newEnvFor(t, up, regtest.Gateway(t, up, testLogger(t), proxy.WithMaxManifestBytes(int64(len(raw)))).URL)
	resp, body = exact.gw(t, http.MethodPut, "/v2/big/manifests/v1", raw, "Content-Type", string(mt))
	wantStatus(t, resp, body, http.StatusCreated)
	if got := resp.Header.Get("Docker-Content-Digest"); got != d.String() {
		t.Errorf("PUT at the cap: Docker-Content-Digest %q, want %s", got, d)
	}
	resp, body = exact.up(t, http.MethodGet, "/v2/big/manifests/v1", nil, "Accept", string(mt))
	wantStatus(t, resp, body, http.StatusOK)
	if !bytes.Equal(body, raw) {
		t.Error("upstream stored different manifest bytes")
	}
}

// TestManifestPushDigestMismatch pushes a manifest to a digest that is not its own.
func TestManifestPushDigestMismatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	img := randomImage(t, 128, 1)
	other := randomImage(t, 128, 1)
	raw, _ := img.RawManifest()
	mt, _ := img.MediaType()
	// The blobs exist upstream, so only the digest check can refuse the push.
	if err := remote.Write(ref(t, e.upHost, "mm:seed"), img); err != nil {
		t.Fatal(err)
	}
	od, _ := other.Digest()
	sha512 := digest.SHA512.FromBytes([]byte("something else"))
	for _, wrong := range []digest.Digest{digest.Digest(od.String()), sha512} {
		resp, body := e.gw(t, http.MethodPut, "/v2/mm/manifests/"+wrong.String(), raw, "Content-Type", string(mt))
		msg := wantOCIError(t, resp, body, http.StatusBadRequest, proxy.CodeDigestInvalid)
		if !strings.Contains(msg, wrong.String()) {
			t.Errorf("message %q does not name the digest in the URL", msg)
		}
		resp, body = e.up(t, http.MethodHead, "/v2/mm/manifests/"+wrong.String(), nil, "Accept", string(mt))
		wantStatus(t, resp, body, http.StatusNotFound)
	}

	// The right digest, in sha256, goes through.
	d, _ := img.Digest()
	resp, body := e.gw(t, http.MethodPut, "/v2/mm/manifests/"+d.String(), raw, "Content-Type", string(mt))
	wantStatus(t, resp, body, http.StatusCreated)
}

// TestUpstreamManifestTooLarge serves a real upstream manifest through a gateway whose cap
// is smaller: the client gets an error, never the bytes.
func TestUpstreamManifestTooLarge(t *testing.T) {
	t.Parallel()
	up := regtest.Registry(t)
	img := randomImage(t, 128, 4)
	raw, _ := img.RawManifest()
	mt, _ := img.MediaType()
	d, _ := img.Digest()
	if err := remote.Write(ref(t, hostOf(t, up), "big:v1"), img); err != nil {
		t.Fatal(err)
	}
	e := newEnvFor(t, up, regtest.Gateway(t, up, testLogger(t), proxy.WithMaxManifestBytes(int64(len(raw)-1))).URL)
	for _, target := range []string{"/v2/big/manifests/v1", "/v2/big/manifests/" + d.String()} {
		resp, body := e.gw(t, http.MethodGet, target, nil, "Accept", string(mt))
		wantOCIError(t, resp, body, http.StatusBadGateway, proxy.CodeManifestInvalid)
		if bytes.Contains(body, raw[:len(raw)/2]) {
			t.Errorf("GET %s: manifest bytes served despite the cap", target)
		}
	}
	if _, err := remote.Image(ref(t, e.gwHost, "big:v1"), e.remoteOpts(t, nil)...); err == nil {
		t.Error("ggcr pulled a manifest over the gateway's cap")
	}
}

// lyingCase is one way an upstream can serve a manifest. The upstreams in
// TestUpstreamManifestIntegrity are hand-written because no real registry lies: they send
// whatever bytes and Docker-Content-Digest the case says.
type lyingCase struct {
	name   string
	method string
	target string
	body   []byte // what the upstream sends
	header string // Docker-Content-Digest the upstream sends ("" for none)
	// chunked sends the body without Content-Length.
	chunked bool
	status  int
	code    proxy.Code
}

func TestUpstreamManifestIntegrity(t *testing.T) {
	t.Parallel()
	good := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`)
	evil := bytes.Replace(good, []byte(`"size":2`), []byte(`"size":3`), 1)
	goodD, evilD := digest.FromBytes(good), digest.FromBytes(evil)
	good512 := digest.SHA512.FromBytes(good)
	big := bytes.Repeat([]byte(" "), 2048)
	const limit = 1024

	cases := []lyingCase{
		{name: "tag with correct header", method: http.MethodGet, target: "/v2/r/manifests/v1", body: good, header: goodD.String(), status: http.StatusOK},
		{name: "tag without header", method: http.MethodGet, target: "/v2/r/manifests/v1", body: good, status: http.StatusOK},
		{name: "digest, chunked", method: http.MethodGet, target: "/v2/r/manifests/" + goodD.String(), body: good, chunked: true, status: http.StatusOK},
		{name: "sha512 digest", method: http.MethodGet, target: "/v2/r/manifests/" + good512.String(), body: good, header: good512.String(), status: http.StatusOK},
		{name: "tag with lying header", method: http.MethodGet, target: "/v2/r/manifests/v1", body: evil, header: goodD.String(), status: http.StatusBadGateway, code: proxy.CodeDigestInvalid},
		{name: "tag with garbage header", method: http.MethodGet, target: "/v2/r/manifests/v1", body: good, header: "sha256:nothex", status: http.StatusBadGateway, code: proxy.CodeDigestInvalid},
		{name: "digest, wrong bytes, no header", method: http.MethodGet, target: "/v2/r/manifests/" + goodD.String(), body: evil, status: http.StatusBadGateway, code: proxy.CodeDigestInvalid},
		{name: "digest, wrong bytes, honest header", method: http.MethodGet, target: "/v2/r/manifests/" + goodD.String(), body: evil, header: evilD.String(), status: http.StatusBadGateway, code: proxy.CodeDigestInvalid},
		{name: "digest, wrong bytes, lying header", method: http.MethodGet, target: "/v2/r/manifests/" + goodD.String(), body: evil, header: goodD.String(), status: http.StatusBadGateway, code: proxy.CodeDigestInvalid},
		{name: "digest, wrong bytes, chunked", method: http.MethodGet, target: "/v2/r/manifests/" + goodD.String(), body: evil, chunked: true, status: http.StatusBadGateway, code: proxy.CodeDigestInvalid},
		{name: "HEAD by digest, other digest", method: http.MethodHead, target: "/v2/r/manifests/" + goodD.String(), body: evil, header: evilD.String(), status: http.StatusBadGateway, code: proxy.CodeDigestInvalid},
		{name: "over the cap", method: http.MethodGet, target: "/v2/r/manifests/v1", body: append(append([]byte{}, good...), big...), status: http.StatusBadGateway, code: proxy.CodeManifestInvalid},
		{name: "over the cap, chunked", method: http.MethodGet, target: "/v2/r/manifests/v1", body: append(append([]byte{}, good...), big...), chunked: true, status: http.StatusBadGateway, code: proxy.CodeManifestInvalid},
		{name: "over the cap by digest", method: http.MethodGet, target: "/v2/r/manifests/" + goodD.String(), body: append(append([]byte{}, good...), big...), chunked: true, status: http.StatusBadGateway, code: proxy.CodeManifestInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.header != "" {
					w.Header().Set("Docker-Content-Digest", tc.header)
				}
				w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
				if !tc.chunked {
					w.Header().Set("Content-Length", strconv.Itoa(len(tc.body)))
				}
				w.WriteHeader(http.StatusOK)
				if r.Method == http.MethodGet {
					// Two writes with a flush between, so an unlengthed body goes out chunked.
					half := len(tc.body) / 2
					_, _ = w.Write(tc.body[:half])
					w.(http.Flusher).Flush()
					_, _ = w.Write(tc.body[half:])
				}
			}))
			t.Cleanup(up.Close)
			gw := regtest.Gateway(t, up.URL, testLogger(t), proxy.WithMaxManifestBytes(limit))
			resp, body := send(t, http.DefaultClient, tc.method, gw.URL, tc.target, nil)
			if tc.status != http.StatusOK {
				wantOCIError(t, resp, body, tc.status, tc.code)
				if len(tc.body) > 16 && bytes.Contains(body, tc.body[:16]) {
					t.Errorf("the upstream's bytes were served: %s", body)
				}
				return
			}
			wantStatus(t, resp, body, http.StatusOK)
			if !bytes.Equal(body, tc.body) {
				t.Errorf("served %q, upstream sent %q", body, tc.body)
			}
			want := goodD.String()
			if strings.Contains(tc.target, "sha512:") {
				want = good512.String()
			}
			if got := resp.Header.Get("Docker-Content-Digest"); got != want {
				t.Errorf("Docker-Content-Digest %q, want %q", got, want)
			}
			if resp.ContentLength != int64(len(tc.body)) {
				t.Errorf("Content-Length %d, want %d", resp.ContentLength, len(tc.body))
			}
		})
	}
}

// TestUpstreamDiesMidManifest: an upstream that sends half a manifest and closes the
// connection yields an error, not half a manifest.
func TestUpstreamDiesMidManifest(t *testing.T) {
	t.Parallel()
	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}`)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(manifest)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(manifest[:len(manifest)/2])
		hangUp(t, w)
	}))
	t.Cleanup(up.Close)
	gw := regtest.Gateway(t, up.URL, testLogger(t))
	resp, body := send(t, http.DefaultClient, http.MethodGet, gw.URL, "/v2/r/manifests/v1", nil)
	msg := wantOCIError(t, resp, body, http.StatusServiceUnavailable, proxy.CodeUnavailable)
	if bytes.Contains(body, manifest[:10]) {
		t.Errorf("part of the manifest was served: %s", body)
	}
	t.Logf("message: %s", msg)
}

// hangUp flushes what the handler wrote and closes the connection under it, as an upstream
// that dies mid-response does.
func hangUp(t *testing.T, w http.ResponseWriter) {
	t.Helper()
	w.(http.Flusher).Flush()
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	conn.Close()
}
