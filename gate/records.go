package gate

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/records"
)

// tagLedger keeps the first digest each tag was pushed with.
type tagLedger interface {
	RecordTag(ctx context.Context, repo, tag, digest string, at time.Time) (first string, err error)
	FirstDigest(ctx context.Context, repo, tag string) (digest string, ok bool, err error)
}

// sightingRecords keeps when each advisory was first and last seen in each repository.
type sightingRecords interface {
	Sight(ctx context.Context, repo, advisory string, now time.Time) (records.Sighting, error)
	Sighting(ctx context.Context, repo, advisory string) (records.Sighting, bool, error)
}

// baselineRecords reads what baselines are found with: the previous accepted push of each
// repository, the baseline each push was judged against, and the layer-prefix index.
type baselineRecords interface {
	Previous(ctx context.Context, repo string) (digest string, ok bool, err error)
	Baseline(ctx context.Context, repo, digest string) (records.Baseline, bool, error)
	Layers(ctx context.Context, layersHash string) (img records.Image, ok bool, err error)
}

// reminderMarks keeps which exception reminders were sent on which day.
type reminderMarks interface {
	MarkReminder(ctx context.Context, id, day string, at time.Time) (first bool, err error)
	UnmarkReminder(ctx context.Context, id, day string) error
}

// decisionLog keeps one row per decision, and what a decision leaves behind (layer
// index, baseline, previous push, its row) together.
type decisionLog interface {
	AddDecision(ctx context.Context, d records.Decision) error
	Write(ctx context.Context, w records.Writes) error
	Decisions(ctx context.Context, q records.Query) ([]records.Decision, error)
}

// Records is what the gate keeps that cannot be recomputed (a *records.Store).
type Records interface {
	tagLedger
	sightingRecords
	baselineRecords
	reminderMarks
	decisionLog
}

// WithRecords sets the durable store of the tag ledger, first sightings, baselines,
// reminder marks and decisions. Without it the gate keeps them in a store in memory, lost
// with the process.
func WithRecords(r Records) Option { return func(g *Gate) { g.records = r } }

// memoryRecords returns a records store in memory, for a gate given none.
func memoryRecords() Records {
	s, err := records.OpenMemory(context.Background())
	if err != nil {
		panic("gate: an in-memory records store could not be opened: " + err.Error())
	}
	return s
}

// recordsUnavailable is the error a decision reports when the records store failed.
type recordsUnavailable struct{ err error }

func (e recordsUnavailable) Error() string {
	return "the records store (tag ledger, first sightings, baselines, decisions) is unavailable: " + e.err.Error()
}

func (e recordsUnavailable) Unwrap() error { return e.err }

// keep writes what a decision leaves behind: the sightings baselines need and the
// decision's row, in one transaction for a push. A pull's row is written only the first
// time this process makes that decision (same image, environment, verdict and policy
// revision) in a day, in the background: decisions are computed on every pull, and pulls
// must not wait for, nor load, the durable store.
func (g *Gate) keep(ctx context.Context, req Request, got gathered, in policy.Input, res Result, now time.Time) error {
	w := g.sightingWrites(ctx, req.Action, req.Repository, req.Digest, got.manifest, in.Vulnerabilities, got.compared, got.baseManifest, res.Verdict)
	row := decisionRow(req, res, now)
	if req.Action != policy.ActionPull {
		w.Decision = &row
	}
	if !w.Empty() {
		if err := g.records.Write(context.WithoutCancel(ctx), w); err != nil {
			return recordsUnavailable{err}
		}
	}
	if req.Action == policy.ActionPull {
		g.keepPull(ctx, row)
	}
	return nil
}

// maxPullRowWrites bounds the pull decision rows written at once; past it rows are
// dropped (and logged) rather than queued without bound while the store is slow.
const maxPullRowWrites = 32

// pullRowMemo is how long a process remembers that it wrote a pull decision's row.
const pullRowMemo = 24 * time.Hour

