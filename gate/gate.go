package gate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/scan/harbor"
)

// TagResolver tells which digest a tag points at upstream, "" when the tag does not exist.
// authorization is the client's own Authorization header, so the upstream judges access.
type TagResolver interface {
	TagDigest(ctx context.Context, repo, tag, authorization string) (string, error)
}

// Recorder stores decision events.
type Recorder interface {
	Record(ctx context.Context, e audit.Event) error
}

// Gate decides on pushes and pulls with the policy in force. It is safe for concurrent use;
// the policy can be swapped at any time.
type Gate struct {
	policy atomic.Pointer[policy.Policy]
	tags   TagResolver
	audit  Recorder
	now    func() time.Time
	log    *slog.Logger
	sigs   SignatureVerifier
	blobs  ImageReader
	// scanner finds vulnerabilities for vulnerability rules.
	scanner VulnerabilityScanner
	// adapters are the external scanners environments may choose, pulling from
	// adapterRegistry (see WithAdapters).
	adapters        map[string]AdapterScanner
	adapterRegistry harbor.Registry
	// scanCreds mints the adapters' pull credentials (see WithScanCredentials).
	scanCreds  ScanCredentialIssuer
	scanBearer bool
	// pullScanWait is how long a pull waits for a scan before the fail mode applies.
	pullScanWait time.Duration
	// coverage tracks platform manifests of signed indexes; its store (the shared cache)
	// also keeps the sightings baselines and fix timelines need.
	coverage *coverage
	meter    metric.MeterProvider
	inst     instruments

	// firstSeenMemo remembers first sightings of vulnerabilities read from the records.
	firstSeenMemo *cache.Memory
	// records keeps what cannot be recomputed (see Records).
	records Records
	// recordsMemo remembers, per process, what pulls read from the records (the baseline
	// each image is judged against) and which pull decisions were written, so that pulls
	// answered from the cache touch no durable store.
	recordsMemo *cache.Memory
	// pullRows bounds the pull decision rows being written at once.
	pullRows chan struct{}
}

// Option sets an optional Gate setting.
type Option func(*Gate)

// WithClock sets the clock decisions are made at (tests inject dates).
func WithClock(now func() time.Time) Option { return func(g *Gate) { g.now = now } }

// WithLogger sets the logger for audit failures.
func WithLogger(l *slog.Logger) Option { return func(g *Gate) { g.log = l } }

// New returns a Gate enforcing p, resolving tags through tags and recording to rec.
func New(p *policy.Policy, tags TagResolver, rec Recorder, opts ...Option) *Gate {
	g := &Gate{tags: tags, audit: rec, now: time.Now, log: slog.Default(), pullScanWait: 20 * time.Second,
		coverage: &coverage{store: cache.NewMemory(16 << 20), ttl: 24 * time.Hour}, firstSeenMemo: cache.NewMemory(4 << 20),
		recordsMemo: cache.NewMemory(16 << 20), pullRows: make(chan struct{}, maxPullRowWrites)}
	for _, o := range opts {
		o(g)
	}
	if g.records == nil {
		g.records = memoryRecords()
	}
	g.policy.Store(p)
	if g.meter != nil {
		if err := g.newInstruments(g.meter); err != nil {
			g.log.Error("gate metrics unavailable", slog.String("error", err.Error()))
		}
	}
	return g
}

// Policy returns the policy in force.
func (g *Gate) Policy() *policy.Policy { return g.policy.Load() }

// TagsImmutable reports whether the policy in force forbids moving tags of repo today.
func (g *Gate) TagsImmutable(repo, host string) bool {
	return g.policy.Load().TagsImmutable(repo, host, g.now())
}

// PullWait is how long a pull of repo through the door host waits for an image that is
// still being checked (the environment's unscanned wait, else the gateway's pull scan
// wait); past it the environment's answer for images still being checked is given. A
// negative wait means no bound.
func (g *Gate) PullWait(repo, host string) time.Duration {
	p := g.policy.Load()
	if u := p.UnscannedPull(p.Environment(repo, host)); u != nil {
		return u.Wait
	}
	if g.pullScanWait > 0 {
		return g.pullScanWait
	}
	return -1
}

