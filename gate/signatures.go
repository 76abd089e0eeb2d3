package gate

import (
	"context"
	"encoding/json"
	"time"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/verify"
)

// SignatureVerifier finds and checks the signatures of an image digest, and may stop as
// soon as goal is met.
type SignatureVerifier interface {
	Verify(ctx context.Context, repo, digest string, authorities []verify.Authority, goal verify.Goal) (verify.Result, error)
}

// WithCache sets the cache replicas share, for signed-index coverage and once-a-day
// reminders. Without it the gate keeps them in a small in-memory cache of its own.
func WithCache(store cache.LockingStore) Option {
	return func(g *Gate) { g.coverage.store = store }
}

// WithSignatures sets how the gate checks signatures; without it, signature rules that
// need evidence cannot decide and the environment's fail mode applies.
func WithSignatures(v SignatureVerifier) Option { return func(g *Gate) { g.sigs = v } }

// signatureEvidence verifies repo@digest against the policy's authorities, until what the
// signature rules for a pull of repo through host require is found, and, when the digest
// carries no valid signature itself, looks for a signed index that served it.
func (g *Gate) signatureEvidence(ctx context.Context, p *policy.Policy, repo, host, digest string) (*policy.SignatureEvidence, verify.Result, error) {
	if g.sigs == nil {
		return nil, verify.Result{}, errNoVerifier
	}
	auths := p.Authorities()
	va := make([]verify.Authority, len(auths))
	for i, a := range auths {
		va[i] = verify.Authority{Name: a.Name, Key: a.PublicKey}
		if k := a.Keyless; k != nil {
			va[i].Keyless = &verify.Keyless{Issuer: k.Issuer, Subject: k.Subject, SubjectRegExp: k.SubjectRegExp, TrustedRoot: k.TrustedRootJSON}
		}
	}
	res, err := g.sigs.Verify(ctx, repo, digest, va, signatureGoal(p.SignatureRequirements(repo, host)))
	if err != nil {
		return nil, res, err
	}
	ev := &policy.SignatureEvidence{Verified: res.Authorities()}
	for _, r := range res.Rejected {
		ev.Findings = append(ev.Findings, policy.SignatureFinding{Kind: string(r.Kind), Detail: r.Detail})
	}
	if len(ev.Verified) == 0 {
		if c, ok := g.coverage.get(ctx, repo, digest); ok {
			ev.CoveredBy, ev.Verified = c.Index, c.Authorities
		}
	}
	return ev, res, nil
}

// signatureGoal is what the verifier may stop at: every requirement met.
func signatureGoal(reqs []policy.SignatureRequirement) verify.Goal {
	var g verify.Goal
	for _, r := range reqs {
		g.Requirements = append(g.Requirements, verify.Requirement{Authorities: r.Authorities, Threshold: r.Threshold})
	}
	return g
}

type errString string

func (e errString) Error() string { return string(e) }

const errNoVerifier = errString("this gateway has no signature verifier configured")

// coverage remembers which platform manifests belong to a signed index, so that pulling
// them next by digest is covered by the index's signature (cosign signs the index). It
// lives in the cache the replicas share, so any replica honours what another served.
type coverage struct {
	store coverageStore
	ttl   time.Duration
}

// coverageStore is the part of a cache the gate's shared records need.
type coverageStore interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	Lock(ctx context.Context, key string, ttl time.Duration) (token string, ok bool, err error)
}

type covered struct {
	Index       string   `json:"index"`
	Authorities []string `json:"authorities"`
}

// coverageValueVersion is the format version of cached coverage records.
const coverageValueVersion = 1

func (c *coverage) get(ctx context.Context, repo, digest string) (covered, bool) {
	raw, ok, err := c.store.Get(ctx, cache.CoverageKey(repo, digest))
	var e covered
	if err != nil || !ok || !cache.Decode(raw, cache.KindCoverage, coverageValueVersion, &e) {
		return covered{}, false
	}
	return e, true
}

// recordIndex notes the children of a signed index.
func (c *coverage) recordIndex(ctx context.Context, repo, index string, manifest []byte, authorities []string) {
	var m struct {
		Manifests []struct {
			Digest string `json:"digest"`
		} `json:"manifests"`
	}
	if len(authorities) == 0 || json.Unmarshal(manifest, &m) != nil || len(m.Manifests) == 0 {
		return
	}
	v, err := cache.Encode(cache.KindCoverage, coverageValueVersion, covered{Index: index, Authorities: authorities})
	if err != nil {
		return
	}
	for _, child := range m.Manifests {
		_ = c.store.Set(context.WithoutCancel(ctx), cache.CoverageKey(repo, child.Digest), v, c.ttl)
	}
}
