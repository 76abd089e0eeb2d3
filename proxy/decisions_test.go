package proxy_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/proxy"
	"github.com/portcullis-dev/portcullis/upstream"
)

// decisionsPolicy: latest is refused, a tag that is not a version warns until 2026-12-15
// and blocks from then, and team/legacy has an exception in force for that.
const decisionsPolicy = `version: 1
exceptionProcess: "open a SEC ticket"
environments:
  - name: prod
    hosts: ["prod-door.example"]
    failMode: closed
  - name: dev
    repositories: ["**"]
    failMode: open
rules:
  - id: no-latest
    type: tag
    mode: block
    actions: [push, pull]
    forbidden: [latest]
  - id: version-tags
    type: tag
    mode: block
    enforceFrom: 2026-12-15
    actions: [push, pull]
    allowed: ['^\d+\.\d+\.\d+$']
  - id: prod-only-versions
    type: tag
    mode: block
    environments: [prod]
    actions: [pull]
    allowed: ['^\d+\.\d+\.\d+$']
  - id: prod-no-root
    type: config
    mode: block
    environments: [prod]
    check: root
exceptions:
  - id: EXC-7
    scope:
      repository: team/legacy
      rules: [version-tags]
    reason: "legacy build names its tags by branch until the migration"
    owner: legacy@example.com
    approvedBy: security@example.com
    created: 2026-11-20
    closure: "move the build to version tags"
    expires: 2026-12-31
`

// auditLog keeps the events a gate records.
type auditLog struct {
	mu     sync.Mutex
	events []audit.Event
}

func (a *auditLog) Record(_ context.Context, e audit.Event) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, e)
	return nil
}

func (a *auditLog) all() []audit.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]audit.Event(nil), a.events...)
}

// decisionsEnv is a registry with a gated gateway in front of it that serves the
// decisions API on two doors: a plain one and one for prod-door.example.
type decisionsEnv struct {
	reg, plain, prod string
	log              *auditLog
}

