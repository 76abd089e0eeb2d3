package proxy_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/proxy"
)

// putRaw PUTs a manifest through base and returns the response (body drained).
func putRaw(t *testing.T, base, repo, ref, mediaType string, body []byte) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, base+"/v2/"+repo+"/manifests/"+ref, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", mediaType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

type referrersIndex struct {
	MediaType string `json:"mediaType"`
	Manifests []struct {
		Digest       string `json:"digest"`
		ArtifactType string `json:"artifactType"`
		MediaType    string `json:"mediaType"`
		Size         int64  `json:"size"`
	} `json:"manifests"`
}

func listReferrers(t *testing.T, base, repo, subject, query string) (referrersIndex, http.Header) {
	t.Helper()
	resp, err := http.Get(base + "/v2/" + repo + "/referrers/" + subject + query)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/vnd.oci.image.index.v1+json" {
		t.Fatalf("referrers: %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	var idx referrersIndex
	if err := json.NewDecoder(resp.Body).Decode(&idx); err != nil {
		t.Fatal(err)
	}
	return idx, resp.Header
}

func TestReferrersServedForUpstreamWithoutTheAPI(t *testing.T) {
	reg := regtest.Registry(t) // distribution v3: no referrers API
	base := regtest.Gateway(t, reg).URL
	const repo = "team/app"
	empty := uploadEmptyConfig(t, base, repo)

	subject := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":` + empty + `,"layers":[]}`)
	subjectDigest := digest.FromBytes(subject).String()
	if resp := putRaw(t, base, repo, "1.0.0", "application/vnd.oci.image.manifest.v1+json", subject); resp.StatusCode != http.StatusCreated {
		t.Fatalf("subject push: %s", resp.Status)
	}
	if idx, _ := listReferrers(t, base, repo, subjectDigest, ""); len(idx.Manifests) != 0 {
		t.Fatalf("referrers before any artifact: %+v", idx.Manifests)
	}

	artifact := func(artifactType, note string) []byte {
		return []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"` + artifactType +
			`","config":` + empty + `,"layers":[],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` +
			subjectDigest + `","size":` + itoa(len(subject)) + `},"annotations":{"note":"` + note + `"}}`)
	}
	sig := artifact("application/vnd.dev.sigstore.bundle.v0.3+json", "sig")
	sbom := artifact("application/spdx+json", "sbom")
	for _, a := range [][]byte{sig, sbom} {
		d := digest.FromBytes(a).String()
		resp := putRaw(t, base, repo, d, "application/vnd.oci.image.manifest.v1+json", a)
		if resp.StatusCode != http.StatusCreated || resp.Header.Get("OCI-Subject") != subjectDigest {
			t.Fatalf("artifact push: %s, OCI-Subject %q, want 201 with %s", resp.Status, resp.Header.Get("OCI-Subject"), subjectDigest)
		}
	}

	idx, _ := listReferrers(t, base, repo, subjectDigest, "")
	if len(idx.Manifests) != 2 {
		t.Fatalf("referrers %+v, want the two artifacts", idx.Manifests)
	}
	for _, m := range idx.Manifests {
		if m.Size == 0 || m.MediaType == "" || m.ArtifactType == "" {
			t.Fatalf("incomplete descriptor %+v", m)
		}
	}
	filtered, h := listReferrers(t, base, repo, subjectDigest, "?artifactType=application/spdx%2Bjson")
	if h.Get("OCI-Filters-Applied") != "artifactType" || len(filtered.Manifests) != 1 || filtered.Manifests[0].Digest != digest.FromBytes(sbom).String() {
		t.Fatalf("filtered referrers %+v (filters %q), want only the SBOM", filtered.Manifests, h.Get("OCI-Filters-Applied"))
	}

	// The fallback tag is what clients without the API read: it lists the same artifacts.
	req, _ := http.NewRequest(http.MethodGet, reg+"/v2/"+repo+"/manifests/"+strings.Replace(subjectDigest, ":", "-", 1), nil)
	req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var fallback referrersIndex
	json.NewDecoder(resp.Body).Decode(&fallback)
	resp.Body.Close()
	if len(fallback.Manifests) != 2 {
		t.Fatalf("fallback tag upstream lists %d referrers, want 2", len(fallback.Manifests))
	}

	// Deleting an artifact takes it out of the list.
	del, _ := http.NewRequest(http.MethodDelete, base+"/v2/"+repo+"/manifests/"+digest.FromBytes(sig).String(), nil)
	dresp, err := http.DefaultClient.Do(del)
	if err != nil {
		t.Fatal(err)
	}
	dresp.Body.Close()
	if dresp.StatusCode != http.StatusAccepted {
		t.Fatalf("delete: %s", dresp.Status)
	}
	if idx, _ := listReferrers(t, base, repo, subjectDigest, ""); len(idx.Manifests) != 1 || idx.Manifests[0].Digest != digest.FromBytes(sbom).String() {
		t.Fatalf("after delete: %+v, want only the SBOM", idx.Manifests)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// uploadEmptyConfig stores the empty JSON blob through base and returns its descriptor.
func uploadEmptyConfig(t *testing.T, base, repo string) string {
	t.Helper()
	resp, err := http.Post(base+"/v2/"+repo+"/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if strings.HasPrefix(loc, "/") {
		loc = base + loc
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	const d = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
	req, _ := http.NewRequest(http.MethodPut, loc+sep+"digest="+d, strings.NewReader("{}"))
	put, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	put.Body.Close()
	if put.StatusCode != http.StatusCreated {
		t.Fatalf("empty config upload: %s", put.Status)
	}
	return `{"mediaType":"application/vnd.oci.empty.v1+json","digest":"` + d + `","size":2}`
}

func TestReferrersRelayTheUpstreamChallenge(t *testing.T) {
	reg := regtest.Registry(t, regtest.Htpasswd(t, "ci", "s3cret"))
	base := regtest.Gateway(t, reg).URL
	url := base + "/v2/team/app/referrers/sha256:" + strings.Repeat("ab", 32)
	// An authorised request teaches the gateway that this upstream lacks the API...
	authed, _ := http.NewRequest(http.MethodGet, url, nil)
	authed.SetBasicAuth("ci", "s3cret")
	first, err := http.DefaultClient.Do(authed)
	if err != nil {
		t.Fatal(err)
	}
	first.Body.Close()
	if first.StatusCode != http.StatusOK {
		t.Fatalf("authorised referrers request: %s", first.Status)
	}
	// ...so an anonymous one is served from the fallback tag, whose read the upstream refuses.
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "Basic") ||
		!strings.Contains(string(body), "UNAUTHORIZED") {
		t.Fatalf("anonymous referrers request: %s %q %s, want the upstream's 401 challenge with its error body", resp.Status, resp.Header.Get("WWW-Authenticate"), body)
	}
}

// Two replicas sharing a cache add referrers to one subject at the same time: the fallback
// index keeps every one of them (its read-modify-write is locked across the replicas).
func TestReferrersFallbackUpdatesAcrossReplicas(t *testing.T) {
	reg := regtest.Registry(t) // distribution v3: no referrers API
	shared := cache.NewMemory(16 << 20)
	a := regtest.Gateway(t, reg, proxy.WithCache(shared)).URL
	b := regtest.Gateway(t, reg, proxy.WithCache(shared)).URL
	const repo = "team/app"
	empty := uploadEmptyConfig(t, a, repo)
	subject := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":` + empty + `,"layers":[]}`)
	subjectDigest := digest.FromBytes(subject).String()
	if resp := putRaw(t, a, repo, "1.0.0", "application/vnd.oci.image.manifest.v1+json", subject); resp.StatusCode != http.StatusCreated {
		t.Fatalf("subject push: %s", resp.Status)
	}
	const n = 16
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			art := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/example",` +
				`"config":` + empty + `,"layers":[],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` +
				subjectDigest + `","size":` + itoa(len(subject)) + `},"annotations":{"n":"` + itoa(i) + `"}}`)
			base := a
			if i%2 == 1 {
				base = b
			}
			resp := putRaw(t, base, repo, digest.FromBytes(art).String(), "application/vnd.oci.image.manifest.v1+json", art)
			if resp.Header.Get("OCI-Subject") != subjectDigest {
				statuses[i] = -resp.StatusCode
				return
			}
			statuses[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusCreated {
			t.Fatalf("artifact %d: status %d (negative: no OCI-Subject)", i, s)
		}
	}
	if idx, _ := listReferrers(t, b, repo, subjectDigest, ""); len(idx.Manifests) != n {
		t.Fatalf("the fallback index lists %d referrers after %d concurrent pushes through two replicas, want %d", len(idx.Manifests), n, n)
	}
}
