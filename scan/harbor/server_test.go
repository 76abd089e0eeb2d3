package harbor_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/internal/scantest"
	"github.com/portcullis-dev/portcullis/scan/harbor"
)

// vulnerableImage pushes an image holding a Go program built with golang.org/x/text
// v0.3.5 to a registry that asks for user/password, and returns the registry URL and the
// image digest.
func vulnerableImage(t *testing.T, user, password string) (string, string) {
	t.Helper()
	reg := regtest.StartRegistry(t, regtest.Htpasswd(t, user, password))
	img, err := mutate.AppendLayers(empty.Image, scantest.FileLayer(t, "app/server", scantest.VulnerableGoBinary(t)))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(strings.TrimPrefix(reg.URL, "http://")+"/team/app:1.0.0", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: user, Password: password})); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return reg.URL, d.String()
}

// adapter starts the built-in scanner as an adapter over the real Go advisories.
func adapter(t *testing.T) *httptest.Server {
	t.Helper()
	srv := harbor.NewServer(harbor.NewBuiltin(scantest.GoDB(t)), harbor.WithRefreshAfter(time.Second),
		harbor.WithScannerInfo(harbor.Scanner{Name: "portcullis", Vendor: "portcullis", Version: "test"}))
	ts := httptest.NewServer(srv)
	t.Cleanup(func() { ts.Close(); srv.Close() })
	return ts
}

