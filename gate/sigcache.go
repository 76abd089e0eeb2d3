package gate

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/verify"
)

// discoveringVerifier can list a digest's signature artifacts cheaply before verifying.
type discoveringVerifier interface {
	SignatureVerifier
	Discover(ctx context.Context, repo, digest string) ([]string, error)
}

// CachedVerifier is a SignatureVerifier that remembers results in a cache shared by every
// replica, keyed by the manifest digest, the signature artifacts seen and the trusted
// keys. A new signature pushed for a digest changes the artifacts, and so the key: the
// next pull verifies again. One replica verifies a given key at a time; the others wait
// for its result.
type CachedVerifier struct {
	next   discoveringVerifier
	flight *cache.Flight
}

// NewCachedVerifier caches next's results through flight.
func NewCachedVerifier(next discoveringVerifier, flight *cache.Flight) *CachedVerifier {
	return &CachedVerifier{next: next, flight: flight}
}

// signatureValueVersion is the format version of cached verify.Result values.
const signatureValueVersion = 1

// Verify returns the cached result for repo@digest with these authorities, verifying
// only when the artifacts or keys changed since it was cached.
func (c *CachedVerifier) Verify(ctx context.Context, repo, digest string, authorities []verify.Authority) (verify.Result, error) {
	artifacts, err := c.next.Discover(ctx, repo, digest)
	if err != nil {
		return verify.Result{}, err
	}
	if len(artifacts) == 0 {
		// Unsigned: nothing to verify, nothing worth caching.
		return verify.Result{}, nil
	}
	parts := append([]string{"repo:" + repo}, artifacts...)
	for _, a := range authorities {
		fp, err := keyFingerprint(a)
		if err != nil {
			return verify.Result{}, err
		}
		parts = append(parts, fp)
	}
	key := cache.SignatureKey(digest, cache.ArtifactsHash(parts))
	raw, err := c.flight.Do(ctx, key, func(ctx context.Context) ([]byte, error) {
		res, err := c.next.Verify(ctx, repo, digest, authorities)
		if err != nil {
			return nil, err
		}
		return cache.Encode(cache.KindSignature, signatureValueVersion, res)
	}, cache.FlightOptions{TTL: 24 * time.Hour, LockTTL: 15 * time.Second, ComputeTimeout: time.Minute})
	if err != nil {
		return verify.Result{}, err
	}
	var res verify.Result
	if !cache.Decode(raw, cache.KindSignature, signatureValueVersion, &res) {
		// An unreadable value is a miss: verify directly.
		return c.next.Verify(ctx, repo, digest, authorities)
	}
	return res, nil
}

// keyFingerprint names an authority and its key for cache keys.
func keyFingerprint(a verify.Authority) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(a.Key)
	if err != nil {
		return "", fmt.Errorf("authority %s: %w", a.Name, err)
	}
	sum := sha256.Sum256(der)
	return "key:" + a.Name + ":" + hex.EncodeToString(sum[:]), nil
}