// AuditEvent writes an event that is not a decision (a pull-through tag move) to the
// gate's audit sink, next to the decisions.
func (g *Gate) AuditEvent(ctx context.Context, e audit.Event) error { return g.audit.Record(ctx, e) }

// SetPolicy swaps the policy in force atomically.
func (g *Gate) SetPolicy(p *policy.Policy) { g.policy.Store(p) }

// Request is one push or pull of a manifest.
type Request struct {
	Action policy.Action
	// Host is the host name the request's door applies: environments' hosts: match it.
	Host string
	// Address is the registry address the client used, for messages only.
	Address    string
	Repository string
	// Reference is the tag or digest from the URL.
	Reference string
	// Digest is the digest of the manifest bytes, computed by the caller.
	Digest string
	// Manifest is the manifest body when the caller has it (push, GET).
	Manifest []byte
	// Authorization is the client's Authorization header, used for reads on its behalf.
	Authorization string
	ClientAddr    string
	RequestID     string
}

// image names the request's image by digest as the client addressed it: with the registry
// host it used, so a message can be pasted into a pull command.
func (r Request) image() string {
	name := r.Repository + "@" + r.Digest
	if r.Address != "" {
		name = r.Address + "/" + name
	}
	return name
}

// Result is the gate's answer.
type Result struct {
	Verdict policy.Verdict
	// Message explains a denial; empty otherwise.
	Message string
	// Warnings are the lines to show a client that is allowed with warnings.
	Warnings []string
	// Unavailable means the gate could not decide and the environment fails closed: the
	// request is refused as a temporary failure, not as a policy denial.
	Unavailable bool
	// RetryAfter, with Unavailable, is when to try again: the image is being scanned, or
	// the upstream or the cache did not answer.
	RetryAfter time.Duration
	// Undecided says which evidence could not be gathered and why, "" when all was. Rules
	// in mode observe or warn that needed it never refuse the request: only blocking ones
	// let the environment's fail mode decide.
	Undecided string
	// Lasting, with Undecided, means retrying cannot help (no vulnerability database
	// imported, a misconfigured authority or gateway): someone must act. A closed
	// environment then denies the request (Verdict deny, not Unavailable) saying so.
	Lasting bool
	// Deadlines are the remediation deadlines of the inherited vulnerability findings the
	// decision's rules judge, nil when none applies.
	Deadlines []policy.Deadline
	// FailMode, with Undecided, is the fail mode that decided ("closed" or "open"), "" when
	// no blocking rule needed the missing evidence.
	FailMode string
	// Challenge, when set, is the upstream refusing the client's credentials for a read
	// the decision needed: relay it to the client instead of deciding.
	Challenge *Challenge
	Decision  policy.Decision
	// Vulnerabilities is the vulnerability evidence the decision was made on, nil when none
	// was gathered. Each finding says when it was first seen in the repository and, when a
	// rule with new: true applies, whether it is inherited from the Baseline, the image the
	// findings were compared with (nil when none was found: BaselineNote says why).
	Vulnerabilities *policy.VulnerabilityEvidence
}

// Baseline is the image the decision's vulnerability findings were compared with, nil when
// none was found or the image was not scanned.
func (r Result) Baseline() *policy.Baseline {
	if r.Vulnerabilities == nil {
		return nil
	}
	return r.Vulnerabilities.Baseline
}

// Challenge is an upstream authentication challenge to relay to the client.
type Challenge struct {
	Status          int
	WWWAuthenticate string
}

// challenger is an error that carries an upstream authentication challenge.
type challenger interface {
	Challenge() (status int, wwwAuthenticate string)
}

// Admit decides on req. It never returns an error: evidence that cannot be gathered is
// resolved by the environment's fail mode, and the result says so.
func (g *Gate) Admit(ctx context.Context, req Request) Result {
	return g.decide(ctx, req, false)
}

