package gate_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/policy"
)

func TestExceptionCoversAndExpiresInTheAuditEvent(t *testing.T) {
	reg := regtest.Registry(t)
	doc := testPolicy + `exceptions:
  - id: EXC-0142
    scope:
      repository: team/app
      tag: latest
      rules: [no-latest]
    reason: "the legacy deployer only knows latest"
    owner: team-a@example.com
    approvedBy: security@example.com
    created: 2026-12-01
    expires: 2026-12-10
    closure: "move the deployer to digests"
    ticket: SEC-812
`
	p, err := policy.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	req := gate.Request{Action: policy.ActionPull, Repository: "team/app", Reference: "latest", Digest: "sha256:" + strings.Repeat("0a", 32)}
	for _, c := range []struct {
		day     time.Time
		verdict policy.Verdict
	}{
		{time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC), policy.VerdictAllow},
		{time.Date(2026, 12, 11, 0, 0, 0, 0, time.UTC), policy.VerdictDeny},
	} {
		g, sink := newGate(t, reg, c.day)
		g.SetPolicy(p)
		res := g.Admit(context.Background(), req)
		if res.Verdict != c.verdict {
			t.Fatalf("%s: verdict %s (%q), want %s", c.day.Format(time.DateOnly), res.Verdict, res.Message, c.verdict)
		}
		ev := sink.events[0].Results[0]
		switch c.verdict {
		case policy.VerdictAllow:
			if ev.Outcome != "excepted" || ev.Exception == nil || ev.Exception.ID != "EXC-0142" || ev.Exception.Owner != "team-a@example.com" || ev.Exception.Expires != "2026-12-10" {
				t.Fatalf("covered pull's audit result %+v lacks the exception", ev)
			}
			if len(res.Warnings) == 0 || !strings.Contains(strings.Join(res.Warnings, " "), "EXC-0142") {
				t.Fatalf("warnings %q do not say the exception covers it", res.Warnings)
			}
		case policy.VerdictDeny:
			if ev.ExpiredException == nil || !strings.Contains(res.Message, "EXC-0142 expired on 2026-12-10") {
				t.Fatalf("after expiry: %+v, message %q", ev, res.Message)
			}
		}
	}
}
