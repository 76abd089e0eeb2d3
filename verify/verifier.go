package verify

import (
	"context"
	"fmt"
)

// Verifier checks the cosign signatures of images in one registry.
type Verifier struct {
	reg         Registry
	maxManifest int64
	maxBlob     int64
	budget      Budget
	// maxAttestation caps one attestation envelope or bundle (WithMaxAttestationSize).
	maxAttestation int64
}

// Option changes a Verifier's limits.
type Option func(*Verifier)

// WithMaxManifestSize caps the size of a signature manifest or referrers index verify
// reads (default 1 MiB). Larger ones are rejected as too large; the Registry's own cap
// applies too, and a listed manifest whose descriptor says it is larger is not fetched.
func WithMaxManifestSize(n int64) Option { return func(v *Verifier) { v.maxManifest = n } }

// WithMaxBlobSize caps the size of a signature payload or bundle (default 1 MiB).
func WithMaxBlobSize(n int64) Option { return func(v *Verifier) { v.maxBlob = n } }

// New returns a Verifier reading from reg.
func New(reg Registry, opts ...Option) *Verifier {
	v := &Verifier{reg: reg, maxManifest: 1 << 20, maxBlob: 1 << 20, budget: DefaultBudget(), maxAttestation: 16 << 20}
	for _, o := range opts {
		o(v)
	}
	return v
}

// Verify finds the signatures of repo@digest, in cosign's legacy `.sig` tag and as
// sigstore bundle or cosign signature referrers (referrers API and referrers tag scheme,
// merged), and checks them against authorities, cheap and likely candidates first: the
// `.sig` tag, then referrers whose artifact type is a signature's, smallest first. It
// stops as soon as goal is met (the zero Goal examines everything), and within the
// Verifier's Budget.
//
// Every artifact examined ends either in Verified or in Rejected; those left unexamined
// are counted in Spent.Unexamined, and listed in Rejected as KindOverBudget when the budget
// left them. An unsigned image gives a Result with no artifacts and no error. The error is
// for "could not decide": the registry could not be read, digest is not a digest, or an
// authority's key is unusable.
func (v *Verifier) Verify(ctx context.Context, repo, digest string, authorities []Authority, goal Goal) (Result, error) {
	img, err := parseDigest(digest)
	if err != nil {
		return Result{}, fmt.Errorf("verifying %s@%s: %w", repo, digest, err)
	}
	keys, err := loadKeys(authorities)
	if err != nil {
		return Result{}, err
	}
	c := &check{v: v, ctx: ctx, repo: repo, img: img, keys: keys, goal: goal, led: ledger{b: v.budget}}
	f, err := v.discover(ctx, repo, img, &c.led)
	if err != nil {
		return Result{}, fmt.Errorf("verifying %s@%s: %w", repo, digest, err)
	}
	if err := c.run(f); err != nil {
		return Result{}, fmt.Errorf("verifying %s@%s: %w", repo, digest, err)
	}
	return c.res, nil
}

// Discover lists, sorted, the signature and attestation artifacts of repo@digest, the
// same list Verify returns in Result.Artifacts, without fetching or verifying any of them:
// three registry reads, for a cache key computed before deciding to verify.
func (v *Verifier) Discover(ctx context.Context, repo, digest string) ([]string, error) {
	img, err := parseDigest(digest)
	if err != nil {
		return nil, fmt.Errorf("discovering %s@%s: %w", repo, digest, err)
	}
	f, err := v.discover(ctx, repo, img, &ledger{b: v.budget})
	if err != nil {
		return nil, fmt.Errorf("discovering %s@%s: %w", repo, digest, err)
	}
	return f.artifacts, nil
}
