package proxy_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/proxy"
	"github.com/portcullis-dev/portcullis/upstream"
)

type discardSink struct{}

func (discardSink) Record(context.Context, audit.Event) error { return nil }

const admitPolicy = `version: 1
exceptionProcess: "see go/exceptions"
environments:
  - name: dev
    repositories: ["**"]
rules:
  - id: no-latest
    type: tag
    mode: block
    forbidden: [latest]
  - id: semver
    type: tag
    mode: warn
    allowed: ['^\d+\.\d+\.\d+$']
`

func gatedProxy(t *testing.T) string {
	t.Helper()
	base, _ := gatedProxyAndUpstream(t)
	return base
}

func gatedProxyAndUpstream(t *testing.T) (gateway, upstreamURL string) {
	t.Helper()
	reg := regtest.Registry(t)
	p, err := policy.Parse([]byte(admitPolicy))
	if err != nil {
		t.Fatal(err)
	}
	up, err := upstream.New(reg, http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	g := gate.New(p, up, discardSink{}, gate.WithClock(func() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) }))
	return regtest.Gateway(t, reg, proxy.WithGate(g)).URL, reg
}

func putManifest(t *testing.T, base, repo, ref string) *http.Response {
	t.Helper()
	body := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`
	// The empty config blob must exist for the upstream to accept the manifest.
	resp, err := http.Post(base+"/v2/"+repo+"/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusAccepted || loc == "" {
		t.Fatalf("upload start: %s, Location %q", resp.Status, loc)
	}
	if strings.HasPrefix(loc, "/") {
		loc = base + loc
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	req, _ := http.NewRequest(http.MethodPut, loc+sep+"digest=sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", strings.NewReader("{}"))
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("config upload: %s", resp.Status)
	}
	req, _ = http.NewRequest(http.MethodPut, base+"/v2/"+repo+"/manifests/"+ref, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestDeniedPushIsOCIDeniedWithTheFix(t *testing.T) {
	base := gatedProxy(t)
	resp := putManifest(t, base, "team/app", "latest")
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %s, want 403", resp.Status)
	}
	var doc struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Detail  struct {
				Rules []string `json:"rules"`
			} `json:"detail"`
		} `json:"errors"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Errors) != 1 || doc.Errors[0].Code != "DENIED" {
		t.Fatalf("errors %+v, want one DENIED", doc.Errors)
	}
	msg := doc.Errors[0].Message
	for _, want := range []string{"[no-latest]", "push an immutable tag", "go/exceptions"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if len(doc.Errors[0].Detail.Rules) != 1 || doc.Errors[0].Detail.Rules[0] != "no-latest" {
		t.Errorf("detail rules %v, want [no-latest]", doc.Errors[0].Detail.Rules)
	}
	// Nothing was stored upstream.
	head, _ := http.Head(base + "/v2/team/app/manifests/latest")
	if head.StatusCode != http.StatusForbidden && head.StatusCode != http.StatusNotFound {
		t.Fatalf("HEAD latest after a denied push: %s", head.Status)
	}
}

func TestWarnedPushIsAcceptedWithWarningHeader(t *testing.T) {
	base := gatedProxy(t)
	resp := putManifest(t, base, "team/app", "nightly")
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %s, want 201", resp.Status)
	}
	w := resp.Header.Values("Warning")
	if len(w) != 1 || !strings.HasPrefix(w[0], `299 - "`) || !strings.Contains(w[0], "[semver]") || len(w[0]) > 1100 {
		t.Fatalf("Warning headers %q, want one 299 warning naming semver", w)
	}
	// Pulling it warns too, and serves the bytes.
	greq, _ := http.NewRequest(http.MethodGet, base+"/v2/team/app/manifests/nightly", nil)
	greq.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	get, err := http.DefaultClient.Do(greq)
	if err != nil {
		t.Fatal(err)
	}
	defer get.Body.Close()
	if get.StatusCode != http.StatusOK || len(get.Header.Values("Warning")) != 1 {
		t.Fatalf("pull: %s with warnings %q", get.Status, get.Header.Values("Warning"))
	}
}

func TestPullOfForbiddenTagIsDenied(t *testing.T) {
	base, reg := gatedProxyAndUpstream(t)
	// latest exists upstream (pushed around the gateway); pulling it through the gateway is denied.
	putManifest(t, reg, "team/app", "latest").Body.Close()
	req, _ := http.NewRequest(http.MethodGet, base+"/v2/team/app/manifests/latest", nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "DENIED") || strings.Contains(string(body), "schemaVersion") {
		t.Fatalf("status %s body %s, want 403 DENIED without the manifest", resp.Status, body)
	}
	// A tag the upstream does not have: its 404 comes back untouched.
	req, _ = http.NewRequest(http.MethodGet, base+"/v2/team/app/manifests/9.9.9", nil)
	missing, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	missing.Body.Close()
	if missing.StatusCode != http.StatusNotFound {
		t.Fatalf("missing tag: %s, want the upstream's 404", missing.Status)
	}
}