// Query decides on req exactly as Admit would, for a client that asks what the gateway
// would answer (the decisions API, "portcullis check") without pushing or pulling. It acts
// on nothing: no sighting or previous-push baseline is recorded and the admission metrics
// do not count it. It is audited as an event of type query (audit.TypeQuery), not as a
// decision: who asked about which image is worth keeping, but a query must not read as a
// pull in the audit trail (nothing was served) nor trip alerts on denied pushes or pulls.
func (g *Gate) Query(ctx context.Context, req Request) Result {
	return g.decide(ctx, req, true)
}

// decide is Admit, or Query when query is set.
func (g *Gate) decide(ctx context.Context, req Request, query bool) Result {
	p := g.policy.Load()
	tag := ""
	if !strings.Contains(req.Reference, ":") {
		tag = req.Reference
	}
	// What the manifest is comes from its content alone: never from its tag's shape or a
	// subject field, which any client with push rights chooses.
	cls := policy.Classify(req.Manifest)
	in := policy.Input{
		Action:     req.Action,
		Host:       req.Host,
		Address:    req.Address,
		Repository: req.Repository,
		Tag:        tag,
		Digest:     req.Digest,
		Kind:       cls.Kind,
		Layers:     cls.Layers,
	}
	got := g.gather(ctx, p, req, &in)
	if got.challenge != nil {
		return Result{Verdict: policy.VerdictDeny, Challenge: got.challenge, Message: "authentication required by the upstream registry"}
	}
	undecided := readsRefused(got.undecided)
	now := g.now()
	dec := p.Evaluate(in, now)
	if len(got.signedBy) > 0 && dec.Verdict != policy.VerdictDeny {
		g.coverage.recordIndex(ctx, req.Repository, req.Digest, got.manifest, got.signedBy)
	}
	res := Result{Verdict: dec.Verdict, Decision: dec, Vulnerabilities: in.Vulnerabilities}
	for _, w := range dec.Warnings() {
		res.Warnings = append(res.Warnings, w.Message())
	}
	failMode := ""
	if undecided != nil {
		res.Undecided, res.Lasting = undecided.Error(), isLasting(undecided)
		mode := p.FailMode(dec.Environment)
		why := fmt.Sprintf("environment %s fails %s", dec.Environment, mode)
		if u := got.unscanned; got.scanning && u != nil && u.Then != "" {
			// The environment says what a pull of an image still being scanned gets.
			mode = map[string]string{policy.UnscannedRetry: policy.FailClosed, policy.UnscannedAllow: policy.FailOpen}[u.Then]
			why = fmt.Sprintf("environment %s answers pulls of images still being scanned with %s", dec.Environment, u.Then)
		}
		// Only the rules that need the missing evidence and would block let the fail mode
		// decide: observe rules record what could not be checked, warn rules warn.
		missing := slices.Concat(got.missing, ungathered(got.needs, in))
		blocking := dec.Unchecked(undecided.Error(), mode, missing...)
		if len(blocking) > 0 {
			failMode = mode
		}
		res.Verdict, res.Decision, res.Warnings = dec.Verdict, dec, nil
		for _, w := range dec.Warnings() {
			res.Warnings = append(res.Warnings, w.Message())
		}
		switch {
		case failMode == policy.FailClosed && deniedAnyway(dec, blocking):
			// A rule that could check denies: that is the answer, whatever was missing.
		case failMode == policy.FailClosed && res.Lasting:
			// Retrying cannot help: a denial that says who must act, which every client prints.
			res.Verdict = policy.VerdictDeny
			res.Message = fmt.Sprintf("%s cannot run; the platform team must act: %v. Until then this request is refused (%s); retrying will not help.",
				checkName(got.missing), undecided, why)
		case failMode == policy.FailClosed:
			res.Verdict, res.Unavailable, res.RetryAfter = policy.VerdictDeny, true, retryBriefly
			if got.scanning {
				res.RetryAfter = retryScan
				res.Message = fmt.Sprintf("%s is still running; retry in %s: %v. Until it ends this request is refused (%s); nothing needs to change.",
					checkName(got.missing), retryScan, undecided, why)
			} else {
				res.Message = fmt.Sprintf("%s is unavailable for now; retry in %s, and if it persists tell the platform team: %v. This request is refused meanwhile (%s).",
					checkName(got.missing), retryBriefly, undecided, why)
			}
		case failMode == policy.FailOpen && res.Verdict != policy.VerdictDeny:
			res.Verdict = policy.VerdictWarn
			res.Warnings = append(res.Warnings, "portcullis could not fully check this request (the warnings above say what); allowed because "+why)
		}
	}
	if res.Verdict == policy.VerdictDeny && res.Message == "" {
		res.Message = dec.DenyMessage()
	}
	res.FailMode = failMode
	res.Deadlines = p.Deadlines(res.Decision, in.Vulnerabilities, now)
	if query {
		g.record(ctx, audit.TypeQuery, req, in, res, undecided, failMode, now, got.compared)
		return res
	}
	if err := g.keep(ctx, req, got, in, res, now); err != nil {
		if req.Action == policy.ActionPush && res.Verdict != policy.VerdictDeny {
			// An accepted push must leave its records (baselines, the decision) behind:
			// without them the environment's fail mode answers, before the upstream
			// stores anything.
			res, failMode = g.unrecorded(p, res, err)
			res.FailMode = failMode
			undecided = errors.Join(undecided, err)
		} else {
			g.log.Warn("records not written", slog.String("request_id", req.RequestID), slog.String("error", err.Error()))
		}
	}
	g.record(ctx, audit.TypeDecision, req, in, res, undecided, failMode, now, got.compared)
	g.count(ctx, req.Action, res)
	return res
}