func newDecisionsEnv(t *testing.T, regOpts ...func(*configuration.Configuration)) decisionsEnv {
	t.Helper()
	reg := regtest.Registry(t, regOpts...)
	p, err := policy.Parse([]byte(decisionsPolicy))
	if err != nil {
		t.Fatal(err)
	}
	up, err := upstream.New(reg, http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	log := &auditLog{}
	g := gate.New(p, up, log, gate.WithClock(func() time.Time { return time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC) }))
	tr, err := proxy.NewTransport(proxy.TransportOptions{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	px, err := proxy.New(reg, tr, proxy.WithGate(g), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v2/", px)
	mux.Handle(proxy.DecisionsPath, px.Decisions())
	serve := func(d proxy.Door) string {
		srv := httptest.NewServer(d.Handler(mux))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	return decisionsEnv{reg: reg, log: log,
		plain: serve(proxy.Door{Name: "default"}), prod: serve(proxy.Door{Name: "prod", Host: "prod-door.example"})}
}

// push writes a random image straight to the upstream as repo:tag and returns its digest.
func (e decisionsEnv) push(t *testing.T, repo, tag string, auth authn.Authenticator) string {
	t.Helper()
	img := randomImage(t, 512, 1)
	if auth == nil {
		auth = authn.Anonymous
	}
	if err := remote.Write(ref(t, hostOf(t, e.reg), repo+":"+tag), img, remote.WithAuth(auth)); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return d.String()
}

// ask GETs the decisions API at base for image (repo:tag or repo@digest) and query.
func ask(t *testing.T, base, image, query string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	target := proxy.DecisionsPath + image
	if query != "" {
		target += "?" + query
	}
	return send(t, http.DefaultClient, http.MethodGet, base, target, nil, hdr...)
}

// report decodes a 200 answer strictly.
func report(t *testing.T, resp *http.Response, body []byte) proxy.DecisionReport {
	t.Helper()
	wantStatus(t, resp, body, http.StatusOK)
	var rep proxy.DecisionReport
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("decision report: %v: %s", err, body)
	}
	if resp.Header.Get("X-Request-Id") == "" || rep.DecisionID != resp.Header.Get("X-Request-Id") {
		t.Errorf("decision id %q, X-Request-Id %q", rep.DecisionID, resp.Header.Get("X-Request-Id"))
	}
	return rep
}

// decided asks the decisions API and decodes its 200 answer.
func decided(t *testing.T, base, image, query string, hdr ...string) proxy.DecisionReport {
	t.Helper()
	resp, body := ask(t, base, image, query, hdr...)
	return report(t, resp, body)
}

func result(t *testing.T, rep proxy.DecisionReport, rule string) proxy.RuleResult {
	t.Helper()
	for _, r := range rep.Results {
		if r.Rule == rule {
			return r
		}
	}
	t.Fatalf("no result for rule %s in %+v", rule, rep.Results)
	return proxy.RuleResult{}
}

func TestDecisionsAPIVerdicts(t *testing.T) {
	t.Parallel()
	e := newDecisionsEnv(t)
	good := e.push(t, "team/app", "1.2.3", nil)
	branch := e.push(t, "team/app", "main", nil)
	latest := e.push(t, "team/app", "latest", nil)
	legacy := e.push(t, "team/legacy", "main", nil)

	t.Run("allow by tag and by digest", func(t *testing.T) {
		for _, image := range []string{"team/app:1.2.3", "team/app@" + good} {
			rep := decided(t, e.plain, image, "")
			if rep.Verdict != "allow" || rep.Digest != good || rep.Environment != "dev" || rep.Action != "pull" || rep.Message != "" {
				t.Errorf("%s: %+v", image, rep)
			}
		}
	})
	t.Run("warn with the date it blocks from", func(t *testing.T) {
		rep := decided(t, e.plain, "team/app:main", "")
		r := result(t, rep, "version-tags")
		if rep.Verdict != "warn" || rep.Digest != branch || r.Outcome != "fail" || r.Mode != "warn" || r.BlockingFrom != "2026-12-15" ||
			r.RequestException != "open a SEC ticket" || len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "2026-12-15") {
			t.Errorf("warned tag: %+v", rep)
		}
	})
	t.Run("deny, for pull and push", func(t *testing.T) {
		for _, q := range []string{"", "action=pull", "action=push"} {
			rep := decided(t, e.plain, "team/app:latest", q)
			if rep.Verdict != "deny" || rep.Digest != latest || result(t, rep, "no-latest").Outcome != "fail" || !strings.Contains(rep.Message, "latest") {
				t.Errorf("latest (%s): %+v", q, rep)
			}
			if want := map[string]string{"": "pull", "action=pull": "pull", "action=push": "push"}[q]; rep.Action != want {
				t.Errorf("%q: action %s, want %s", q, rep.Action, want)
			}
		}
	})
	t.Run("exception in force", func(t *testing.T) {
		rep := decided(t, e.plain, "team/legacy:main", "")
		r := result(t, rep, "version-tags")
		if rep.Digest != legacy || r.Outcome != "excepted" || r.Exception == nil || r.Exception.ID != "EXC-7" ||
			r.Exception.Owner != "legacy@example.com" || r.Exception.Expires != "2026-12-31" || r.Exception.DaysLeft != 31 {
			t.Errorf("excepted: %+v", rep)
		}
	})
	t.Run("the door decides the environment, not the request", func(t *testing.T) {
		rep := decided(t, e.prod, "team/app:main", "")
		if rep.Environment != "prod" || rep.Verdict != "deny" || result(t, rep, "prod-only-versions").Outcome != "fail" {
			t.Errorf("prod door: %+v", rep)
		}
		// This gateway reads no image configurations: prod's config rule cannot check,
		// and the report says so and that the environment fails closed.
		if u := rep.Undecided; u == nil || !u.Lasting || u.FailMode != "closed" || u.Unavailable || result(t, rep, "prod-no-root").CouldNotCheck == "" {
			t.Errorf("prod door, config rule without an image reader: %+v", rep.Undecided)
		}
		if rep := decided(t, e.prod, "team/app:1.2.3", ""); rep.Verdict != "deny" || rep.Undecided == nil || !strings.Contains(rep.Message, "platform team") {
			t.Errorf("prod door, nothing wrong but the config rule cannot check: %+v", rep)
		}
		// A client naming the prod door's host on the plain door is still in dev.
		rep = decided(t, e.plain, "team/app:main", "", "Host", "prod-door.example", "X-Forwarded-Host", "prod-door.example")
		if rep.Environment != "dev" {
			t.Errorf("Host header chose environment %s", rep.Environment)
		}
		for _, q := range []string{"environment=prod", "host=prod-door.example", "action=pull&env=prod", "action=pull&action=push", "action=delete", "action="} {
			resp, body := ask(t, e.plain, "team/app:main", q)
			wantOCIError(t, resp, body, http.StatusBadRequest, proxy.CodeUnsupported)
		}
	})
	t.Run("queries are audited as queries, not decisions", func(t *testing.T) {
		events := e.log.all()
		if len(events) == 0 {
			t.Fatal("no audit events")
		}
		for _, ev := range events {
			if ev.Type != audit.TypeQuery {
				t.Errorf("event of type %s (%s %s:%s): a query is not a push or pull", ev.Type, ev.Action, ev.Repository, ev.Reference)
			}
		}
	})
}

func TestDecisionsAPIBadRequests(t *testing.T) {
	t.Parallel()
	e := newDecisionsEnv(t)
	e.push(t, "team/app", "1.2.3", nil)
	for _, tc := range []struct {
		image  string
		status int
		code   proxy.Code
	}{
		{"team/app", http.StatusBadRequest, proxy.CodeUnsupported},
		{"team/app:", http.StatusBadRequest, proxy.CodeTagInvalid},
		{"Team/App:1.2.3", http.StatusBadRequest, proxy.CodeNameInvalid},
		{"team/app@sha256:123", http.StatusBadRequest, proxy.CodeDigestInvalid},
		{"team/app:1.2.3@sha256:" + strings.Repeat("a", 64), http.StatusBadRequest, proxy.CodeNameInvalid},
		{"team/app@@sha256:" + strings.Repeat("a", 64), http.StatusBadRequest, proxy.CodeUnsupported},
		{"team/app:-x", http.StatusBadRequest, proxy.CodeTagInvalid},
		{"team/app:9.9.9", http.StatusNotFound, proxy.CodeManifestUnknown},
		{"team/app@sha256:" + strings.Repeat("a", 64), http.StatusNotFound, proxy.CodeManifestUnknown},
		{"no/such:1.0.0", http.StatusNotFound, proxy.CodeManifestUnknown},
	} {
		resp, body := ask(t, e.plain, tc.image, "")
		wantOCIError(t, resp, body, tc.status, tc.code)
	}
	resp, body := send(t, http.DefaultClient, http.MethodPost, e.plain, proxy.DecisionsPath+"team/app:1.2.3", nil)
	wantOCIError(t, resp, body, http.StatusMethodNotAllowed, proxy.CodeUnsupported)
}

// TestDecisionsAPIAuth: the manifest is read with the client's credentials, so a client
// the upstream refuses gets its challenge and cannot tell an image that exists from one
// that does not; the gateway never answers for it with anyone else's rights.
func TestDecisionsAPIAuth(t *testing.T) {
	t.Parallel()
	opt, ts := regtest.TokenAuth(t, "ci", "s3cret")
	e := newDecisionsEnv(t, opt)
	creds := &authn.Basic{Username: "ci", Password: "s3cret"}
	dgst := e.push(t, "team/app", "latest", creds)

	var bodies []string
	for _, image := range []string{"team/app:latest", "team/app@" + dgst, "team/app:nope", "no/such:1.0.0"} {
		resp, body := ask(t, e.plain, image, "")
		wantOCIError(t, resp, body, http.StatusUnauthorized, proxy.CodeUnauthorized)
		if c := resp.Header.Get("WWW-Authenticate"); !strings.Contains(c, `realm="`+ts.URL+`"`) {
			t.Errorf("%s: challenge %q does not send the client to the token server", image, c)
		}
		if strings.Contains(string(body), dgst) || strings.Contains(string(body), "verdict") {
			t.Errorf("%s: refused answer leaks: %s", image, body)
		}
		bodies = append(bodies, strings.ReplaceAll(string(body), image[:strings.IndexAny(image, ":@")], "REPO"))
	}
	if bodies[0] != bodies[2] || bodies[0] != bodies[3] {
		t.Errorf("refusals differ between an image that exists and one that does not:\n%s", strings.Join(bodies, "\n"))
	}
	events := len(e.log.all())
	if events != 0 {
		t.Errorf("%d decisions were made for clients without credentials", events)
	}

	other, err := ts.Token("repository:other/app:pull")
	if err != nil {
		t.Fatal(err)
	}
	resp, body := ask(t, e.plain, "team/app:latest", "", "Authorization", "Bearer "+other)
	wantOCIError(t, resp, body, http.StatusUnauthorized, proxy.CodeUnauthorized)
	if c := resp.Header.Get("WWW-Authenticate"); !strings.Contains(c, "insufficient_scope") {
		t.Errorf("token for another repository: challenge %q", c)
	}

	tok, err := ts.Token("repository:team/app:pull")
	if err != nil {
		t.Fatal(err)
	}
	rep := decided(t, e.plain, "team/app:latest", "", "Authorization", "Bearer "+tok)
	if rep.Verdict != "deny" || rep.Digest != dgst {
		t.Errorf("with a pull token: %+v", rep)
	}
	evs := e.log.all()
	if len(evs) != 1 || evs[0].Client.User != "ci (token)" || evs[0].Type != audit.TypeQuery {
		t.Errorf("audit events %+v, want one query by ci (token)", evs)
	}
}

// TestDecisionsAPIListsRecordedDecisions: an image pushed through the gateway has its push
// decision in the records store, and the decisions API lists it; queries themselves are
// not recorded as decisions.
func TestDecisionsAPIListsRecordedDecisions(t *testing.T) {
	t.Parallel()
	e := newDecisionsEnv(t)
	img := randomImage(t, 512, 1)
	if err := remote.Write(ref(t, hostOf(t, e.plain), "team/app:2.0.0"), img, remote.WithAuth(authn.Anonymous)); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	for range 3 {
		decided(t, e.plain, "team/app@"+d.String(), "")
	}
	rep := decided(t, e.plain, "team/app:2.0.0", "")
	if rep.RecordedError != "" {
		t.Fatalf("recorded decisions could not be read: %s", rep.RecordedError)
	}
	var pushes int
	for _, r := range rep.Recorded {
		if r.Action != "push" {
			t.Errorf("recorded %+v: only the push was a decision (queries are not)", r)
			continue
		}
		pushes++
		if r.Verdict != "allow" || r.Reference != "2.0.0" || r.Environment != "dev" || r.DecisionID == "" || r.Time.IsZero() {
			t.Errorf("recorded push %+v: want allow of 2.0.0 in dev with its decision id and time", r)
		}
	}
	if pushes != 1 {
		t.Errorf("%d recorded pushes of team/app@%s, want 1: %+v", pushes, d, rep.Recorded)
	}
	if other := decided(t, e.plain, "team/app@"+e.push(t, "team/app", "3.0.0", nil), ""); len(other.Recorded) != 0 {
		t.Errorf("an image pushed around the gateway has recorded decisions: %+v", other.Recorded)
	}
}
