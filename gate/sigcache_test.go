package gate_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/cosigntest"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/upstream"
	"github.com/portcullis-dev/portcullis/verify"
)

// countingVerifier counts the verifications the real verifier runs.
type countingVerifier struct {
	*verify.Verifier
	calls atomic.Int64
}

func (c *countingVerifier) Verify(ctx context.Context, repo, digest string, a []verify.Authority, goal verify.Goal) (verify.Result, error) {
	c.calls.Add(1)
	return c.Verifier.Verify(ctx, repo, digest, a, goal)
}

func TestCachedVerifierSharesResultsAcrossReplicas(t *testing.T) {
	reg := regtest.Registry(t)
	host := strings.TrimPrefix(reg, "http://")
	release := cosigntest.NewKey(t)
	img := pushRandom(t, reg, "prod/api:1.0.0")
	rdb := regtest.Redis(t, "portcullis:v1:signature:"+img+"*", "portcullis:v1:lock:portcullis:v1:signature:"+img+"*")
	cosigntest.SignLegacy(t, host, "prod/api", img, release)

	up, err := upstream.New(reg, http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	real := &countingVerifier{Verifier: verify.New(up)}
	// Two replicas: separate flights (and in-process state) over one Redis.
	replicaA := gate.NewCachedVerifier(real, cache.NewFlight(cache.NewRedis(rdb)))
	replicaB := gate.NewCachedVerifier(real, cache.NewFlight(cache.NewRedis(rdb)))
	auths := []verify.Authority{{Name: "release", Key: release.Public()}}

	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			v := replicaA
			if i%2 == 1 {
				v = replicaB
			}
			res, err := v.Verify(context.Background(), "prod/api", img, auths, verify.Goal{})
			if err != nil || len(res.Authorities()) != 1 {
				t.Errorf("replica %d: %+v %v, want verified by release", i%2, res, err)
			}
		})
	}
	wg.Wait()
	if n := real.calls.Load(); n != 1 {
		t.Fatalf("%d verifications for 20 concurrent checks on two replicas, want 1", n)
	}

	// A second signature changes the artifacts: the next check verifies again.
	cosigntest.SignLegacy(t, host, "prod/api", img, cosigntest.NewKey(t))
	if _, err := replicaB.Verify(context.Background(), "prod/api", img, auths, verify.Goal{}); err != nil {
		t.Fatal(err)
	}
	if n := real.calls.Load(); n != 2 {
		t.Fatalf("%d verifications after a new signature was pushed, want 2", n)
	}
	// Another trusted key set is another question.
	other := []verify.Authority{{Name: "security", Key: cosigntest.NewKey(t).Public()}}
	if res, _ := replicaA.Verify(context.Background(), "prod/api", img, other, verify.Goal{}); len(res.Authorities()) != 0 {
		t.Fatalf("verified by a key that never signed: %+v", res)
	}
	if n := real.calls.Load(); n != 3 {
		t.Fatalf("%d verifications after the keys changed, want 3", n)
	}

	// Unsigned images are not cached (nothing to verify).
	unsigned := pushRandom(t, reg, "prod/api:2.0.0")
	if res, err := replicaA.Verify(context.Background(), "prod/api", unsigned, auths, verify.Goal{}); err != nil || len(res.Verified) != 0 {
		t.Fatalf("unsigned: %+v %v", res, err)
	}
}

// TestCachedVerifierRemembersFailuresBriefly: a verification that did not meet its goal is
// cached for minutes, one that did for a day, both in the shared cache (real Redis).
func TestCachedVerifierRemembersFailuresBriefly(t *testing.T) {
	reg := regtest.Registry(t)
	host := strings.TrimPrefix(reg, "http://")
	release, stranger := cosigntest.NewKey(t), cosigntest.NewKey(t)
	signed := pushRandom(t, reg, "prod/api:4.0.0")
	byStranger := pushRandom(t, reg, "prod/api:4.0.1")
	rdb := regtest.Redis(t, "portcullis:v1:signature:"+signed+"*", "portcullis:v1:signature:"+byStranger+"*",
		"portcullis:v1:lock:portcullis:v1:signature:"+signed+"*", "portcullis:v1:lock:portcullis:v1:signature:"+byStranger+"*")
	cosigntest.SignLegacy(t, host, "prod/api", signed, release)
	cosigntest.SignLegacy(t, host, "prod/api", byStranger, stranger)

	up, err := upstream.New(reg, http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	real := &countingVerifier{Verifier: verify.New(up)}
	v := gate.NewCachedVerifier(real, cache.NewFlight(cache.NewRedis(rdb)))
	auths := []verify.Authority{{Name: "release", Key: release.Public()}}
	goal := verify.Goal{Requirements: []verify.Requirement{{Authorities: []string{"release"}, Threshold: 1}}}
	ttl := func(digest string) time.Duration {
		t.Helper()
		keys, err := rdb.Keys(context.Background(), "portcullis:v1:signature:"+digest+":*").Result()
		if err != nil || len(keys) != 1 {
			t.Fatalf("signature keys of %s: %v %v, want one", digest, keys, err)
		}
		return rdb.PTTL(context.Background(), keys[0]).Val()
	}
	for range 2 {
		if res, err := v.Verify(context.Background(), "prod/api", signed, auths, goal); err != nil || !goal.Met(res) {
			t.Fatalf("signed: %+v %v", res, err)
		}
		if res, err := v.Verify(context.Background(), "prod/api", byStranger, auths, goal); err != nil || goal.Met(res) {
			t.Fatalf("signed by a stranger: %+v %v", res, err)
		}
	}
	if n := real.calls.Load(); n != 2 {
		t.Errorf("%d verifications for two pulls of two images, want 2 (the failure is cached too)", n)
	}
	if d := ttl(signed); d < 23*time.Hour {
		t.Errorf("a verified signature is cached for %s, want a day", d)
	}
	if d := ttl(byStranger); d <= 0 || d > 5*time.Minute {
		t.Errorf("a failed verification is cached for %s, want at most 5 minutes", d)
	}
}