// imageTypes are the rule types that judge an image's content: without the manifest or
// the image evidence none of them can be decided.
var imageTypes = []string{policy.TypeConfig, policy.TypeSecret, policy.TypeVulnerability}

// manifestTypes are the rule types that need the manifest's body: without it none of them
// can be decided.
var manifestTypes = []string{policy.TypeConfig, policy.TypeSecret, policy.TypeVulnerability, policy.TypePlatform}

// gathered is what gather found besides the evidence it put into the input.
type gathered struct {
	// undecided says which evidence could not be gathered; the fail mode decides then.
	undecided error
	// scanning: a pull's scan outlasted the pull scan wait and goes on.
	scanning bool
	// wait is how long a pull waits for its scan (negative: no bound), and unscanned the
	// environment's answer when it runs out (nil: the fail mode answers).
	wait      time.Duration
	unscanned *policy.Unscanned
	// missing are the rule types whose evidence could not be gathered (with undecided).
	missing []string
	// baseManifest is the manifest of the baseline the scan was compared with, if any.
	baseManifest []byte
	// challenge is the upstream refusing the client's credentials for a read on its behalf.
	challenge *Challenge
	// signedBy are the authorities whose signatures verified for the digest.
	signedBy []string
	// manifest is the manifest body, read by the gate itself for a HEAD when rules need it.
	manifest []byte
	// compared: a rule judges new findings, so the vulnerability evidence was compared
	// with the image's baseline.
	compared bool
	// needs is the evidence the rules that apply need.
	needs policy.Needs
}

