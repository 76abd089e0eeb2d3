package gate_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/cosigntest"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/internal/scantest"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/verify"
)

// countingScanner counts the gateway's own scans.
type countingScanner struct {
	next gate.VulnerabilityScanner
	n    atomic.Int64
}

func (c *countingScanner) Scan(ctx context.Context, repo, digest string, manifest []byte) (gate.Report, error) {
	c.n.Add(1)
	return c.next.Scan(ctx, repo, digest, manifest)
}

const (
	cosignVuln  = "https://cosign.sigstore.dev/attestation/vuln/v1"
	inTotoVulns = "https://in-toto.io/attestation/vulns/v0.2"
)

// ciReport reads a real scanner report from scan/ciresult's test data.
func ciReport(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "scan", "ciresult", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ciPredicate is a cosign vuln (or in-toto vulns) predicate around report.
func ciPredicate(t *testing.T, uri string, report []byte, finished time.Time, dbUpdate time.Time) []byte {
	t.Helper()
	db := map[string]any{"uri": "", "version": ""}
	if !dbUpdate.IsZero() {
		db["lastUpdate"] = dbUpdate.UTC().Format(time.RFC3339)
	}
	b, err := json.Marshal(map[string]any{
		"invocation": map[string]any{"parameters": nil, "uri": "https://ci.example/pipelines/42", "event_id": "42", "builder.id": "ci"},
		"scanner":    map[string]any{"uri": uri, "version": "", "db": db, "result": json.RawMessage(report)},
		"metadata":   map[string]any{"scanStartedOn": finished.Add(-time.Minute).UTC().Format(time.RFC3339), "scanFinishedOn": finished.UTC().Format(time.RFC3339)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ciWorld is a registry, a gate whose prod environment takes CI scans signed by ci-key,
// and the gate's own scanner, counted.
type ciWorld struct {
	reg, host string
	bin       []byte
	key       cosigntest.Key
	scanner   *countingScanner
	sink      *memSink
	g         *gate.Gate
	n         int
}

func newCIWorld(t *testing.T) *ciWorld {
	dbDir, reg, up := scanEnv(t)
	w := &ciWorld{reg: reg, host: strings.TrimPrefix(reg, "http://"), bin: scantest.VulnerableGoBinary(t), key: cosigntest.NewKey(t), sink: &memSink{}}
	p, err := policy.Parse([]byte("version: 1\nauthorities:\n" + w.key.AuthorityYAML(t, "ci-key") + `environments:
  - {name: prod, repositories: ["prod/**"], failMode: closed, ciScans: {authorities: [ci-key]}}
  - {name: intoto, repositories: ["intoto/**"], failMode: closed, ciScans: {authorities: [ci-key], predicateTypes: ["` + inTotoVulns + `"], maxAge: 3d}}
rules:
  - {id: vulns, type: vulnerability, mode: block, severity: low}
`))
	if err != nil {
		t.Fatal(err)
	}
	flight := cache.NewFlight(cache.NewMemory(64 << 20))
	w.scanner = &countingScanner{next: gate.NewScanner(up, flight, dbDir)}
	w.g = gate.New(p, up, w.sink, gate.WithImages(up), gate.WithScanner(w.scanner), gate.WithPullScanWait(time.Minute),
		gate.WithSignatures(gate.NewCachedVerifier(verify.New(up), flight)))
	return w
}

// image pushes a new image (the vulnerable Go binary and a file of its own) to repo.
func (w *ciWorld) image(t *testing.T, repo string) (digest string, manifest []byte) {
	t.Helper()
	w.n++
	img, err := mutate.AppendLayers(empty.Image, scantest.FileLayer(t, "app/svc", w.bin), scantest.FileLayer(t, "etc/build-id", []byte(t.Name()+string(rune('a'+w.n)))))
	if err != nil {
		t.Fatal(err)
	}
	return regtest.WriteImage(t, w.reg, repo+":1.0.0", img)
}

func (w *ciWorld) pull(t *testing.T, repo, digest string, manifest []byte) gate.Result {
	t.Helper()
	return w.g.Admit(context.Background(), gate.Request{Action: policy.ActionPull, Repository: repo, Reference: digest, Digest: digest, Manifest: manifest})
}

// attestAtt pushes predicate about subject, signed by k, as a cosign v2 .att of digest.
func (w *ciWorld) attestAtt(t *testing.T, repo, digest, subject, predicateType string, predicate []byte, k cosigntest.Key) {
	t.Helper()
	cosigntest.PushAttestationTag(t, w.host, repo, digest, cosigntest.AttestationLayer{
		Envelope: k.Envelope(t, cosigntest.Statement(t, w.host, repo, subject, predicateType, predicate)), PredicateType: predicateType})
}

// attestBundle pushes predicate signed by k as a cosign v3 bundle referrer of digest.
func (w *ciWorld) attestBundle(t *testing.T, repo, digest, predicateType string, predicate []byte, k cosigntest.Key) {
	t.Helper()
	env := k.Envelope(t, cosigntest.Statement(t, w.host, repo, digest, predicateType, predicate))
	cosigntest.PushAttestationBundle(t, w.host, repo, digest, predicateType, k.AttestationBundle(t, env))
}

// A valid signed CI scan stands for the gateway's scan, in each report format and either
// storage: the built-in scanner does not run, the gateway's own rule judges CI's
// findings (whatever CI concluded), and the decision and its audit event name the source.
func TestCIScanEvidenceUsed(t *testing.T) {
	w := newCIWorld(t)
	now := time.Now()
	important := strings.Replace(string(ciReport(t, "twistcli-packagename.json")), `"severity": "critical"`, `"severity": "important"`, 1)
	for _, tc := range []struct {
		name, uri string
		report    []byte
		bundle    bool
		tool      string
		id, sev   string
	}{
		{"trivy", "pkg:github/aquasecurity/trivy@0.57.0", ciReport(t, "trivy-alpine-310.json"), false, "trivy", "CVE-2019-1549", "medium"},
		{"grype", "https://github.com/anchore/grype", ciReport(t, "grype-imgs.json"), true, "grype", "CVE-1999-0002", "critical"},
		// CI's twistcli said vulnerabilityScanPassed: true; the gateway's rule (severity low) denies.
		{"twistcli passed in CI", "", ciReport(t, "twistcli-no-cvss.json"), false, "twistcli", "CVE-2025-1390", "low"},
		{"twistcli important", "", []byte(important), true, "twistcli", "CVE-2025-48913", "high"},
		{"sysdig", "", ciReport(t, "sysdig-cli-dummy-vuln-app.json"), true, "sysdig-cli-scanner", "CVE-2023-50782", "high"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, m := w.image(t, "prod/svc")
			pred := ciPredicate(t, tc.uri, tc.report, now.Add(-time.Hour), time.Time{})
			if tc.bundle {
				w.attestBundle(t, "prod/svc", d, cosignVuln, pred, w.key)
			} else {
				w.attestAtt(t, "prod/svc", d, d, cosignVuln, pred, w.key)
			}
			before := w.scanner.n.Load()
			res := w.pull(t, "prod/svc", d, m)
			if got := w.scanner.n.Load() - before; got != 0 {
				t.Errorf("the built-in scanner ran %d times despite valid CI evidence", got)
			}
			ev := res.Vulnerabilities
			if ev == nil || ev.CIScan == nil {
				t.Fatalf("no CI scan evidence: %+v (%s %q)", ev, res.Verdict, res.Undecided)
			}
			if ev.CIScan.Tool != tc.tool || ev.CIScan.Authorities[0] != "ci-key" || ev.CIScanNote != "" {
				t.Errorf("CI scan %+v note %q", ev.CIScan, ev.CIScanNote)
			}
			found := false
			for _, f := range ev.Findings {
				if f.ID == tc.id {
					found = true
					if f.Severity != tc.sev || !strings.HasPrefix(f.Source, "CI scan "+tc.tool) {
						t.Errorf("%s: severity %q source %q, want %s from the CI scan", f.ID, f.Severity, f.Source, tc.sev)
					}
				}
				if strings.HasPrefix(f.ID, "GO-") {
					t.Errorf("finding %s from the built-in scanner", f.ID)
				}
			}
			if !found {
				t.Errorf("no finding %s among %d", tc.id, len(ev.Findings))
			}
			if res.Verdict != policy.VerdictDeny || !strings.Contains(res.Message, "[vulns]") {
				t.Errorf("verdict %s %q: the gateway's own rule must judge CI's findings", res.Verdict, res.Message)
			}
			w.sink.mu.Lock()
			last := w.sink.events[len(w.sink.events)-1]
			w.sink.mu.Unlock()
			if !strings.HasPrefix(last.ScanEvidence, "signed CI scan: "+tc.tool) || !strings.Contains(last.ScanEvidence, "signed by ci-key") {
				t.Errorf("audit event scan evidence %q", last.ScanEvidence)
			}
		})
	}
}

// CI scan evidence that is not for this image, not signed by the environment's authority,
// of a type the environment does not pin, stale, or altered is not used: the gateway scans
// itself and says why.
func TestCIScanEvidenceRefused(t *testing.T) {
	w := newCIWorld(t)
	now := time.Now()
	trivy := ciReport(t, "trivy-alpine-310.json")
	fresh := ciPredicate(t, "", trivy, now.Add(-time.Hour), time.Time{})
	stranger := cosigntest.NewKey(t)
	for _, tc := range []struct {
		name, repo string
		push       func(t *testing.T, repo, digest string)
		want       string
	}{
		{"none", "prod/svc", func(*testing.T, string, string) {}, "no attestation of type"},
		{"wrong subject", "prod/svc", func(t *testing.T, repo, digest string) {
			other, _ := w.image(t, repo)
			w.attestAtt(t, repo, digest, other, cosignVuln, fresh, w.key)
		}, "not this image"},
		{"unknown signer", "prod/svc", func(t *testing.T, repo, digest string) {
			w.attestAtt(t, repo, digest, digest, cosignVuln, fresh, stranger)
		}, "no trusted key verifies"},
		{"unpinned predicate type", "intoto/svc", func(t *testing.T, repo, digest string) {
			w.attestBundle(t, repo, digest, cosignVuln, fresh, w.key)
		}, "is not one asked for"},
		{"stale scan", "prod/svc", func(t *testing.T, repo, digest string) {
			w.attestAtt(t, repo, digest, digest, cosignVuln, ciPredicate(t, "", trivy, now.Add(-8*24*time.Hour), time.Time{}), w.key)
		}, "more than 7d ago (ciScans.maxAge)"},
		{"stale database", "intoto/svc", func(t *testing.T, repo, digest string) {
			w.attestAtt(t, repo, digest, digest, inTotoVulns, ciPredicate(t, "", trivy, now.Add(-time.Hour), now.Add(-4*24*time.Hour)), w.key)
		}, "vulnerability database dates from"},
		{"tampered", "prod/svc", func(t *testing.T, repo, digest string) {
			env := w.key.Envelope(t, cosigntest.Statement(t, w.host, repo, digest, cosignVuln, ciPredicate(t, "", trivy, now.Add(-8*24*time.Hour), time.Time{})))
			var e map[string]any
			_ = json.Unmarshal(env, &e)
			p, _ := base64.StdEncoding.DecodeString(e["payload"].(string))
			stale := now.Add(-8 * 24 * time.Hour).UTC().Format(time.RFC3339)
			e["payload"] = base64.StdEncoding.EncodeToString([]byte(strings.Replace(string(p), stale, now.UTC().Format(time.RFC3339), 1)))
			env, _ = json.Marshal(e)
			cosigntest.PushAttestationTag(t, w.host, repo, digest, cosigntest.AttestationLayer{Envelope: env, PredicateType: cosignVuln})
		}, "altered"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, m := w.image(t, tc.repo)
			tc.push(t, tc.repo, d)
			before := w.scanner.n.Load()
			res := w.pull(t, tc.repo, d, m)
			if got := w.scanner.n.Load() - before; got != 1 {
				t.Errorf("the built-in scanner ran %d times, want once", got)
			}
			ev := res.Vulnerabilities
			if ev == nil || ev.CIScan != nil {
				t.Fatalf("evidence %+v: want the gateway's own scan", ev)
			}
			t.Logf("scan evidence: %s", ev.ScanEvidence())
			if !strings.Contains(ev.CIScanNote, tc.want) {
				t.Errorf("note %q, want it to say %q", ev.CIScanNote, tc.want)
			}
			if res.Verdict != policy.VerdictDeny || !strings.Contains(res.Message, "GO-2022-1059") {
				t.Errorf("verdict %s %q, want the built-in scan's findings", res.Verdict, res.Message)
			}
			w.sink.mu.Lock()
			last := w.sink.events[len(w.sink.events)-1]
			w.sink.mu.Unlock()
			if !strings.Contains(last.ScanEvidence, "CI scan evidence not used: ") || !strings.Contains(last.ScanEvidence, tc.want) {
				t.Errorf("audit event scan evidence %q", last.ScanEvidence)
			}
		})
	}
}

// The verified attestations are cached per digest, but a new attestation changes the key:
// after a stale CI scan made the gateway scan, a fresh one pushed for the same digest is
// used on the next pull.
func TestCIScanEvidenceNewAttestationCounts(t *testing.T) {
	w := newCIWorld(t)
	now := time.Now()
	trivy := ciReport(t, "trivy-alpine-310.json")
	d, m := w.image(t, "prod/svc")
	w.attestAtt(t, "prod/svc", d, d, cosignVuln, ciPredicate(t, "", trivy, now.Add(-8*24*time.Hour), time.Time{}), w.key)
	if res := w.pull(t, "prod/svc", d, m); res.Vulnerabilities == nil || res.Vulnerabilities.CIScan != nil {
		t.Fatalf("stale CI scan used: %+v", res.Vulnerabilities)
	}
	if res := w.pull(t, "prod/svc", d, m); res.Vulnerabilities == nil || res.Vulnerabilities.CIScan != nil {
		t.Fatalf("stale CI scan used from the cache: %+v", res.Vulnerabilities)
	}
	w.attestBundle(t, "prod/svc", d, cosignVuln, ciPredicate(t, "", trivy, now.Add(-time.Hour), time.Time{}), w.key)
	res := w.pull(t, "prod/svc", d, m)
	if res.Vulnerabilities == nil || res.Vulnerabilities.CIScan == nil {
		t.Fatalf("fresh CI scan pushed later not used: %+v", res.Vulnerabilities)
	}
	if !res.Vulnerabilities.CIScan.ScanFinished.After(now.Add(-2 * time.Hour)) {
		t.Errorf("used the stale scan: %+v", res.Vulnerabilities.CIScan)
	}
}
