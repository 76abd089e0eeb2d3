package gate_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/upstream"
)

// noDatabaseGate is a gate with every evidence source a gateway has (a real registry, the
// image reader, a scanner) except a vulnerability database: none was imported into dbDir.
func noDatabaseGate(t *testing.T, reg string, p *policy.Policy, dbDir string, now time.Time) (*gate.Gate, *memSink) {
	t.Helper()
	up, err := upstream.New(reg, http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	scanner := gate.NewScanner(up, cache.NewFlight(cache.NewMemory(64<<20)), dbDir)
	sink := &memSink{}
	return gate.New(p, up, sink, gate.WithImages(up), gate.WithScanner(scanner), gate.WithClock(func() time.Time { return now })), sink
}

// pushByDigest stores a random root image without secrets in repo by digest only, so that
// no tag of it exists upstream, and returns its digest and manifest.
func pushByDigest(t *testing.T, reg, repo string) (string, []byte) {
	t.Helper()
	img, err := random.Image(128, 1)
	if err != nil {
		t.Fatal(err)
	}
	if img, err = mutate.Config(img, v1.Config{User: ""}); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	ref, err := name.NewDigest(strings.TrimPrefix(reg, "http://")+"/"+repo+"@"+d.String(), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	raw, _ := img.RawManifest()
	return d.String(), raw
}

// TestExplainAgreesWithTheGateway runs the same requests through policy explain and through
// a real gate in front of a real registry, with the built-in observe and starter policies,
// and asserts that they reach the same verdict.
//
// Explain cannot see what the gateway reads at run time; the requests are chosen where
// its assumptions hold: every pushed tag is new upstream (images are stored by digest
// only), no image is signed (the built-in policies list no authorities anyway), and the
// gateway could not check what explain does not read: it has no vulnerability database,
// and its images run as root and carry no secrets, so the one content rule the gateway can
// check without a database (runs-as-root: warn; no-secrets passes) does not change the
// verdict.
func TestExplainAgreesWithTheGateway(t *testing.T) {
	reg := regtest.Registry(t)
	dbDir := t.TempDir()
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	devDigest, devManifest := pushByDigest(t, reg, "team/app")
	prodDigest, prodManifest := pushByDigest(t, reg, "prod/app")
	manifests := map[string][]byte{devDigest: devManifest, prodDigest: prodManifest}

	type request struct {
		action policy.Action
		repo   string
		tag    string
		digest string
	}
	var requests []request
	for _, a := range []policy.Action{policy.ActionPush, policy.ActionPull} {
		for repo, d := range map[string]string{"team/app": devDigest, "prod/app": prodDigest} {
			for _, tag := range []string{"1.4.2", "latest", ""} {
				requests = append(requests, request{a, repo, tag, d})
			}
		}
	}
	tests := []struct {
		policy string
		// want is the verdict both must reach, by action, repository and tag.
		want func(r request) policy.Verdict
	}{
		{"observe", func(request) policy.Verdict { return policy.VerdictAllow }},
		{"starter", func(r request) policy.Verdict {
			switch {
			case r.tag == "latest", r.repo == "prod/app":
				// no-latest; in prod critical-fixable cannot scan, and prod fails closed.
				return policy.VerdictDeny
			}
			return policy.VerdictWarn // runs-as-root
		}},
	}
	for _, tt := range tests {
		t.Run(tt.policy, func(t *testing.T) {
			p, err := policy.Builtin(tt.policy)
			if err != nil {
				t.Fatal(err)
			}
			g, sink := noDatabaseGate(t, reg, p, dbDir, now)
			for _, r := range requests {
				ref := r.tag
				if ref == "" {
					ref = r.digest
				}
				x := p.Explain(r.action, r.repo, "", r.tag, r.digest, now)
				res := g.Admit(context.Background(), gate.Request{Action: r.action, Repository: r.repo, Reference: ref,
					Digest: r.digest, Manifest: manifests[r.digest], Address: "registry.example.com"})
				what := string(r.action) + " " + r.repo + ":" + ref
				if x.Verdict != res.Verdict {
					t.Errorf("%s: explain says %s, the gateway %s (%q %q)", what, x.Verdict, res.Verdict, res.Message, res.Warnings)
				}
				if want := tt.want(r); res.Verdict != want {
					t.Errorf("%s: %s (%q %q), want %s", what, res.Verdict, res.Message, res.Warnings, want)
				}
				if res.Unavailable {
					t.Errorf("%s: 503 for a missing database, which retrying cannot fix: %q", what, res.Message)
				}
				if strings.Contains(res.Message+strings.Join(res.Warnings, " "), dbDir) {
					t.Errorf("%s: the answer shows the server's database directory: %q %q", what, res.Message, res.Warnings)
				}
			}
			if tt.policy != "observe" {
				return
			}
			// Every request was allowed, and each audit event in prod (where a vulnerability
			// rule applies) says what could not be checked.
			for _, e := range sink.events {
				if e.Repository == "prod/app" && (!strings.Contains(e.Undecided, "no vulnerability database is imported") || e.FailMode != "") {
					t.Errorf("audit event of %s %s: undecided %q, fail mode %q; want the missing database named, no fail mode applied", e.Action, e.Reference, e.Undecided, e.FailMode)
				}
			}
		})
	}
}

// TestMissingEvidenceRefusesOnlyForBlockingRules: a vulnerability rule without a database
// refuses only in mode block in an environment that fails closed, and then as a denial
// saying who must act; in mode observe it is recorded, in mode warn it warns.
func TestMissingEvidenceRefusesOnlyForBlockingRules(t *testing.T) {
	reg := regtest.Registry(t)
	digest, manifest := pushByDigest(t, reg, "prod/app")
	for _, tt := range []struct {
		mode, failMode string
		want           policy.Verdict
		warning        string
	}{
		{"observe", "closed", policy.VerdictAllow, ""},
		{"warn", "closed", policy.VerdictWarn, "[vulns] could not scan prod/app@" + digest + ": no vulnerability database is imported; import one with portcullis db import"},
		{"block", "open", policy.VerdictWarn, "environment prod fails open, so this only warns"},
		{"block", "closed", policy.VerdictDeny, ""},
	} {
		t.Run(tt.mode+"/"+tt.failMode, func(t *testing.T) {
			p, err := policy.Parse([]byte(`version: 1
environments:
  - {name: prod, repositories: ["prod/**"], failMode: ` + tt.failMode + `}
rules:
  - {id: vulns, type: vulnerability, mode: ` + tt.mode + `, severity: critical}
`))
			if err != nil {
				t.Fatal(err)
			}
			dbDir := t.TempDir()
			g, sink := noDatabaseGate(t, reg, p, dbDir, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
			for _, a := range []policy.Action{policy.ActionPush, policy.ActionPull} {
				res := g.Admit(context.Background(), gate.Request{Action: a, Repository: "prod/app", Reference: "1.0.0", Digest: digest, Manifest: manifest})
				if res.Verdict != tt.want || res.Unavailable || !res.Lasting || res.RetryAfter != 0 {
					t.Fatalf("%s: %s unavailable=%v lasting=%v retry=%s %q, want %s, never a 503", a, res.Verdict, res.Unavailable, res.Lasting, res.RetryAfter, res.Message, tt.want)
				}
				warnings := strings.Join(res.Warnings, "\n")
				switch {
				case tt.want == policy.VerdictAllow && len(res.Warnings) > 0:
					t.Errorf("%s: observe shows the client %q", a, warnings)
				case tt.warning != "" && !strings.Contains(warnings, tt.warning):
					t.Errorf("%s: warnings %q lack %q", a, warnings, tt.warning)
				case tt.want == policy.VerdictDeny && !strings.HasPrefix(res.Message, "Vulnerability scanning cannot run; the platform team must act: ") ||
					tt.want == policy.VerdictDeny && !strings.Contains(res.Message, "import one with portcullis db import"):
					t.Errorf("%s: denial %q does not start with what is missing and who must act", a, res.Message)
				}
				if strings.Contains(res.Message+warnings, dbDir) {
					t.Errorf("%s: the answer shows the database directory: %q %q", a, res.Message, warnings)
				}
			}
			for _, e := range sink.events {
				wantFailMode := ""
				if tt.mode == "block" {
					wantFailMode = tt.failMode
				}
				if !strings.Contains(e.Undecided, "no vulnerability database is imported") || e.FailMode != wantFailMode {
					t.Errorf("audit event: undecided %q fail mode %q, want the missing database and fail mode %q", e.Undecided, e.FailMode, wantFailMode)
				}
			}
		})
	}
}

// TestUnreachableUpstreamRefusesOnlyForBlockingRules: a tag lookup that fails (it may clear
// by itself) refuses with Retry-After only for a blocking rule; an immutability rule in
// mode observe or warn lets the push through, recorded or warned.
func TestUnreachableUpstreamRefusesOnlyForBlockingRules(t *testing.T) {
	for _, tt := range []struct {
		mode string
		want policy.Verdict
	}{{"observe", policy.VerdictAllow}, {"warn", policy.VerdictWarn}, {"block", policy.VerdictDeny}} {
		t.Run(tt.mode, func(t *testing.T) {
			p, err := policy.Parse([]byte(`version: 1
environments:
  - {name: prod, repositories: ["prod/**"], failMode: closed}
rules:
  - {id: immutable, type: immutable, mode: ` + tt.mode + `}
`))
			if err != nil {
				t.Fatal(err)
			}
			down, err := upstream.New("http://127.0.0.1:1", http.DefaultTransport)
			if err != nil {
				t.Fatal(err)
			}
			sink := &memSink{}
			res := gate.New(p, down, sink).Admit(context.Background(), gate.Request{Action: policy.ActionPush,
				Repository: "prod/app", Reference: "1.0.0", Digest: "sha256:" + strings.Repeat("01", 32)})
			if res.Verdict != tt.want || res.Unavailable != (tt.want == policy.VerdictDeny) || res.Lasting {
				t.Fatalf("%s: unavailable=%v lasting=%v %q %q, want %s", res.Verdict, res.Unavailable, res.Lasting, res.Message, res.Warnings, tt.want)
			}
			if tt.want == policy.VerdictWarn && !strings.Contains(strings.Join(res.Warnings, "\n"), "[immutable] could not read which digest tag 1.0.0 points at") {
				t.Errorf("warnings %q do not name what could not be checked", res.Warnings)
			}
			if tt.want == policy.VerdictDeny && res.RetryAfter <= 0 {
				t.Errorf("a refusal retrying can clear has no Retry-After: %+v", res)
			}
			if e := sink.events[0]; e.Undecided == "" || len(e.Results) != 1 || e.Results[0].Outcome != "fail" {
				t.Errorf("audit event %+v: want what could not be checked, and the rule failed as could-not-check (never a pass)", e)
			}
		})
	}
}