// gather collects into in the evidence the rules that apply to req need, and only that:
// the digest a pushed tag points at, signatures, the image configuration, the scan.
func (g *Gate) gather(ctx context.Context, p *policy.Policy, req Request, in *policy.Input) gathered {
	got := gathered{manifest: req.Manifest, wait: -1}
	if req.Action == policy.ActionPull {
		if g.pullScanWait > 0 {
			got.wait = g.pullScanWait
		}
		if u := p.UnscannedPull(p.Environment(req.Repository, req.Host)); u != nil {
			got.wait, got.unscanned = u.Wait, u
		}
		ctx = withPullWait(ctx, got.wait)
	}
	needs := p.Needs(req.Action, req.Repository, req.Host)
	got.needs = needs
	if needs.CurrentTagDigest && req.Action == policy.ActionPush && in.Tag != "" {
		cur, err := g.currentTag(ctx, req, in.Tag)
		var ch challenger
		if errors.As(err, &ch) {
			status, www := ch.Challenge()
			got.challenge = &Challenge{Status: status, WWWAuthenticate: www}
			return got
		}
		if err == nil && cur != "" && cur != req.Digest && policy.ArtifactTagKind(in.Tag) != "" {
			// A signature, attestation or SBOM tag may only grow: its current layers are needed.
			in.CurrentLayers, err = g.currentLayers(ctx, req.Repository, cur)
		}
		if err != nil {
			got.undecided, got.missing = fmt.Errorf("could not read which digest tag %s points at: %w", in.Tag, err), []string{policy.TypeImmutable}
			return got
		}
		in.CurrentDigest = cur
	}
	if in.Kind.IsArtifact() || req.Digest == "" || req.Action == policy.ActionDelete {
		return got
	}
	if needs.Signatures && req.Action == policy.ActionPull {
		ev, vr, err := g.signatureEvidence(ctx, p, req.Repository, req.Host, req.Digest)
		if err != nil {
			got.undecided, got.missing = fmt.Errorf("could not check the signatures of %s: %w", req.image(), err), []string{policy.TypeSignature}
			return got
		}
		in.Signatures, got.signedBy = ev, vr.Authorities()
	}
	platform := needs.Platform && !policy.PlatformDeferred(req.Action, in.Tag, in.Kind)
	if !needs.Image && !needs.Scan && !platform {
		return got
	}
	if len(got.manifest) == 0 {
		// A HEAD: the client did not ask for the bytes, but the image rules need them.
		if g.blobs == nil {
			got.undecided, got.missing = errString("this gateway reads no manifests (no image reader configured)"), manifestTypes
			return got
		}
		m, _, err := g.blobs.Manifest(ctx, req.Repository, req.Digest)
		if err != nil {
			got.undecided, got.missing = fmt.Errorf("could not read the manifest of %s: %w", req.image(), err), manifestTypes
			return got
		}
		got.manifest = m
	}
	if platform {
		ev, err := g.platformEvidence(ctx, req.Repository, got.manifest)
		if err != nil {
			got.undecided, got.missing = fmt.Errorf("could not read the platforms of %s: %w", req.image(), err), []string{policy.TypePlatform}
			return got
		}
		in.Platform = ev
	}
	if !needs.Image && !needs.Scan {
		return got
	}
	if needs.Image {
		// ev may come with an error: the configuration's evidence, its layers not searched.
		ev, err := g.imageEvidence(ctx, req.Action, req.Repository, got.manifest)
		in.Image = ev
		switch {
		case errors.Is(err, errScanPending):
			// The vulnerability scan needs the same layers: the retry gets both.
			got.scanning = true
			got.undecided = fmt.Errorf("%s is being scanned (its first pull: it did not come through the gateway; its layer files are searched for secrets), which takes longer than %s", req.image(), got.wait)
			got.missing = imageTypes
			return got
		case err != nil:
			got.undecided, got.missing = fmt.Errorf("could not inspect the image %s (configuration and layers): %w", req.image(), err), imageTypes
			return got
		}
	}
	if needs.Scan {
		got.compared = p.ComparesWithBaseline(req.Action, req.Repository, req.Host)
		env := p.Environment(req.Repository, req.Host)
		ev, base, err := g.vulnerabilityEvidence(ctx, req.Action, p.Scanner(env), p.CIScans(env), req.Repository, req.Digest, got.manifest, in.Image, got.compared)
		got.baseManifest = base
		switch {
		case errors.Is(err, errScanPending):
			got.scanning = true
			got.undecided, got.missing = fmt.Errorf("%s is being scanned (its first pull: it did not come through the gateway), which takes longer than %s", req.image(), got.wait), []string{policy.TypeVulnerability}
		case err != nil:
			got.undecided, got.missing = fmt.Errorf("could not scan %s: %w", req.image(), err), []string{policy.TypeVulnerability}
		}
		in.Vulnerabilities = ev
	}
	return got
}

