package gate_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/records"
)

// TestPushWhoseRecordsCannotBeWritten: with the records store gone, an accepted push gets
// the environment's fail mode (closed: refused as unavailable, naming the store; open:
// allowed with a warning); a pull is still decided.
func TestPushWhoseRecordsCannotBeWritten(t *testing.T) {
	p, err := policy.Parse([]byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := records.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), records.FileName))
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	g := gate.New(p, nil, sink, gate.WithRecords(rs))
	const d = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	push := func(repo, ref string) gate.Result {
		return g.Admit(context.Background(), gate.Request{Action: policy.ActionPush, Repository: repo, Reference: ref, Digest: d})
	}
	if res := push("prod/app", d); res.Verdict != policy.VerdictAllow {
		t.Fatalf("push with the store up: %+v", res)
	}
	if ds, err := rs.Decisions(context.Background(), records.Query{Repository: "prod/app"}); err != nil || len(ds) != 1 || ds[0].Verdict != "allow" {
		t.Fatalf("decision rows: %+v %v", ds, err)
	}
	_ = rs.Close()

	res := push("prod/app", d)
	if res.Verdict != policy.VerdictDeny || !res.Unavailable || !strings.Contains(res.Message, "this push cannot be recorded") ||
		!strings.Contains(res.Message, "records store") || !strings.Contains(res.Message, "environment prod fails closed") {
		t.Fatalf("closed environment, store down: %+v", res)
	}
	if ev := sink.events[len(sink.events)-1]; ev.Verdict != "deny" || ev.FailMode != policy.FailClosed || !strings.Contains(ev.Undecided, "records store") {
		t.Fatalf("audit event of the refused push: %+v", ev)
	}
	res = push("dev/app", d)
	if res.Verdict != policy.VerdictWarn || res.Unavailable || !strings.Contains(strings.Join(res.Warnings, " "), "could not record this push") {
		t.Fatalf("open environment, store down: %+v", res)
	}
	if res := g.Admit(context.Background(), gate.Request{Action: policy.ActionPull, Repository: "prod/app", Reference: d, Digest: d}); res.Verdict != policy.VerdictAllow {
		t.Fatalf("pull with the store down: %+v", res)
	}
}
