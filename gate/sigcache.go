package gate

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/verify"
)

// discoveringVerifier can list a digest's signature artifacts cheaply before verifying.
type discoveringVerifier interface {
	SignatureVerifier
	Discover(ctx context.Context, repo, digest string) ([]string, error)
}

// Signature results are cached for these times: a verification that met its goal for a
// day, one that did not (a failure, or over budget) briefly, so that hostile artifacts
// cost one bounded computation every few minutes rather than one per pull, and a transient
// fault is not remembered for long. Either way a new signature changes the key.
const (
	signatureTTL       = 24 * time.Hour
	signatureFailedTTL = 5 * time.Minute
)

// CachedVerifier is a SignatureVerifier that remembers results in a cache shared by every
// replica, keyed by the manifest digest, the signature artifacts seen, the trusted keys
// and the goal. A new signature pushed for a digest changes the artifacts, and so the
// key: the next pull verifies again. One replica verifies a given key at a time; the
// others wait for its result.
type CachedVerifier struct {
	next     discoveringVerifier
	flight   *cache.Flight
	log      *slog.Logger
	exceeded metric.Int64Counter // nil until Instrument
}

// CachedVerifierOption changes a CachedVerifier.
type CachedVerifierOption func(*CachedVerifier)

// WithVerifierLogger sets where a CachedVerifier logs verifications that hit their
// budget (default slog.Default()).
func WithVerifierLogger(l *slog.Logger) CachedVerifierOption {
	return func(c *CachedVerifier) {
		if l != nil {
			c.log = l
		}
	}
}

// NewCachedVerifier caches next's results through flight.
func NewCachedVerifier(next discoveringVerifier, flight *cache.Flight, opts ...CachedVerifierOption) *CachedVerifier {
	c := &CachedVerifier{next: next, flight: flight, log: slog.Default()}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Instrument counts, in mp, the verifications that left work undone over their budget,
// by the limit hit (portcullis.signatures.budget.exceeded{limit}: referrers, layers,
// reads, bytes). Cached results are not counted again.
func (c *CachedVerifier) Instrument(mp metric.MeterProvider) error {
	ctr, err := mp.Meter("github.com/portcullis-dev/portcullis/gate").Int64Counter("portcullis.signatures.budget.exceeded",
		metric.WithDescription("Signature verifications that left signature artifacts unexamined over their budget, by the limit hit: referrers, layers, reads, bytes."))
	if err != nil {
		return err
	}
	c.exceeded = ctr
	return nil
}

// signatureValueVersion is the format version of cached verify.Result values.
const signatureValueVersion = 2

// Verify returns the cached result for repo@digest with these authorities and goal,
// verifying only when the artifacts, keys or goal changed since it was cached.
func (c *CachedVerifier) Verify(ctx context.Context, repo, digest string, authorities []verify.Authority, goal verify.Goal) (verify.Result, error) {
	artifacts, err := c.next.Discover(ctx, repo, digest)
	if err != nil {
		return verify.Result{}, err
	}
	if len(artifacts) == 0 {
		// Unsigned: nothing to verify, nothing worth caching.
		return verify.Result{}, nil
	}
	parts := append([]string{"repo:" + repo, "goal:" + goal.String()}, artifacts...)
	for _, a := range authorities {
		fp, err := keyFingerprint(a)
		if err != nil {
			return verify.Result{}, err
		}
		parts = append(parts, fp)
	}
	key := cache.SignatureKey(digest, cache.ArtifactsHash(parts))
	raw, err := c.flight.Do(ctx, key, func(ctx context.Context) ([]byte, error) {
		res, err := c.next.Verify(ctx, repo, digest, authorities, goal)
		if err != nil {
			return nil, err
		}
		c.report(ctx, repo, digest, res)
		return cache.Encode(cache.KindSignature, signatureValueVersion, res)
	}, cache.FlightOptions{TTL: signatureTTL, LockTTL: 15 * time.Second, ComputeTimeout: time.Minute,
		TTLOf: func(v []byte) time.Duration {
			var res verify.Result
			if cache.Decode(v, cache.KindSignature, signatureValueVersion, &res) && succeeded(goal, res) {
				return signatureTTL
			}
			return signatureFailedTTL
		}})
	if err != nil {
		return verify.Result{}, err
	}
	var res verify.Result
	if !cache.Decode(raw, cache.KindSignature, signatureValueVersion, &res) {
		// An unreadable value is a miss: verify directly.
		return c.next.Verify(ctx, repo, digest, authorities, goal)
	}
	return res, nil
}

// succeeded reports whether res is a success worth remembering for a day: it meets goal
// (for the zero Goal: some signature verified).
func succeeded(goal verify.Goal, res verify.Result) bool {
	if len(goal.Requirements) == 0 {
		return len(res.Verified) > 0
	}
	return goal.Met(res)
}

// report logs and counts a verification that hit its budget.
func (c *CachedVerifier) report(ctx context.Context, repo, digest string, res verify.Result) {
	s := res.Spent
	if len(s.Exceeded) == 0 {
		return
	}
	c.log.Warn("signature verification over budget",
		slog.String("repository", repo), slog.String("digest", digest),
		slog.String("exceeded", strings.Join(s.Exceeded, ",")),
		slog.Int("reads", s.Reads), slog.Int64("bytes", s.Bytes), slog.Int("referrers", s.Referrers),
		slog.Int("unexamined", s.Unexamined), slog.Int("verified", len(res.Verified)))
	if c.exceeded != nil {
		for _, limit := range s.Exceeded {
			c.exceeded.Add(ctx, 1, metric.WithAttributes(attribute.String("limit", limit)))
		}
	}
}

// keyFingerprint names an authority and its key (or, for a keyless authority, its
// identity and trusted root) for cache keys.
func keyFingerprint(a verify.Authority) (string, error) {
	if k := a.Keyless; k != nil {
		h := sha256.New()
		for _, s := range []string{k.Issuer, k.Subject, k.SubjectRegExp} {
			fmt.Fprintf(h, "%d:%s", len(s), s)
		}
		h.Write(k.TrustedRoot)
		return "keyless:" + a.Name + ":" + hex.EncodeToString(h.Sum(nil)), nil
	}
	der, err := x509.MarshalPKIXPublicKey(a.Key)
	if err != nil {
		return "", &lastingError{msg: fmt.Sprintf("authority %s has a key this gateway cannot use (%v); fix it in the policy", a.Name, err)}
	}
	sum := sha256.Sum256(der)
	return "key:" + a.Name + ":" + hex.EncodeToString(sum[:]), nil
}
