package gate_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/scantest"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/scan/harbor"
)

// trivyFixture is an adapter answering with the Trivy adapter's real metadata and report
// (scan/harbor/testdata), the report's artifact digest set to the one asked for.
func trivyFixture(t *testing.T) *httptest.Server {
	t.Helper()
	meta, err := os.ReadFile("../scan/harbor/testdata/trivy-metadata.json")
	if err != nil {
		t.Fatal(err)
	}
	report, err := os.ReadFile("../scan/harbor/testdata/trivy-report-cvss.json")
	if err != nil {
		t.Fatal(err)
	}
	var digest string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/api/v1/metadata":
			w.Header().Set("Content-Type", harbor.MimeMetadata)
			_, _ = w.Write(meta)
		case r.URL.Path == "/api/v1/scan" && r.Method == http.MethodPost:
			var b strings.Builder
			buf := make([]byte, 4096)
			n, _ := r.Body.Read(buf)
			b.Write(buf[:n])
			if i := strings.Index(b.String(), `"digest":"`); i >= 0 {
				digest = b.String()[i+10 : i+10+71]
			}
			w.Header().Set("Content-Type", harbor.MimeScanResponse)
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte(`{"id":"1"}`))
		case r.URL.Path == "/api/v1/scan/1/report":
			w.Header().Set("Content-Type", harbor.MimeReport11)
			_, _ = w.Write([]byte(strings.Replace(string(report), "sha256:d5b40885539615b9aeb7119516427959a158386af13e00d79a7da43ad1b3fb87", digest, 1)))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// An environment lists three scanners: the built-in one, portcullis's own adapter (they
// agree) and a Trivy adapter answering with a real report of another image. The findings
// are united, each naming its source, and the evidence and the audit event list where
// the scanners disagree: every advisory the built-in scanner found in the real vulnerable
// Go binary is missing from Trivy's report, and Trivy's bash CVE from the other two.
func TestScannersDisagree(t *testing.T) {
	dbDir, reg, up := scanEnv(t)
	digest, manifest := imageWithFile(t, reg, "prod/svc:1.0.0", "app/svc", scantest.VulnerableGoBinary(t))
	own := harbor.NewServer(harbor.NewBuiltin(dbDir), harbor.WithRefreshAfter(time.Second),
		harbor.WithScannerInfo(harbor.Scanner{Name: "own", Vendor: "portcullis", Version: "test"}))
	ownSrv := httptest.NewServer(own)
	t.Cleanup(func() { ownSrv.Close(); own.Close() })
	client := func(url string) gate.AdapterScanner {
		c, err := harbor.NewClient(url, harbor.WithBound(30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	p, err := policy.Parse([]byte(`version: 1
environments:
  - {name: prod, repositories: ["prod/**"], failMode: closed, scanner: [builtin, own, trivy]}
rules:
  - {id: vulns, type: vulnerability, mode: block, severity: critical}
`))
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	g := gate.New(p, up, sink, gate.WithImages(up), gate.WithPullScanWait(time.Minute),
		gate.WithScanner(gate.NewScanner(up, cache.NewFlight(cache.NewMemory(64<<20)), dbDir)),
		gate.WithAdapters(map[string]gate.AdapterScanner{"own": client(ownSrv.URL), "trivy": client(trivyFixture(t).URL)}, harbor.Registry{URL: reg}))
	res := g.Admit(context.Background(), gate.Request{Action: policy.ActionPull, Repository: "prod/svc", Reference: digest, Digest: digest, Manifest: []byte(manifest)})
	ev := res.Vulnerabilities
	if ev == nil || res.Undecided != "" {
		t.Fatalf("no evidence: %+v", res)
	}
	for _, want := range []string{"adapter own: own test", "adapter trivy: Trivy v0.9.1 (database 2020-03-18T07:47:24Z)"} {
		if !strings.Contains(ev.DBRevision, want) {
			t.Errorf("dbRevision %q lacks %q", ev.DBRevision, want)
		}
	}
	var builtinIDs []string
	sources := map[string]int{}
	for _, f := range ev.Findings {
		sources[strings.Fields(f.Source + " builtin")[0]]++
		if f.Source == "" {
			builtinIDs = append(builtinIDs, f.ID)
		}
	}
	if sources["builtin"] == 0 || sources["own"] != sources["builtin"] || sources["Trivy"] != 1 {
		t.Fatalf("findings by source %v, want the built-in and own alike and Trivy's one", sources)
	}
	var bash bool
	missingFromTrivy := 0
	for _, d := range ev.Disagreements {
		switch {
		case d.Package == "bash":
			bash = d.ID == "CVE-2019-18276" && slices.Equal(d.MissingFrom, []string{"builtin", "own"}) && slices.Equal(d.On, []string{"missing"}) &&
				len(d.Reports) == 1 && d.Reports[0].Scanner == "trivy" && d.Reports[0].Severity == "low"
		case slices.Equal(d.MissingFrom, []string{"trivy"}) && slices.Equal(d.On, []string{"missing"}) && len(d.Reports) == 2:
			missingFromTrivy++
		default:
			t.Errorf("unexpected disagreement %+v", d)
		}
	}
	if !bash || missingFromTrivy != len(builtinIDs) {
		t.Fatalf("disagreements %+v: want bash's CVE missing from builtin and own, and each of the %d built-in findings missing from trivy", ev.Disagreements, len(builtinIDs))
	}
	if len(sink.events) != 1 || sink.events[0].Vulnerabilities == nil || len(sink.events[0].Vulnerabilities.Disagreements) != len(ev.Disagreements) {
		t.Fatalf("the audit event does not carry the disagreements")
	}

	// Names the gateway does not configure: a lasting error naming them.
	p2, err := policy.Parse([]byte("version: 1\nenvironments:\n  - {name: prod, repositories: [\"**\"], scanner: [builtin, aqua, sysdig]}\nrules:\n  - {id: vulns, type: vulnerability, mode: block, severity: critical}\n"))
	if err != nil {
		t.Fatal(err)
	}
	g.SetPolicy(p2)
	res = g.Admit(context.Background(), gate.Request{Action: policy.ActionPull, Repository: "prod/svc", Reference: digest, Digest: digest, Manifest: []byte(manifest)})
	if !res.Lasting || !strings.Contains(res.Undecided, `scanners "aqua", "sysdig" are not scanner adapters of this gateway (configured: own, trivy)`) {
		t.Fatalf("unknown adapters: %+v", res.Undecided)
	}
}
