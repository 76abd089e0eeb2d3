package harbor_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/scan/harbor"
	"github.com/portcullis-dev/portcullis/scan/match"
)

const (
	mongoDigest  = "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b"
	ubuntuDigest = "sha256:d5b40885539615b9aeb7119516427959a158386af13e00d79a7da43ad1b3fb87"
)

func testdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixture is a spec-exact adapter answering with reports captured from the Trivy adapter
// (testdata/README.md): each scan answers 302 (with a Location it must not follow)
// pending times, then the report in the type asked for.
type fixture struct {
	metadata    []byte
	report      []byte
	only10      bool   // refuses the 1.1 report with 501, although metadata offers it
	pending     int    // 302s per scan before the report
	refresh     string // Refresh-After of a 302; "" sends none
	forgetFirst bool   // the first scan's id is unknown (404), as after an adapter restart
	failReport  bool   // the scan fails: 500

	mu       sync.Mutex
	posts    int
	polls    map[string]int
	accepts  []string
	trapHits int
	requests []harbor.ScanRequest
}

func (f *fixture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fail := func(status int, msg string) {
		w.Header().Set("Content-Type", harbor.MimeError)
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"message": msg}})
	}
	switch p := r.URL.Path; {
	case p == "/trap":
		f.trapHits++
		fail(http.StatusTeapot, "followed a Location")
	case p == "/api/v1/metadata" && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", harbor.MimeMetadata)
		_, _ = w.Write(f.metadata)
	case p == "/api/v1/scan" && r.Method == http.MethodPost:
		var req harbor.ScanRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			fail(http.StatusBadRequest, "unmarshalling scan request: "+err.Error())
			return
		}
		if req.Registry.URL == "" || req.Artifact.Repository == "" || req.Artifact.Digest == "" {
			fail(http.StatusUnprocessableEntity, "missing field")
			return
		}
		f.posts++
		f.requests = append(f.requests, req)
		w.Header().Set("Content-Type", harbor.MimeScanResponse)
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"id": "job:` + string(rune('0'+f.posts)) + `"}`))
	case strings.HasPrefix(p, "/api/v1/scan/") && strings.HasSuffix(p, "/report"):
		id := strings.TrimSuffix(strings.TrimPrefix(p, "/api/v1/scan/"), "/report")
		accept := r.Header.Get("Accept")
		f.accepts = append(f.accepts, accept)
		if f.forgetFirst && id == "job:1" {
			fail(http.StatusNotFound, "cannot find scan job: "+id)
			return
		}
		if !harbor.SameMediaType(accept, harbor.MimeReport10) && (f.only10 || !harbor.SameMediaType(accept, harbor.MimeReport11)) {
			fail(http.StatusNotImplemented, "unsupported mime type: "+accept)
			return
		}
		if f.polls == nil {
			f.polls = map[string]int{}
		}
		f.polls[id]++
		if f.polls[id] <= f.pending {
			if f.refresh != "" {
				w.Header().Set("Refresh-After", f.refresh)
			}
			w.Header().Set("Location", "/trap")
			w.WriteHeader(http.StatusFound)
			return
		}
		if f.failReport {
			fail(http.StatusInternalServerError, "queue worker failed")
			return
		}
		w.Header().Set("Content-Type", accept)
		_, _ = w.Write(f.report)
	default:
		fail(http.StatusNotFound, "no such operation")
	}
}

func startFixture(t *testing.T, f *fixture) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(f)
	t.Cleanup(ts.Close)
	return ts
}

func newClient(t *testing.T, url string, opts ...harbor.ClientOption) *harbor.Client {
	t.Helper()
	c, err := harbor.NewClient(url, append([]harbor.ClientOption{harbor.WithDefaultRefresh(50 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var gatewayRegistry = harbor.Registry{URL: "https://gateway.example", Authorization: "Basic c2Nhbjp4"}

func TestClientReadsTrivyReport11WithCVSS(t *testing.T) {
	f := &fixture{metadata: testdata(t, "trivy-metadata.json"), report: testdata(t, "trivy-report-cvss.json"), pending: 2, refresh: "1"}
	ts := startFixture(t, f)
	c := newClient(t, ts.URL)
	ev, err := c.Scan(context.Background(), gatewayRegistry, harbor.Artifact{Repository: "library/ubuntu", Digest: ubuntuDigest})
	if err != nil {
		t.Fatal(err)
	}
	if f.trapHits != 0 {
		t.Fatalf("followed a 302's Location %d times", f.trapHits)
	}
	for _, a := range f.accepts {
		if a != harbor.MimeReport11 {
			t.Fatalf("asked for %q of an adapter producing 1.1", a)
		}
	}
	if len(f.accepts) != 3 {
		t.Fatalf("polled %d times, want 2 refreshes then the report", len(f.accepts))
	}
	if got := f.requests[0]; got.Registry != gatewayRegistry || got.Artifact.Digest != ubuntuDigest {
		t.Fatalf("scan request %+v", got)
	}
	if len(ev.Findings) != 1 {
		t.Fatalf("findings %+v", ev.Findings)
	}
	got := ev.Findings[0]
	if got.ID != "CVE-2019-18276" || got.Package.Name != "bash" || got.Package.Version != "5.0-6ubuntu1.1" ||
		got.Severity != match.SeverityLow || got.CVSS != 3.2 || got.CVSSVector != "CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N" ||
		got.Fixable || got.Fixed != "" || !strings.HasPrefix(got.Summary, "An issue was discovered in disable_priv_mode") {
		t.Fatalf("finding %+v", got)
	}
	if ev.Provenance() != "Trivy v0.9.1 (database 2020-03-18T07:47:24Z)" || ev.ReportType != harbor.MimeReport11 {
		t.Fatalf("provenance %q, report type %q", ev.Provenance(), ev.ReportType)
	}
}

func TestClientFallsBackToReport10(t *testing.T) {
	f := &fixture{metadata: testdata(t, "trivy-metadata.json"), report: testdata(t, "trivy-report-1.0.json"), only10: true}
	ts := startFixture(t, f)
	ev, err := newClient(t, ts.URL).Scan(context.Background(), gatewayRegistry, harbor.Artifact{Repository: "library/mongo", Digest: mongoDigest})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.accepts) != 2 || f.accepts[0] != harbor.MimeReport11 || f.accepts[1] != harbor.MimeReport10 {
		t.Fatalf("asked for %q, want 1.1 then 1.0", f.accepts)
	}
	got := ev.Findings[0]
	if got.ID != "CVE-2019-1111" || got.Severity != match.SeverityCritical || got.Fixed != "2.1" || !got.Fixable || ev.ReportType != harbor.MimeReport10 {
		t.Fatalf("finding %+v from %s", got, ev.ReportType)
	}
}

func TestClientAsksReport10OfAnAdapterProducingOnlyIt(t *testing.T) {
	f := &fixture{metadata: testdata(t, "trivy-metadata-1.0.json"), report: testdata(t, "trivy-report-1.0.json")}
	ts := startFixture(t, f)
	ev, err := newClient(t, ts.URL).Scan(context.Background(), gatewayRegistry, harbor.Artifact{Repository: "library/mongo", Digest: mongoDigest})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.accepts) != 1 || f.accepts[0] != harbor.MimeReport10 {
		t.Fatalf("asked for %q, want only 1.0", f.accepts)
	}
	if ev.Provenance() != "Trivy 0.1.6 (database date unknown)" {
		t.Fatalf("provenance %q", ev.Provenance())
	}
}

func TestClientResubmitsAForgottenScanAndWaitsWithoutRefreshAfter(t *testing.T) {
	f := &fixture{metadata: testdata(t, "trivy-metadata.json"), report: testdata(t, "trivy-report-1.0.json"), forgetFirst: true, pending: 1}
	ts := startFixture(t, f)
	ev, err := newClient(t, ts.URL).Scan(context.Background(), gatewayRegistry, harbor.Artifact{Repository: "library/mongo", Digest: mongoDigest})
	if err != nil {
		t.Fatal(err)
	}
	if f.posts != 2 || len(ev.Findings) != 1 || f.trapHits != 0 {
		t.Fatalf("posts %d, findings %d, trap %d: want a second submission and the report", f.posts, len(ev.Findings), f.trapHits)
	}
}

func TestClientGivesUpAtItsBound(t *testing.T) {
	f := &fixture{metadata: testdata(t, "trivy-metadata.json"), report: testdata(t, "trivy-report-1.0.json"), pending: 1 << 30, refresh: "1"}
	ts := startFixture(t, f)
	_, err := newClient(t, ts.URL, harbor.WithBound(1500*time.Millisecond)).Scan(context.Background(), gatewayRegistry, harbor.Artifact{Repository: "library/mongo", Digest: mongoDigest})
	if err == nil || !strings.Contains(err.Error(), "no report of "+mongoDigest+" within 1.5s") {
		t.Fatalf("err %v, want the bound named", err)
	}
}

func TestClientReportsAdapterFailures(t *testing.T) {
	f := &fixture{metadata: testdata(t, "trivy-metadata.json"), report: testdata(t, "trivy-report-1.0.json"), failReport: true}
	ts := startFixture(t, f)
	c := newClient(t, ts.URL)
	_, err := c.Scan(context.Background(), gatewayRegistry, harbor.Artifact{Repository: "library/mongo", Digest: mongoDigest})
	if err == nil || !strings.Contains(err.Error(), "HTTP 500: queue worker failed") {
		t.Fatalf("failed scan: %v", err)
	}
	// A report about another artifact is refused.
	f.failReport = false
	_, err = c.Scan(context.Background(), gatewayRegistry, harbor.Artifact{Repository: "library/ubuntu", Digest: ubuntuDigest})
	if err == nil || !strings.Contains(err.Error(), "answered one of "+mongoDigest) {
		t.Fatalf("report of another digest: %v", err)
	}
	// Adapter down.
	ts.Close()
	down := newClient(t, ts.URL)
	if _, err := down.Scan(context.Background(), gatewayRegistry, harbor.Artifact{Repository: "library/mongo", Digest: mongoDigest}); err == nil {
		t.Fatal("a scan with the adapter down succeeded")
	}
}

func TestClientKeepsFindingsPerDigestScannerAndDatabase(t *testing.T) {
	f := &fixture{metadata: testdata(t, "trivy-metadata.json"), report: testdata(t, "trivy-report-1.0.json")}
	ts := startFixture(t, f)
	store := cache.NewMemory(1 << 20)
	c := newClient(t, ts.URL, harbor.WithStore(store, time.Hour), harbor.WithMetadataTTL(0))
	a := harbor.Artifact{Repository: "library/mongo", Digest: mongoDigest}
	for range 2 {
		if _, err := c.Scan(context.Background(), gatewayRegistry, a); err != nil {
			t.Fatal(err)
		}
	}
	if f.posts != 1 {
		t.Fatalf("%d scans submitted for one digest, scanner and database", f.posts)
	}
	f.mu.Lock()
	f.metadata = []byte(strings.Replace(string(f.metadata), "2020-03-18T07:47:24Z", "2020-03-19T07:47:24Z", 1))
	f.mu.Unlock()
	ev, err := c.Scan(context.Background(), gatewayRegistry, a)
	if err != nil {
		t.Fatal(err)
	}
	if f.posts != 2 || !strings.Contains(ev.Provenance(), "2020-03-19") {
		t.Fatalf("a new database date did not scan again: %d submissions, %s", f.posts, ev.Provenance())
	}
	// The adapter goes down: what it already found is still known, nothing new is.
	ts.Close()
	if ev, err := c.Scan(context.Background(), gatewayRegistry, a); err != nil || len(ev.Findings) != 1 {
		t.Fatalf("kept findings with the adapter down: %v %+v", err, ev)
	}
	if _, err := c.Scan(context.Background(), gatewayRegistry, harbor.Artifact{Repository: "library/ubuntu", Digest: ubuntuDigest}); err == nil {
		t.Fatal("a new digest scanned with the adapter down")
	}
}

// TestClientDrivesThePortcullisAdapter drives this package's own adapter, which scans a
// real image in a real registry.
func TestClientDrivesThePortcullisAdapter(t *testing.T) {
	regURL, digest := vulnerableImage(t, "robot", "pull-only")
	ts := adapter(t)
	store := cache.NewMemory(1 << 20)
	c := newClient(t, ts.URL, harbor.WithStore(store, time.Hour))
	reg := harbor.Registry{URL: regURL, Authorization: "Basic cm9ib3Q6cHVsbC1vbmx5"} // robot:pull-only
	ev, err := c.Scan(context.Background(), reg, harbor.Artifact{Repository: "team/app", Digest: digest, MimeType: harbor.MimeOCIManifest})
	if err != nil {
		t.Fatal(err)
	}
	var got *match.Finding
	for i := range ev.Findings {
		if ev.Findings[i].ID == "GO-2021-0113" {
			got = &ev.Findings[i]
		}
	}
	if got == nil || got.Package.Name != "golang.org/x/text" || !got.Fixable || got.Ecosystem != "Go" || ev.ReportType != harbor.MimeReport11 {
		t.Fatalf("GO-2021-0113 not found as the built-in scanner names it: %+v", ev)
	}
	if !strings.HasPrefix(ev.Provenance(), "portcullis test (database ") {
		t.Fatalf("provenance %q", ev.Provenance())
	}
}
