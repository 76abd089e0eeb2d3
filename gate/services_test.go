package gate_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/policy"
)

// servicesPolicy is testPolicy with two services and exceptions scoped to them.
const servicesPolicy = testPolicy + `services:
  - name: payments-api
    repositories: ["payments/api", "payments/api-*"]
    team: payments
    tier: critical
    contact: "#payments-oncall"
  - name: ledger
    repositories: ["payments/ledger"]
    team: payments
exceptions:
  - id: EXC-1
    scope: {repository: payments/api-worker, tag: latest, rules: [no-latest]}
    reason: r
    owner: alice@example.com
    approvedBy: security@example.com
    created: 2026-11-20
    expires: 2026-12-04
    closure: c
  - id: EXC-2
    scope: {repository: "payments/**", tag: legacy, rules: [no-latest]}
    reason: r
    owner: bob@example.com
    approvedBy: security@example.com
    created: 2026-11-20
    expires: 2026-12-04
    closure: c
`

const digestA = "sha256:0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a"

func TestDecisionsNameTheOwningService(t *testing.T) {
	p, err := policy.Parse([]byte(servicesPolicy))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	sink := &memSink{}
	g := gate.New(p, nil, sink, gate.WithClock(func() time.Time { return now }))
	pull := func(repo, tag string) gate.Result {
		return g.Admit(context.Background(), gate.Request{Action: policy.ActionPull, Repository: repo, Reference: tag, Digest: digestA})
	}

	res := pull("payments/api", "latest")
	if res.Verdict != policy.VerdictDeny || !strings.HasSuffix(res.Message, ". To request an exception: file a SEC ticket. Owned by team payments (service payments-api, tier critical); contact #payments-oncall") {
		t.Errorf("denial: %s %q", res.Verdict, res.Message)
	}
	res = pull("other/app", "latest")
	if res.Verdict != policy.VerdictDeny || strings.Contains(res.Message, "Owned by") {
		t.Errorf("denial without a service: %s %q", res.Verdict, res.Message)
	}
	pull("payments/ledger", "1.0.0")

	if len(sink.events) != 3 {
		t.Fatalf("%d events, want 3", len(sink.events))
	}
	want := []*audit.Service{
		{Name: "payments-api", Team: "payments", Tier: "critical"},
		nil,
		{Name: "ledger", Team: "payments"},
	}
	for i, e := range sink.events {
		if !reflect.DeepEqual(e.Service, want[i]) {
			t.Errorf("event %d (%s): service %+v, want %+v", i, e.Repository, e.Service, want[i])
		}
	}
	if sink.events[2].Verdict != string(policy.VerdictAllow) {
		t.Errorf("payments/ledger: %+v", sink.events[2])
	}
}

func TestRemindersNameTheOwningService(t *testing.T) {
	p, err := policy.Parse([]byte(servicesPolicy))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC) // both in their reminder window
	sink := &memSink{}
	g := gate.New(p, nil, sink, gate.WithClock(func() time.Time { return now }))
	if n := g.RemindExceptions(context.Background()); n != 2 {
		t.Fatalf("%d reminders, want 2", n)
	}
	got := map[string]*audit.Service{}
	for _, e := range sink.events {
		got[e.Exception.ID] = e.Service
	}
	want := map[string]*audit.Service{
		"EXC-1": {Name: "payments-api", Team: "payments", Tier: "critical"},
		"EXC-2": nil, // payments/** reaches two services: no one service to name
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("reminder services = %+v, want %+v", got, want)
	}
}
