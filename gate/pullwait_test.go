package gate_test

import (
	"context"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/policy"
)

// PullWait is the environment's unscanned wait, else the gateway's pull scan wait, else
// unbounded; AuditEvent reaches the gate's sink.
func TestPullWaitAndAuditEvent(t *testing.T) {
	t.Parallel()
	p, err := policy.Parse([]byte(`version: 1
environments:
  - name: sandbox
    repositories: ["sandbox/**"]
    unscanned: {wait: 0s, then: allow}
  - name: prod
    repositories: ["**"]
`))
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	g := gate.New(p, nil, sink, gate.WithPullScanWait(7*time.Second))
	if got := g.PullWait("sandbox/app", ""); got != 0 {
		t.Errorf("sandbox: %s, want the environment's 0s", got)
	}
	if got := g.PullWait("mirror/docker.io/library/nginx", ""); got != 7*time.Second {
		t.Errorf("prod: %s, want scan.pullWait 7s", got)
	}
	if got := gate.New(p, nil, sink, gate.WithPullScanWait(0)).PullWait("prod/app", ""); got >= 0 {
		t.Errorf("scan.pullWait 0 (no bound): %s, want unbounded (negative)", got)
	}
	if err := g.AuditEvent(context.Background(), audit.Event{Type: audit.TypeMirrorTagMoved, Repository: "r"}); err != nil {
		t.Fatal(err)
	}
	if len(sink.events) != 1 || sink.events[0].Type != audit.TypeMirrorTagMoved {
		t.Errorf("sink = %+v", sink.events)
	}
}