// keepPull writes the row of a pull decision unless this process wrote the same one today.
func (g *Gate) keepPull(ctx context.Context, row records.Decision) {
	key := "pull-row\x00" + row.Repository + "\x00" + row.Digest + "\x00" + row.Environment + "\x00" + row.Verdict + "\x00" +
		row.PolicyRevision + "\x00" + row.Time.Format(time.DateOnly)
	if _, ok, _ := g.recordsMemo.Get(ctx, key); ok {
		return
	}
	select {
	case g.pullRows <- struct{}{}:
	default:
		g.log.Warn("pull decision row dropped: the records store is slow", "repository", row.Repository, "digest", row.Digest)
		return
	}
	_ = g.recordsMemo.Set(ctx, key, []byte{1}, pullRowMemo)
	ctx = context.WithoutCancel(ctx)
	go func() {
		defer func() { <-g.pullRows }()
		if err := g.records.AddDecision(ctx, row); err != nil {
			_ = g.recordsMemo.Delete(ctx, key) // the next pull tries again
			g.log.Warn("pull decision row not written", "repository", row.Repository, "digest", row.Digest, "error", err.Error())
		}
	}()
}

// ruleResult is a rule result as kept in a decision row.
type ruleResult struct {
	Rule    string `json:"rule"`
	Type    string `json:"type,omitempty"`
	Mode    string `json:"mode,omitempty"`
	Outcome string `json:"outcome"`
	Finding string `json:"finding,omitempty"`
}

// decisionRow is the records row of a decision.
func decisionRow(req Request, res Result, now time.Time) records.Decision {
	rs := make([]ruleResult, 0, len(res.Decision.Results))
	for _, r := range res.Decision.Results {
		rs = append(rs, ruleResult{Rule: r.Rule, Type: r.Type, Mode: string(r.Mode), Outcome: string(r.Outcome), Finding: truncate(r.Finding, 512)})
	}
	raw, err := json.Marshal(rs)
	if err != nil {
		raw = []byte("null")
	}
	return records.Decision{
		Time: now.UTC(), Repository: req.Repository, Digest: req.Digest, Reference: truncate(req.Reference, 256),
		Action: string(req.Action), Environment: res.Decision.Environment, Verdict: string(res.Verdict),
		Results: raw, RequestID: truncate(req.RequestID, 256), PolicyRevision: res.Decision.PolicyRevision,
	}
}

// truncate cuts s to at most n bytes.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// unrecorded is the answer to an accepted push whose records could not be written: the
// environment's fail mode decides. Closed: refused as a temporary failure (503) that says
// so; open: allowed with a warning.
func (g *Gate) unrecorded(p *policy.Policy, res Result, err error) (Result, string) {
	mode := p.FailMode(res.Decision.Environment)
	why := fmt.Sprintf("environment %s fails %s", res.Decision.Environment, mode)
	res.Undecided = err.Error()
	if mode == policy.FailClosed {
		res.Verdict, res.Unavailable, res.RetryAfter, res.Warnings = policy.VerdictDeny, true, retryBriefly, nil
		res.Message = fmt.Sprintf("this push cannot be recorded: %v. Retry in %s, and if it persists tell the platform team. The push is refused meanwhile (%s); nothing was stored.",
			err, retryBriefly, why)
		return res, mode
	}
	res.Verdict = policy.VerdictWarn
	res.Warnings = append(res.Warnings, fmt.Sprintf("portcullis could not record this push (%v); allowed because %s", err, why))
	return res, mode
}

// RecordedDecision is a decision the records store holds about one image.
type RecordedDecision struct {
	Time        time.Time `json:"time"`
	Action      string    `json:"action"`
	Reference   string    `json:"reference,omitempty"`
	Environment string    `json:"environment,omitempty"`
	Verdict     string    `json:"verdict"`
	// DecisionID is the requestId of the decision's audit event.
	DecisionID string `json:"decisionId,omitempty"`
}

// Recorded returns up to limit of the decisions recorded for repo@digest, newest first:
// the pushes, deletes and (once a day per gateway process and outcome) pulls decided on it.
func (g *Gate) Recorded(ctx context.Context, repo, digest string, limit int) ([]RecordedDecision, error) {
	rows, err := g.records.Decisions(ctx, records.Query{Repository: repo, Digest: digest, Limit: limit})
	if err != nil {
		return nil, recordsUnavailable{err}
	}
	out := make([]RecordedDecision, 0, len(rows))
	for _, d := range rows {
		out = append(out, RecordedDecision{Time: d.Time.UTC(), Action: d.Action, Reference: d.Reference,
			Environment: d.Environment, Verdict: d.Verdict, DecisionID: d.RequestID})
	}
	return out, nil
}
