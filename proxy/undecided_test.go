package proxy_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/proxy"
	"github.com/portcullis-dev/portcullis/upstream"
)

// ociAnswer is one answer of the gateway: status, Retry-After and the first OCI error.
type ociAnswer struct {
	status     int
	statusLine string // resp.Status: the code and its reason phrase
	retryAfter string
	code, msg  string
}

func answerOf(t *testing.T, resp *http.Response) ociAnswer {
	t.Helper()
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var doc struct {
		Errors []struct{ Code, Message string } `json:"errors"`
	}
	a := ociAnswer{status: resp.StatusCode, statusLine: resp.Status, retryAfter: resp.Header.Get("Retry-After")}
	if json.Unmarshal(body, &doc) == nil && len(doc.Errors) > 0 {
		a.code, a.msg = doc.Errors[0].Code, doc.Errors[0].Message
	}
	return a
}

// storeImage writes a random image straight to the registry and returns its manifest.
func storeImage(t *testing.T, reg, repoTag string) []byte {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	_, raw := regtest.WriteImage(t, reg, repoTag, img)
	return raw
}

func putImageManifest(t *testing.T, base, repo, ref string, manifest []byte) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, base+"/v2/"+repo+"/manifests/"+ref, bytes.NewReader(manifest))
	req.Header.Set("Content-Type", "application/vnd.docker.distribution.manifest.v2+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func getImageManifest(t *testing.T, base, repo, ref string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/v2/"+repo+"/manifests/"+ref, nil)
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestUndecidedAnswers: what the gateway cannot decide is answered by what it takes. No
// vulnerability database (retrying cannot help): 403 DENIED naming who must act, no
// Retry-After, no server path. An upstream read that failed: 503 with Retry-After. Both
// are logged as what they are, never as an upstream error.
func TestUndecidedAnswers(t *testing.T) {
	reg := regtest.Registry(t)
	up, err := upstream.New(reg, http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	down, err := upstream.New("http://127.0.0.1:1", http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	const closedProd = `version: 1
environments:
  - {name: prod, repositories: ["prod/**"], failMode: closed}
rules:
`
	dbDir := t.TempDir()
	tests := []struct {
		name           string
		rules          string
		gate           func(p *policy.Policy) *gate.Gate
		status         int
		code           string
		retryAfter     string
		prefix, logged string
		reason         string
	}{
		{"no database", "  - {id: vulns, type: vulnerability, mode: block, severity: critical}\n",
			func(p *policy.Policy) *gate.Gate {
				return gate.New(p, up, discardSink{}, gate.WithImages(up),
					gate.WithScanner(gate.NewScanner(up, cache.NewFlight(cache.NewMemory(16<<20)), dbDir)))
			},
			http.StatusForbidden, "DENIED", "",
			"Vulnerability scanning cannot run; the platform team must act: ", "could not decide; refused until the platform team acts",
			"403 could not decide: Vulnerability scanning cannot run; the platform team must act"},
		{"upstream unreachable for the gate's reads",
			"  - {id: immutable, type: immutable, mode: block}\n  - {id: no-root, type: config, mode: block, check: root}\n",
			func(p *policy.Policy) *gate.Gate { return gate.New(p, down, discardSink{}, gate.WithImages(down)) },
			http.StatusServiceUnavailable, "UNAVAILABLE", "10",
			"", "could not decide; refused until the check can run",
			"503 could not decide: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := policy.Parse([]byte(closedProd + tt.rules))
			if err != nil {
				t.Fatal(err)
			}
			logs := &regtest.LogBuffer{}
			base := regtest.Gateway(t, reg, proxy.WithGate(tt.gate(p)),
				proxy.WithLogger(slog.New(slog.NewTextHandler(logs, nil)))).URL
			// A push (decided before forwarding) and a pull (decided on the upstream's answer)
			// of a runnable image whose blobs are upstream.
			manifest := storeImage(t, reg, "prod/app:0.9.0")
			for what, resp := range map[string]*http.Response{
				"push": putImageManifest(t, base, "prod/app", "1.0.0", manifest),
				"pull": getImageManifest(t, base, "prod/app", "0.9.0"),
			} {
				a := answerOf(t, resp)
				if a.status != tt.status || a.code != tt.code || a.retryAfter != tt.retryAfter {
					t.Errorf("%s: %d %s Retry-After %q: %q; want %d %s Retry-After %q", what, a.status, a.code, a.retryAfter, a.msg, tt.status, tt.code, tt.retryAfter)
				}
				t.Logf("%s: %s", what, a.statusLine)
				if !strings.HasPrefix(a.statusLine, tt.reason) || len(a.statusLine) > len("503 ")+200 {
					t.Errorf("%s: status line %q, want it to start with %q", what, a.statusLine, tt.reason)
				}
				if !strings.HasPrefix(a.msg, tt.prefix) || strings.Contains(a.msg, dbDir) || strings.Contains(strings.ToLower(a.msg), "retry shortly") {
					t.Errorf("%s: message %q: want it to start with %q and show no server path", what, a.msg, tt.prefix)
				}
			}
			if l := logs.String(); strings.Contains(l, "upstream error") || strings.Count(l, tt.logged) != 2 {
				t.Errorf("log:\n%s\nwant two %q lines and no upstream error", l, tt.logged)
			}
		})
	}
}
