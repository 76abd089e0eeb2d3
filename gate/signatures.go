package gate

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/verify"
)

// SignatureVerifier finds and checks the signatures of an image digest.
type SignatureVerifier interface {
	Verify(ctx context.Context, repo, digest string, authorities []verify.Authority) (verify.Result, error)
}

// WithSignatures sets how the gate checks signatures; without it, signature rules that
// need evidence cannot decide and the environment's fail mode applies.
func WithSignatures(v SignatureVerifier) Option { return func(g *Gate) { g.sigs = v } }

// signatureEvidence verifies repo@digest against the policy's authorities and, when the
// digest carries no valid signature itself, looks for a signed index that served it.
func (g *Gate) signatureEvidence(ctx context.Context, p *policy.Policy, repo, digest string) (*policy.SignatureEvidence, verify.Result, error) {
	if g.sigs == nil {
		return nil, verify.Result{}, errNoVerifier
	}
	auths := p.Authorities()
	va := make([]verify.Authority, len(auths))
	for i, a := range auths {
		va[i] = verify.Authority{Name: a.Name, Key: a.PublicKey}
	}
	res, err := g.sigs.Verify(ctx, repo, digest, va)
	if err != nil {
		return nil, res, err
	}
	ev := &policy.SignatureEvidence{Verified: res.Authorities()}
	for _, r := range res.Rejected {
		ev.Findings = append(ev.Findings, policy.SignatureFinding{Kind: string(r.Kind), Detail: r.Detail})
	}
	if len(ev.Verified) == 0 {
		if c, ok := g.coverage.get(repo, digest); ok {
			ev.CoveredBy, ev.Verified = c.index, c.authorities
		}
	}
	return ev, res, nil
}

type errString string

func (e errString) Error() string { return string(e) }

const errNoVerifier = errString("this gateway has no signature verifier configured")

// coverage remembers which platform manifests belong to a signed index, so that pulling
// them next by digest is covered by the index's signature (cosign signs the index).
type coverage struct {
	mu      sync.Mutex
	entries map[string]covered
	ttl     time.Duration
	now     func() time.Time
}

type covered struct {
	index       string
	authorities []string
	expires     time.Time
}

// maxCoverage bounds the entries remembered; the oldest half is dropped beyond it.
const maxCoverage = 100000

func newCoverage(now func() time.Time) *coverage {
	return &coverage{entries: map[string]covered{}, ttl: 24 * time.Hour, now: now}
}

func (c *coverage) get(repo, digest string) (covered, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[repo+"@"+digest]
	if !ok || c.now().After(e.expires) {
		return covered{}, false
	}
	return e, true
}

// recordIndex notes the children of a signed index.
func (c *coverage) recordIndex(repo, index string, manifest []byte, authorities []string) {
	var m struct {
		MediaType string `json:"mediaType"`
		Manifests []struct {
			Digest string `json:"digest"`
		} `json:"manifests"`
	}
	if len(authorities) == 0 || json.Unmarshal(manifest, &m) != nil || len(m.Manifests) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries)+len(m.Manifests) > maxCoverage {
		c.evictExpiredOrHalf()
	}
	exp := c.now().Add(c.ttl)
	for _, child := range m.Manifests {
		c.entries[repo+"@"+child.Digest] = covered{index: index, authorities: authorities, expires: exp}
	}
}

func (c *coverage) evictExpiredOrHalf() {
	now := c.now()
	for k, e := range c.entries {
		if now.After(e.expires) {
			delete(c.entries, k)
		}
	}
	n := len(c.entries) / 2
	for k := range c.entries {
		if n <= 0 {
			break
		}
		delete(c.entries, k)
		n--
	}
}
