package proxy_test

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/regtest"
)

// TestBlobsNeverPassForManifests: whatever media type the upstream gives a blob (here a
// registry that answers blobs with a manifest's type), the gateway serves blobs as
// application/octet-stream, so that a client falling back from /manifests/ to /blobs/
// (containerd does, for a reference by digest) never takes one for a manifest the gateway
// refused.
func TestBlobsNeverPassForManifests(t *testing.T) {
	reg := regtest.Registry(t)
	target, _ := url.Parse(reg)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = func(resp *http.Response) error {
		if strings.Contains(resp.Request.URL.Path, "/blobs/sha256:") && resp.StatusCode == http.StatusOK {
			resp.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		}
		return nil
	}
	typed := httptest.NewServer(rp)
	defer typed.Close()
	base := regtest.Gateway(t, typed.URL).URL

	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`)
	sum := sha256.Sum256(manifest)
	dgst := "sha256:" + hex.EncodeToString(sum[:])
	resp, err := http.Post(base+"/v2/team/app/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("upload start: %s: %v", resp.Status, err)
	}
	q := loc.Query()
	q.Set("digest", dgst)
	loc.RawQuery = q.Encode()
	req, _ := http.NewRequest(http.MethodPut, loc.String(), strings.NewReader(string(manifest)))
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %s", resp.Status)
	}
	for _, base := range []string{typed.URL, base} {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			req, _ := http.NewRequest(method, base+"/v2/team/app/blobs/"+dgst, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want := "application/octet-stream"
			if base == typed.URL {
				want = "application/vnd.oci.image.manifest.v1+json" // the upstream as it is
			}
			if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != want {
				t.Errorf("%s %s: %s %q, want 200 %q", method, base, resp.Status, ct, want)
			}
		}
	}
}