// record writes the decision's audit event; a failing sink is logged, never fatal.
func (g *Gate) record(ctx context.Context, typ string, req Request, in policy.Input, res Result, undecided error, failMode string, now time.Time, compared bool) {
	e := audit.Event{
		Time:           now.UTC(),
		Type:           typ,
		RequestID:      req.RequestID,
		Action:         string(req.Action),
		Repository:     req.Repository,
		Reference:      req.Reference,
		Digest:         req.Digest,
		Kind:           string(in.Kind),
		Environment:    res.Decision.Environment,
		Verdict:        string(res.Verdict),
		Client:         audit.Client{Addr: req.ClientAddr, User: userOf(req.Authorization)},
		PolicyRevision: res.Decision.PolicyRevision,
		FailMode:       failMode,
	}
	if undecided != nil {
		e.Undecided = undecided.Error()
	}
	if sv := res.Decision.Service; sv != nil {
		e.Service = &audit.Service{Name: sv.Name, Team: sv.Team, Tier: sv.Tier}
	}
	switch {
	case compared:
		e.Vulnerabilities = auditVulnerabilities(in.Vulnerabilities)
	case in.Vulnerabilities != nil && len(in.Vulnerabilities.Disagreements) > 0:
		// No rule compared findings with a baseline: only where the scanners disagree.
		e.Vulnerabilities = &audit.Vulnerabilities{Disagreements: auditDisagreements(in.Vulnerabilities.Disagreements)}
	}
	e.ScanEvidence = in.Vulnerabilities.ScanEvidence()
	for _, r := range res.Decision.Results {
		ar := audit.Result{Rule: r.Rule, Type: r.Type, Mode: string(r.Mode), Outcome: string(r.Outcome), Finding: r.Finding, Fix: r.Fix}
		if r.EnforceFrom != nil {
			ar.EnforceFrom = r.EnforceFrom.Format(time.DateOnly)
		}
		ar.Exception, ar.ExpiredException = auditException(r.AppliedException), auditException(r.ExpiredException)
		e.Results = append(e.Results, ar)
	}
	if err := g.audit.Record(ctx, e); err != nil {
		g.log.Error("audit event not recorded by every recorder (the error names each that failed)", slog.String("error", err.Error()), slog.String("request_id", req.RequestID))
	}
}

// auditVulnerabilities summarises the vulnerability evidence of a decision for its audit
// event: the baseline, and which findings are new and which inherited from it.
func auditVulnerabilities(ev *policy.VulnerabilityEvidence) *audit.Vulnerabilities {
	if ev == nil || ev.Index {
		return nil
	}
	v := &audit.Vulnerabilities{BaselineNote: ev.BaselineNote}
	if b := ev.Baseline; b != nil {
		v.Baseline = &audit.Baseline{How: b.How, Repository: b.Repository, Digest: b.Digest}
	}
	for _, f := range ev.Findings {
		af := audit.Finding{ID: f.ID, Package: f.Package, Version: f.Version, Severity: f.Severity}
		if !f.FirstSeen.IsZero() {
			af.FirstSeen = f.FirstSeen.UTC().Format(time.DateOnly)
		}
		if f.Inherited {
			v.Inherited = append(v.Inherited, af)
		} else {
			v.New = append(v.New, af)
		}
	}
	v.Disagreements = auditDisagreements(ev.Disagreements)
	return v
}

// auditDisagreements copies where the scanners disagree into an audit event.
func auditDisagreements(ds []policy.Disagreement) []audit.Disagreement {
	var out []audit.Disagreement
	for _, d := range ds {
		ad := audit.Disagreement{ID: d.ID, Package: d.Package, On: d.On, MissingFrom: d.MissingFrom}
		for _, r := range d.Reports {
			ad.Reports = append(ad.Reports, audit.ScannerReport(r))
		}
		out = append(out, ad)
	}
	return out
}

// auditException names an applied or expired exception in an audit event.
func auditException(a *policy.AppliedException) *audit.Exception {
	if a == nil {
		return nil
	}
	return &audit.Exception{ID: a.ID, Owner: a.Owner, Expires: a.Expires.Format(time.DateOnly), Ticket: a.Ticket}
}
