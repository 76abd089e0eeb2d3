package gate_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/scantest"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/scan/harbor"
)

// Environments choose their scanner: an external adapter (here portcullis's own adapter,
// pulling the image from the registry itself), the built-in one, or both; an adapter that
// is down leaves the decision to the fail mode.
func TestEnvironmentsChooseTheirScanner(t *testing.T) {
	dbDir, reg, up := scanEnv(t)
	bin := scantest.VulnerableGoBinary(t)
	images := map[string][2]string{}
	for _, repo := range []string{"ext/svc", "both/svc", "down/svc", "open/svc", "unknown/svc"} {
		d, m := imageWithFile(t, reg, repo+":1.0.0", "app/svc", bin)
		images[repo] = [2]string{d, string(m)}
	}
	srv := harbor.NewServer(harbor.NewBuiltin(dbDir), harbor.WithRefreshAfter(time.Second),
		harbor.WithScannerInfo(harbor.Scanner{Name: "adapter", Vendor: "portcullis", Version: "test"}))
	adapterSrv := httptest.NewServer(srv)
	t.Cleanup(func() { adapterSrv.Close(); srv.Close() })
	downSrv := httptest.NewServer(srv)
	downSrv.Close() // nothing listens there any more

	client := func(url string) gate.AdapterScanner {
		c, err := harbor.NewClient(url, harbor.WithBound(30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	p, err := policy.Parse([]byte(`version: 1
environments:
  - {name: ext, repositories: ["ext/**"], failMode: closed, scanner: trivy}
  - {name: both, repositories: ["both/**"], failMode: closed, scanner: both}
  - {name: down, repositories: ["down/**"], failMode: closed, scanner: gone}
  - {name: open, repositories: ["open/**"], failMode: open, scanner: gone}
  - {name: unknown, repositories: ["unknown/**"], failMode: closed, scanner: nosuch}
rules:
  - {id: vulns, type: vulnerability, mode: block, severity: high}
`))
	if err != nil {
		t.Fatal(err)
	}
	builtin := gate.NewScanner(up, cache.NewFlight(cache.NewMemory(64<<20)), dbDir)
	newGate := func(adapters map[string]gate.AdapterScanner) *gate.Gate {
		return gate.New(p, up, &memSink{}, gate.WithImages(up), gate.WithScanner(builtin),
			gate.WithAdapters(adapters, harbor.Registry{URL: reg}), gate.WithPullScanWait(time.Minute))
	}
	g := newGate(map[string]gate.AdapterScanner{"trivy": client(adapterSrv.URL), "gone": client(downSrv.URL)})
	pull := func(g *gate.Gate, repo string) gate.Result {
		im := images[repo]
		return g.Admit(context.Background(), gate.Request{Action: policy.ActionPull, Repository: repo, Reference: im[0], Digest: im[0], Manifest: []byte(im[1])})
	}

	res := pull(g, "ext/svc")
	if res.Verdict != policy.VerdictDeny || !strings.Contains(res.Message, "GO-2022-1059") || res.Vulnerabilities == nil {
		t.Fatalf("adapter-scanned pull: %s %q, want denied for the advisories", res.Verdict, res.Message)
	}
	for _, f := range res.Vulnerabilities.Findings {
		if !strings.HasPrefix(f.Source, "adapter test (database ") {
			t.Fatalf("finding %s from the adapter names source %q", f.ID, f.Source)
		}
	}
	if !strings.Contains(res.Vulnerabilities.DBRevision, "adapter trivy") {
		t.Fatalf("evidence revision %q does not name the adapter", res.Vulnerabilities.DBRevision)
	}

	// both: needs exactly one adapter; with one, the union, each finding naming its source.
	res = pull(g, "both/svc")
	if res.Undecided == "" || !strings.Contains(res.Undecided, "want exactly one") {
		t.Fatalf("both with two adapters: %+v", res)
	}
	one := newGate(map[string]gate.AdapterScanner{"trivy": client(adapterSrv.URL)})
	res = pull(one, "both/svc")
	if res.Verdict != policy.VerdictDeny || res.Vulnerabilities == nil {
		t.Fatalf("both: %s %q", res.Verdict, res.Message)
	}
	var builtinN, adapterN int
	for _, f := range res.Vulnerabilities.Findings {
		if f.Source == "" {
			builtinN++
		} else {
			adapterN++
		}
	}
	if builtinN == 0 || adapterN != builtinN {
		t.Fatalf("both: %d built-in and %d adapter findings, want the same non-zero count from each", builtinN, adapterN)
	}

	// Adapter down: the fail mode answers.
	res = pull(g, "down/svc")
	if res.Verdict == policy.VerdictAllow || res.FailMode != policy.FailClosed || !strings.Contains(res.Undecided, "scanner adapter gone") {
		t.Fatalf("adapter down, closed: %+v", res)
	}
	res = pull(g, "open/svc")
	if res.Verdict != policy.VerdictWarn || res.FailMode != policy.FailOpen || !strings.Contains(res.Undecided, "scanner adapter gone") {
		t.Fatalf("adapter down, open: %+v", res)
	}
	// A name the gateway does not configure is a lasting misconfiguration.
	res = pull(g, "unknown/svc")
	if !res.Lasting || !strings.Contains(res.Undecided, `scanner "nosuch" is not a scanner adapter of this gateway (configured: gone, trivy)`) {
		t.Fatalf("unknown adapter: %+v", res)
	}
}
