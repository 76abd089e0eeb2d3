package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/portcullis-dev/portcullis/internal/cosigntest"
	"github.com/portcullis-dev/portcullis/internal/regtest"
)

// The hostile-client suite: a client with push rights trying every way around the gate
// that issue 11 found, by raw HTTP against the real gateway binary, with GET and HEAD, by
// tag and by digest, fresh and from the hot path. Each test fails on a gateway that decides
// by tag shape or subject, lets artifact tags move, lets deletes through, answers
// conditional requests without a decision, or lets concurrent pushes race for one tag.

// hostilePolicy has a prod environment whose pulls need the release key's signature, tag
// rules, immutable tags and no secrets in image layers everywhere.
func hostilePolicy(t *testing.T, release cosigntest.Key) string {
	return `version: 1
exceptionProcess: "ask the platform team"
authorities:
` + release.AuthorityYAML(t, "release") + `environments:
  - name: prod
    repositories: ["prod/**"]
    failMode: closed
  - name: dev
    repositories: ["**"]
rules:
  - {id: no-latest, type: tag, mode: block, forbidden: [latest]}
  - {id: release-tags, type: tag, mode: block, environments: [prod], actions: [push], allowed: ['^\d+\.\d+\.\d+$']}
  - {id: immutable-tags, type: immutable, mode: block}
  - {id: prod-signed, type: signature, mode: block, environments: [prod], authorities: [release]}
  - {id: no-secrets, type: secret, mode: block}
`
}

// hostileEnv is a registry with a gateway in front, enforcing hostilePolicy.
type hostileEnv struct {
	reg     string // the registry's base URL: what an attacker reaches by bypassing the gateway
	gw      *gateway
	release cosigntest.Key
	audit   string
}

func newHostileEnv(t *testing.T, extra ...string) hostileEnv {
	t.Helper()
	env := hostileEnv{reg: regtest.Registry(t), release: cosigntest.NewKey(t)}
	dir := t.TempDir()
	policyPath := filepath.Join(dir, "policy.yaml")
	writeFile(t, policyPath, []byte(hostilePolicy(t, env.release)))
	data := filepath.Join(dir, "data")
	env.audit = filepath.Join(data, "audit.log")
	env.gw = startGateway(t, append([]string{"--policy", policyPath, "--upstream", env.reg, "--data-dir", data}, extra...)...)
	return env
}

// gwBase is the gateway's base URL.
func (e hostileEnv) gwBase() string { return "http://" + e.gw.addr }