// harborClient does what Harbor does: it never follows redirects.
func harborClient() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func do(t *testing.T, c *http.Client, method, url, accept, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if body != "" {
		req.Header.Set("Content-Type", harbor.MimeScanRequest)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// pollReport polls as Harbor does until 200 or 500, waiting Refresh-After between polls.
func pollReport(t *testing.T, c *http.Client, url, accept string) (*http.Response, []byte) {
	t.Helper()
	for range 300 {
		resp, body := do(t, c, http.MethodGet, url, accept, "")
		if resp.StatusCode != http.StatusFound {
			return resp, body
		}
		secs, err := strconv.Atoi(resp.Header.Get("Refresh-After"))
		if err != nil || secs < 1 {
			t.Fatalf("302 without a usable Refresh-After: %q", resp.Header.Get("Refresh-After"))
		}
		time.Sleep(time.Duration(secs) * time.Second)
	}
	t.Fatal("the report never came")
	return nil, nil
}

func errorMessage(t *testing.T, resp *http.Response, body []byte) string {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != harbor.MimeError {
		t.Fatalf("error Content-Type %q, want %q (body %s)", ct, harbor.MimeError, body)
	}
	var e harbor.ErrorResponse
	if err := json.Unmarshal(body, &e); err != nil || e.Error.Message == "" {
		t.Fatalf("not an ErrorResponse: %s (%v)", body, err)
	}
	return e.Error.Message
}

func TestServerScansLikeHarborAsks(t *testing.T) {
	regURL, digest := vulnerableImage(t, "robot$harbor", "s3cret")
	ts := adapter(t)
	c := harborClient()

	resp, body := do(t, c, http.MethodGet, ts.URL+"/api/v1/metadata", "", "")
	if resp.StatusCode != http.StatusOK || !harbor.SameMediaType(resp.Header.Get("Content-Type"), harbor.MimeMetadata) {
		t.Fatalf("metadata: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var md harbor.Metadata
	if err := json.Unmarshal(body, &md); err != nil {
		t.Fatal(err)
	}
	if !md.Produces(harbor.MimeReport11) || !md.Produces(harbor.MimeReport10) || md.DBUpdatedAt().IsZero() || md.Scanner.Name != "portcullis" {
		t.Fatalf("metadata lacks the reports or the database date: %s", body)
	}

	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("robot$harbor:s3cret"))
	reqBody := `{"registry":{"url":"` + regURL + `","authorization":"` + auth + `"},"artifact":{"repository":"team/app","digest":"` + digest + `","tag":"1.0.0","mime_type":"` + harbor.MimeOCIManifest + `"}}`
	resp, body = do(t, c, http.MethodPost, ts.URL+"/api/v1/scan", "", reqBody)
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Content-Type") != harbor.MimeScanResponse {
		t.Fatalf("scan: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var sr harbor.ScanResponse
	if err := json.Unmarshal(body, &sr); err != nil || sr.ID == "" {
		t.Fatalf("scan response %s: %v", body, err)
	}

	reportURL := ts.URL + "/api/v1/scan/" + sr.ID + "/report"
	resp, body = pollReport(t, c, reportURL, harbor.MimeReport11)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != harbor.MimeReport11 {
		t.Fatalf("report 1.1: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var rep harbor.Report
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Artifact.Digest != digest || rep.Scanner.Name != "portcullis" || rep.GeneratedAt.IsZero() {
		t.Fatalf("report header: %+v", rep)
	}
	var found *harbor.Vulnerability
	for i, v := range rep.Vulnerabilities {
		if v.ID == "GO-2021-0113" {
			found = &rep.Vulnerabilities[i]
		}
	}
	if found == nil || found.VendorAttributes == nil || found.Package != "golang.org/x/text" || found.Version != "v0.3.5" || found.FixVersion == "" || found.VendorAttributes.(map[string]any)["ecosystem"] != "Go" {
		t.Fatalf("GO-2021-0113 in golang.org/x/text v0.3.5 with a fix not reported: %s", body)
	}

	// The same report in 1.0: its media type, without the 1.1 fields.
	resp, body = do(t, c, http.MethodGet, reportURL, harbor.MimeReport10, "")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != harbor.MimeReport10 {
		t.Fatalf("report 1.0: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if strings.Contains(string(body), "vendor_attributes") || !strings.Contains(string(body), "GO-2021-0113") {
		t.Fatalf("1.0 report: %s", body)
	}

	// A report type the scanner does not produce.
	resp, body = do(t, c, http.MethodGet, reportURL, "application/vnd.security.sbom.report+json; version=1.0", "")
	if resp.StatusCode != http.StatusNotImplemented {
		t.Fatalf("sbom report: %d %s", resp.StatusCode, body)
	}
	errorMessage(t, resp, body)
}

func TestServerRefusesBadRequests(t *testing.T) {
	ts := adapter(t)
	c := harborClient()
	digest := "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b"
	for _, tc := range []struct {
		name, body string
		status     int
		message    string
	}{
		{"not JSON", "THIS AIN'T PARSE", http.StatusBadRequest, "unmarshalling scan request"},
		{"no registry", `{}`, http.StatusUnprocessableEntity, "missing registry.url"},
		{"bad registry", `{"registry":{"url":"INVALID URL"}}`, http.StatusUnprocessableEntity, "invalid registry.url"},
		{"no repository", `{"registry":{"url":"https://core.harbor.domain"}}`, http.StatusUnprocessableEntity, "missing artifact.repository"},
		{"no digest", `{"registry":{"url":"https://core.harbor.domain"},"artifact":{"repository":"library/mongo"}}`, http.StatusUnprocessableEntity, "missing artifact.digest"},
		{"bad digest", `{"registry":{"url":"https://core.harbor.domain"},"artifact":{"repository":"library/mongo","digest":"sha256:xyz"}}`, http.StatusUnprocessableEntity, "invalid artifact.digest"},
		{"bad auth", `{"registry":{"url":"https://core.harbor.domain","authorization":"Digest x"},"artifact":{"repository":"library/mongo","digest":"` + digest + `"}}`, http.StatusUnprocessableEntity, "invalid registry.authorization"},
		{"helm chart", `{"registry":{"url":"https://core.harbor.domain"},"artifact":{"repository":"library/mongo","digest":"` + digest + `","mime_type":"application/vnd.cncf.helm.config.v1+json"}}`, http.StatusNotImplemented, "is not scanned"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, c, http.MethodPost, ts.URL+"/api/v1/scan", "", tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if msg := errorMessage(t, resp, body); !strings.Contains(msg, tc.message) {
				t.Fatalf("message %q, want it to say %q", msg, tc.message)
			}
		})
	}
	resp, body := do(t, c, http.MethodGet, ts.URL+"/api/v1/scan/no-such-id/report", harbor.MimeReport11, "")
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(errorMessage(t, resp, body), "no-such-id") {
		t.Fatalf("unknown id: %d %s", resp.StatusCode, body)
	}
}

func TestServerReportsAPullItMayNotMake(t *testing.T) {
	regURL, digest := vulnerableImage(t, "robot", "right")
	ts := adapter(t)
	c := harborClient()
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("robot:wrong"))
	resp, body := do(t, c, http.MethodPost, ts.URL+"/api/v1/scan", "",
		`{"registry":{"url":"`+regURL+`","authorization":"`+auth+`"},"artifact":{"repository":"team/app","digest":"`+digest+`"}}`)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("scan: %d %s", resp.StatusCode, body)
	}
	var sr harbor.ScanResponse
	if err := json.Unmarshal(body, &sr); err != nil {
		t.Fatal(err)
	}
	resp, body = pollReport(t, c, ts.URL+"/api/v1/scan/"+sr.ID+"/report", harbor.MimeReport11)
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("report of a refused pull: %d %s", resp.StatusCode, body)
	}
	if msg := errorMessage(t, resp, body); !strings.Contains(msg, "UNAUTHORIZED") && !strings.Contains(msg, "401") {
		t.Fatalf("message %q does not say the pull was refused", msg)
	}
}

func TestServerPullsOnlyFromAllowedRegistries(t *testing.T) {
	srv := harbor.NewServer(harbor.NewBuiltin(t.TempDir()), harbor.WithAllowedRegistries("http://127.0.0.1:1"))
	ts := httptest.NewServer(srv)
	t.Cleanup(func() { ts.Close(); srv.Close() })
	c := harborClient()
	digest := "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b"
	resp, body := do(t, c, http.MethodPost, ts.URL+"/api/v1/scan", "",
		`{"registry":{"url":"http://127.0.0.2:1"},"artifact":{"repository":"library/mongo","digest":"`+digest+`"}}`)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(errorMessage(t, resp, body), "not a registry this adapter pulls from") {
		t.Fatalf("another registry: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, c, http.MethodPost, ts.URL+"/api/v1/scan", "",
		`{"registry":{"url":"http://127.0.0.1:1/"},"artifact":{"repository":"library/mongo","digest":"`+digest+`"}}`)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("the allowed registry: %d %s", resp.StatusCode, body)
	}
}
