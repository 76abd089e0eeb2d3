package proxy_test

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/proxy"
)

// nativeReferrersRegistry starts go-containerregistry's in-memory registry, which
// implements the OCI 1.1 referrers API (distribution v3 does not). A request whose path
// contains "/referrers/" while fail is set has its connection dropped, as a transient
// upstream failure would.
func nativeReferrersRegistry(t *testing.T, fail *atomic.Bool) string {
	t.Helper()
	reg := registry.New(registry.WithReferrersSupport(true), registry.Logger(log.New(io.Discard, "", 0)))
	return startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fail != nil && fail.Load() && strings.Contains(r.URL.Path, "/referrers/") {
			// Drop the connection before any response.
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return
			}
			conn.Close()
			return
		}
		reg.ServeHTTP(w, r)
	}))
}

// pushReferrer stores an image as repo:v1 and an SBOM artifact whose subject it is, straight
// to the upstream, and returns the subject and artifact digests.
func (e gwEnv) pushReferrer(t *testing.T, repo string) (subject, artifact digest.Digest) {
	t.Helper()
	img := randomImage(t, 256, 1)
	if err := remote.Write(ref(t, e.upHost, repo+":v1"), img); err != nil {
		t.Fatal(err)
	}
	sd, _ := img.Digest()
	subjectRaw, _ := img.RawManifest()
	subjectMT, _ := img.MediaType()
	empty := []byte("{}")
	emptyD := digest.FromBytes(empty)
	loc := e.startUploadAt(t, e.upstream, repo)
	resp, body := e.up(t, http.MethodPut, withQuery(loc, "digest", emptyD.String()), empty)
	wantStatus(t, resp, body, http.StatusCreated)
	raw := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"artifactType":"application/vnd.example.sbom",`+
		`"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"%s","size":2},`+
		`"layers":[{"mediaType":"application/vnd.oci.empty.v1+json","digest":"%s","size":2}],`+
		`"subject":{"mediaType":"%s","digest":"%s","size":%d}}`, emptyD, emptyD, subjectMT, sd, len(subjectRaw))
	artifact = digest.FromBytes(raw)
	resp, body = e.up(t, http.MethodPut, "/v2/"+repo+"/manifests/"+artifact.String(), raw,
		"Content-Type", "application/vnd.oci.image.manifest.v1+json")
	wantStatus(t, resp, body, http.StatusCreated)
	return digest.Digest(sd.String()), artifact
}

// sameAsUpstream checks that GET target answers the same through the gateway as straight
// from the upstream: status, body and the headers that matter.
func (e gwEnv) sameAsUpstream(t *testing.T, target string) {
	t.Helper()
	up, upBody := e.up(t, http.MethodGet, target, nil)
	gw, gwBody := e.gw(t, http.MethodGet, target, nil)
	if gw.StatusCode != up.StatusCode || !bytes.Equal(gwBody, upBody) {
		t.Errorf("GET %s: gateway answered %d %s, upstream %d %s", target, gw.StatusCode, gwBody, up.StatusCode, upBody)
	}
	for _, h := range []string{"Content-Type", "OCI-Filters-Applied"} {
		if gw.Header.Get(h) != up.Header.Get(h) {
			t.Errorf("GET %s: %s %q through the gateway, %q from the upstream", target, h, gw.Header.Get(h), up.Header.Get(h))
		}
	}
}

// TestReferrersNativeUpstream puts the gateway in front of a registry that implements the
// OCI 1.1 referrers API (go-containerregistry's registry) and checks that the upstream's
// own answers, filtered or not, reach the client unchanged; also after a request the
// upstream answers with 404, and after one the upstream could not answer at all.
func TestReferrersNativeUpstream(t *testing.T) {
	t.Parallel()
	up := nativeReferrersRegistry(t, nil)
	gw := regtest.Gateway(t, up, testLogger(t))
	e := newEnvFor(t, up, gw.URL)
	subject, artifact := e.pushReferrer(t, "refs")

	all := "/v2/refs/referrers/" + subject.String()
	e.sameAsUpstream(t, all)
	if _, body := e.gw(t, http.MethodGet, all, nil); !bytes.Contains(body, []byte(artifact)) {
		t.Errorf("referrers of %s lack the artifact: %s", subject, body)
	}
	e.sameAsUpstream(t, all+"?artifactType=application%2Fvnd.example.sbom")
	e.sameAsUpstream(t, all+"?artifactType=application/vnd.other")
	e.sameAsUpstream(t, "/v2/nothing/referrers/"+subject.String()) // the upstream says 404 NAME_UNKNOWN
	e.sameAsUpstream(t, all)
}

// TestReferrersUpstreamFailureIsNotAbsence: a referrers request the native upstream fails to
// answer (connection dropped) is a 503, and once the upstream is back its own answer is
// served again; the failure must not be taken for an upstream without the API.
func TestReferrersUpstreamFailureIsNotAbsence(t *testing.T) {
	t.Parallel()
	var fail atomic.Bool
	up := nativeReferrersRegistry(t, &fail)
	gw := regtest.Gateway(t, up, testLogger(t))
	e := newEnvFor(t, up, gw.URL)
	subject, artifact := e.pushReferrer(t, "refs")
	target := "/v2/refs/referrers/" + subject.String()

	fail.Store(true)
	resp, body := e.gw(t, http.MethodGet, target, nil)
	wantOCIError(t, resp, body, http.StatusServiceUnavailable, proxy.CodeUnavailable)
	fail.Store(false)

	e.sameAsUpstream(t, target)
	if _, body := e.gw(t, http.MethodGet, target, nil); !bytes.Contains(body, []byte(artifact)) {
		t.Errorf("after the upstream recovered, referrers of %s lack the artifact: %s", subject, body)
	}
}

// TestReferrersNativeLinkRewritten: a native upstream that pages its referrers answer with
// an absolute Link naming itself has that Link turned into a gateway path. No in-process
// registry pages referrers, so this upstream is hand-written.
func TestReferrersNativeLinkRewritten(t *testing.T) {
	t.Parallel()
	var upURL string
	up := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.oci.image.index.v1+json")
		w.Header().Set("Link", "<"+upURL+"/v2/refs/referrers/"+dgst+"?n=1&last=a%2Bb>; rel=\"next\"")
		_, _ = w.Write([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`))
	}))
	upURL = up
	gw := regtest.Gateway(t, up, testLogger(t))
	e := newEnvFor(t, up, gw.URL)
	resp, body := e.gw(t, http.MethodGet, "/v2/refs/referrers/"+dgst, nil)
	wantStatus(t, resp, body, http.StatusOK)
	if got, want := resp.Header.Get("Link"), "</v2/refs/referrers/"+dgst+"?n=1&last=a%2Bb>; rel=\"next\""; got != want {
		t.Errorf("Link %q, want %q", got, want)
	}
}