// rawDo sends one request and returns its status and body.
func rawDo(t *testing.T, method, url string, body []byte, header map[string]string) (int, string, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// uploadBlob pushes data as a blob of repo at base (monolithic POST then PUT).
func uploadBlob(t *testing.T, base, repo string, data []byte) {
	t.Helper()
	resp, err := http.Post(base+"/v2/"+repo+"/blobs/uploads/", "application/octet-stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusAccepted || loc == "" {
		t.Fatalf("starting an upload to %s: %s", base, resp.Status)
	}
	if !strings.HasPrefix(loc, "http") {
		loc = base + loc
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	code, body, _ := rawDo(t, http.MethodPut, loc+sep+"digest="+sha256Digest(data), data, map[string]string{"Content-Type": "application/octet-stream"})
	if code != http.StatusCreated {
		t.Fatalf("finishing an upload to %s: %d %s", base, code, body)
	}
}

// putManifest pushes body as repo:ref at base and returns the status and body.
func putManifest(t *testing.T, base, repo, ref, mediaType string, body []byte) (int, string) {
	t.Helper()
	code, b, _ := rawDo(t, http.MethodPut, base+"/v2/"+repo+"/manifests/"+ref, body, map[string]string{"Content-Type": mediaType})
	return code, b
}

// pushImage uploads img's blobs to repo at base and puts its manifest (or manifest, when
// given) under ref; it returns the status.
func pushImage(t *testing.T, base, repo, ref string, img image, manifest []byte) int {
	t.Helper()
	uploadBlob(t, base, repo, img.layer)
	uploadBlob(t, base, repo, img.config)
	if manifest == nil {
		manifest = img.manifest
	}
	code, body := putManifest(t, base, repo, ref, mediaManifest, manifest)
	if code >= 500 {
		t.Fatalf("push of %s:%s: %d %s", repo, ref, code, body)
	}
	return code
}

// pullCodes pulls repo at ref through base with GET and with HEAD and returns both statuses.
func pullCodes(t *testing.T, base, repo, ref string, header map[string]string) (get, head int) {
	t.Helper()
	h := map[string]string{"Accept": mediaManifest}
	for k, v := range header {
		h[k] = v
	}
	get, _, _ = rawDo(t, http.MethodGet, base+"/v2/"+repo+"/manifests/"+ref, nil, h)
	head, _, _ = rawDo(t, http.MethodHead, base+"/v2/"+repo+"/manifests/"+ref, nil, h)
	return get, head
}

// wantRefused checks that every way of pulling repo at each ref through the gateway is
// refused with 403: GET and HEAD, plain, conditional on the digest, and ranged.
func wantRefused(t *testing.T, e hostileEnv, repo string, digest string, refs ...string) {
	t.Helper()
	for _, ref := range refs {
		for _, h := range []map[string]string{nil, {"If-None-Match": `"` + digest + `"`}, {"Range": "bytes=0-15"}, {"If-Modified-Since": "Mon, 01 Jan 2035 00:00:00 GMT"}} {
			if get, head := pullCodes(t, e.gwBase(), repo, ref, h); get != http.StatusForbidden || head != http.StatusForbidden {
				t.Errorf("pull of %s:%s with %v: GET %d, HEAD %d, want 403 for both", repo, ref, h, get, head)
			}
		}
	}
}

// withSubject returns img's manifest with a subject and an artifactType added: what makes
// an image look like a signature to a gate that reads fields instead of content.
func withSubject(t *testing.T, img image, subject string) []byte {
	t.Helper()
	return mustJSON(t, map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaManifest,
		"artifactType":  "application/vnd.dev.sigstore.bundle.v0.3+json",
		"config":        descriptor{MediaType: mediaConfig, Digest: sha256Digest(img.config), Size: int64(len(img.config))},
		"layers":        []descriptor{{MediaType: mediaLayer, Digest: img.layerDigest(), Size: int64(len(img.layer))}},
		"subject":       descriptor{MediaType: mediaManifest, Digest: sha256Digest([]byte("anything")), Size: 8},
	})
}

func TestHostileSubjectDoesNotMakeAnArtifact(t *testing.T) {
	e := newHostileEnv(t)
	signed := newImage(t)
	if code := pushImage(t, e.gwBase(), "prod/app", "2.0.0", signed, nil); code != http.StatusCreated {
		t.Fatalf("push of the release: %d", code)
	}
	cosigntest.SignLegacy(t, e.gw.addr, "prod/app", signed.digest(), e.release)

	evil := newImage(t)
	m := withSubject(t, evil, signed.digest())
	if code := pushImage(t, e.gwBase(), "prod/app", "latest", evil, m); code != http.StatusForbidden {
		t.Errorf("image with a subject pushed as latest: %d, want 403", code)
	}
	if code := pushImage(t, e.gwBase(), "prod/app", "2.0.0", evil, m); code != http.StatusForbidden {
		t.Errorf("image with a subject moving the signed release tag: %d, want 403", code)
	}
	if code := pushImage(t, e.gwBase(), "prod/app", "2.0.1", evil, m); code != http.StatusCreated {
		t.Fatalf("image with a subject under a new release tag: %d, want 201 (it is judged on pull)", code)
	}
	wantRefused(t, e, "prod/app", sha256Digest(m), "2.0.1", sha256Digest(m))
	if get, head := pullCodes(t, e.gwBase(), "prod/app", "2.0.0", nil); get != http.StatusOK || head != http.StatusOK {
		t.Fatalf("the signed release: GET %d HEAD %d, want 200", get, head)
	}
	ev := lastDecision(t, e.audit, "pull", "prod/app", "2.0.1")
	if ev.Verdict != "deny" || len(ev.Results) == 0 {
		t.Fatalf("audit event of the refused pull: %+v", ev)
	}
}

func TestHostileArtifactShapedTags(t *testing.T) {
	e := newHostileEnv(t)
	img := newImage(t)
	sigTag := strings.Replace(img.digest(), ":", "-", 1) + ".sig"
	// Through the gateway: an image is not a signature, whatever its tag.
	if code := pushImage(t, e.gwBase(), "prod/app", sigTag, img, nil); code != http.StatusForbidden {
		t.Errorf("image pushed under %s: %d, want 403", sigTag, code)
	}
	for _, tag := range []string{strings.TrimSuffix(sigTag, ".sig") + ".att", strings.TrimSuffix(sigTag, ".sig") + ".sbom", strings.TrimSuffix(sigTag, ".sig")} {
		if code := pushImage(t, e.gwBase(), "dev/app", tag, img, nil); code != http.StatusForbidden {
			t.Errorf("image pushed under %s in dev: %d, want 403", tag, code)
		}
	}
	// Around the gateway, straight into the registry: pulls through the gateway judge it
	// as the image it is.
	if code := pushImage(t, e.reg, "prod/app", sigTag, img, nil); code != http.StatusCreated {
		t.Fatalf("push into the registry: %d", code)
	}
	wantRefused(t, e, "prod/app", img.digest(), sigTag, img.digest())
}

func TestHostileSignatureTagsAreProtected(t *testing.T) {
	e := newHostileEnv(t)
	img := newImage(t)
	if code := pushImage(t, e.gwBase(), "prod/app", "1.0.0", img, nil); code != http.StatusCreated {
		t.Fatalf("push: %d", code)
	}
	cosigntest.SignLegacy(t, e.gw.addr, "prod/app", img.digest(), e.release)
	sigTag := strings.Replace(img.digest(), ":", "-", 1) + ".sig"
	sigDigest, _ := headDigest(t, e.gwBase(), "prod/app", sigTag)

	// Replacing the signature with another one (an attacker's key) is refused.
	attacker := cosigntest.NewKey(t)
	payload := cosigntest.Payload(e.gw.addr+"/prod/app", img.digest())
	forged, err := mutate.Append(mutate.MediaType(mutate.ConfigMediaType(empty.Image, types.OCIConfigJSON), types.OCIManifestSchema1),
		mutate.Addendum{Layer: static.NewLayer(payload, types.MediaType("application/vnd.dev.cosign.simplesigning.v1+json")),
			Annotations: map[string]string{"dev.cosignproject.cosign/signature": attacker.Sign(t, payload)}})
	if err != nil {
		t.Fatal(err)
	}
	sigRef, err := name.ParseReference(e.gw.addr+"/prod/app:"+sigTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(sigRef, forged); err == nil || !strings.Contains(err.Error(), "DENIED") {
		t.Errorf("replacing the signature: %v, want DENIED", err)
	}
	if got, _ := headDigest(t, e.gwBase(), "prod/app", sigTag); got != sigDigest {
		t.Fatalf("the signature tag moved to %s", got)
	}
	// Deleting it, by tag or by digest, is refused; so is writing the referrers fallback tag.
	for _, ref := range []string{sigTag, sigDigest} {
		if code, body, _ := rawDo(t, http.MethodDelete, e.gwBase()+"/v2/prod/app/manifests/"+ref, nil, nil); code != http.StatusForbidden {
			t.Errorf("DELETE %s: %d %s, want 403", ref, code, body)
		}
	}
	fallback := strings.TrimSuffix(sigTag, ".sig")
	index := mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []any{}})
	if code, body := putManifest(t, e.gwBase(), "prod/app", fallback, "application/vnd.oci.image.index.v1+json", index); code != http.StatusForbidden {
		t.Errorf("client write of the referrers fallback tag: %d %s, want 403", code, body)
	}
	if get, head := pullCodes(t, e.gwBase(), "prod/app", "1.0.0", nil); get != http.StatusOK || head != http.StatusOK {
		t.Fatalf("the signed image after the attacks: GET %d HEAD %d, want 200", get, head)
	}
	// A second signature added beside the first, as cosign does, is accepted and both stay.
	second := cosigntest.NewKey(t)
	cur, err := remote.Image(sigRef)
	if err != nil {
		t.Fatal(err)
	}
	grown, err := mutate.Append(cur, mutate.Addendum{Layer: static.NewLayer(payload, types.MediaType("application/vnd.dev.cosign.simplesigning.v1+json")),
		Annotations: map[string]string{"dev.cosignproject.cosign/signature": second.Sign(t, payload)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(sigRef, grown); err != nil {
		t.Fatalf("adding a signature beside the first: %v", err)
	}
	if ls, _ := grown.Layers(); len(ls) != 2 {
		t.Fatalf("grown signature has %d layers", len(ls))
	}
	if get, _ := pullCodes(t, e.gwBase(), "prod/app", "1.0.0", nil); get != http.StatusOK {
		t.Fatalf("the image after a second signature: %d", get)
	}
}

// headDigest returns the digest a HEAD of repo:ref answers through base, and its status.
func headDigest(t *testing.T, base, repo, ref string) (string, int) {
	t.Helper()
	code, _, h := rawDo(t, http.MethodHead, base+"/v2/"+repo+"/manifests/"+ref, nil, map[string]string{"Accept": mediaManifest})
	return h.Get("Docker-Content-Digest"), code
}

func TestHostileDeleteThenRepush(t *testing.T) {
	e := newHostileEnv(t)
	a, b := newImage(t), newImage(t)
	if code := pushImage(t, e.gwBase(), "dev/app", "3.0.0", a, nil); code != http.StatusCreated {
		t.Fatalf("push: %d", code)
	}
	for _, ref := range []string{"3.0.0", a.digest()} {
		if code, body, _ := rawDo(t, http.MethodDelete, e.gwBase()+"/v2/dev/app/manifests/"+ref, nil, nil); code != http.StatusForbidden {
			t.Errorf("DELETE %s through the gateway: %d %s, want 403", ref, code, body)
		}
	}
	ev := lastDecision(t, e.audit, "delete", "dev/app", a.digest())
	if ev.Verdict != "deny" || len(ev.Results) == 0 {
		t.Fatalf("the refused delete's audit event: %+v", ev)
	}
	// Deleted around the gateway: the tag is gone upstream, but the gateway remembers it.
	if code, body, _ := rawDo(t, http.MethodDelete, e.reg+"/v2/dev/app/manifests/"+a.digest(), nil, nil); code != http.StatusAccepted {
		t.Fatalf("DELETE in the registry: %d %s", code, body)
	}
	if code := pushImage(t, e.gwBase(), "dev/app", "3.0.0", b, nil); code != http.StatusForbidden {
		t.Errorf("re-pointing the deleted tag at another image: %d, want 403", code)
	}
	if code := pushImage(t, e.gwBase(), "dev/app", "3.0.0", a, nil); code != http.StatusCreated {
		t.Errorf("re-pushing the tag's first image: %d, want 201", code)
	}
}

func TestHostileConditionalRequests(t *testing.T) {
	e := newHostileEnv(t)
	unsigned, signed := newImage(t), newImage(t)
	for tag, img := range map[string]image{"4.0.0": unsigned, "4.0.1": signed} {
		if code := pushImage(t, e.gwBase(), "prod/app", tag, img, nil); code != http.StatusCreated {
			t.Fatalf("push %s: %d", tag, code)
		}
	}
	cosigntest.SignLegacy(t, e.gw.addr, "prod/app", signed.digest(), e.release)
	wantRefused(t, e, "prod/app", unsigned.digest(), "4.0.0", unsigned.digest())

	// The signed image: a client whose copy is current gets 304, from the upstream path and
	// from the hot path alike; a stale copy gets the bytes.
	for i := range 3 {
		code, _, h := rawDo(t, http.MethodGet, e.gwBase()+"/v2/prod/app/manifests/4.0.1", nil,
			map[string]string{"Accept": mediaManifest, "If-None-Match": `"` + signed.digest() + `"`})
		if code != http.StatusNotModified {
			t.Fatalf("conditional GET %d of the signed image: %d, want 304", i, code)
		}
		if i == 2 && h.Get("Portcullis-Cache") != "hit" {
			t.Errorf("third conditional GET was not answered from the hot path")
		}
	}
	code, body, _ := rawDo(t, http.MethodGet, e.gwBase()+"/v2/prod/app/manifests/4.0.1", nil,
		map[string]string{"Accept": mediaManifest, "If-None-Match": `"sha256:` + strings.Repeat("0", 64) + `"`})
	if code != http.StatusOK || sha256Digest([]byte(body)) != signed.digest() {
		t.Fatalf("GET with a stale entity tag: %d, want 200 with the manifest", code)
	}
	// Ranges are answered whole, after the decision.
	code, body, _ = rawDo(t, http.MethodGet, e.gwBase()+"/v2/prod/app/manifests/"+signed.digest(), nil,
		map[string]string{"Accept": mediaManifest, "Range": "bytes=0-15"})
	if code != http.StatusOK || sha256Digest([]byte(body)) != signed.digest() {
		t.Fatalf("ranged GET of the signed image: %d (%d bytes), want 200 with the whole manifest", code, len(body))
	}
}

// TestHostileTagRace pushes twenty different images to one new tag at once, through two
// replicas sharing Redis: exactly one is stored, the others are refused as tag moves, and
// the tag upstream names the one accepted.
func TestHostileTagRace(t *testing.T) {
	// The ledger lives in the shared Redis: a repository of this run's own.
	repo := "dev/race-" + strings.ToLower(randomBase62(t, 10))
	regtest.Redis(t, "portcullis:v1:*"+repo+"*") // skips loudly, or fails on CI, without Redis
	reg := regtest.Registry(t)
	release := cosigntest.NewKey(t)
	dir := t.TempDir()
	policyPath := filepath.Join(dir, "policy.yaml")
	writeFile(t, policyPath, []byte(hostilePolicy(t, release)))
	cfg := filepath.Join(dir, "portcullis.yaml")
	writeFile(t, cfg, []byte(fmt.Sprintf("cache:\n  redis:\n    addrs: [%q]\n", regtest.RedisAddr())))
	a := startGateway(t, "--config", cfg, "--policy", policyPath, "--upstream", reg)
	b := startGateway(t, "--config", cfg, "--policy", policyPath, "--upstream", reg)

	base := newImage(t)
	uploadBlob(t, "http://"+a.addr, repo, base.layer)
	manifests := make([][]byte, 20)
	for i := range manifests {
		cfgBlob := mustJSON(t, map[string]any{"architecture": "amd64", "os": "linux",
			"config": map[string]any{"User": "65532", "Labels": map[string]string{"n": fmt.Sprint(i)}},
			"rootfs": map[string]any{"type": "layers", "diff_ids": []string{sha256Digest(base.layerTar)}}})
		uploadBlob(t, "http://"+a.addr, repo, cfgBlob)
		manifests[i] = mustJSON(t, manifestDoc{SchemaVersion: 2, MediaType: mediaManifest,
			Config: descriptor{MediaType: mediaConfig, Digest: sha256Digest(cfgBlob), Size: int64(len(cfgBlob))},
			Layers: []descriptor{{MediaType: mediaLayer, Digest: base.layerDigest(), Size: int64(len(base.layer))}}})
	}
	codes := make([]int, len(manifests))
	bodies := make([]string, len(manifests))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range manifests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			gw := a
			if i%2 == 1 {
				gw = b
			}
			<-start
			codes[i], bodies[i] = putManifest(t, "http://"+gw.addr, repo, "1.0.0", mediaManifest, manifests[i])
		}()
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, c := range codes {
		switch {
		case c == http.StatusCreated && winner < 0:
			winner = i
		case c == http.StatusCreated:
			t.Errorf("pushes %d and %d of different images to one new tag were both accepted", winner, i)
		case c != http.StatusForbidden || !strings.Contains(bodies[i], "already points at"):
			t.Errorf("push %d: %d %s, want 403 as a tag move", i, c, bodies[i])
		}
	}
	if winner < 0 {
		t.Fatalf("no push was accepted: %v", codes)
	}
	if got, _ := headDigest(t, reg, repo, "1.0.0"); got != sha256Digest(manifests[winner]) {
		t.Fatalf("the tag upstream names %s, not the accepted push %s", got, sha256Digest(manifests[winner]))
	}
}
