package main

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric/noop"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/config"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/telemetry"
)

// TestNewCacheNear: with Redis the gateway's store is the near cache over Redis, reported
// in /readyz once subscribed; cache.near.maxBytes 0 leaves it out.
func TestNewCacheNear(t *testing.T) {
	regtest.Redis(t) // skips loudly (fails under CI=true) without a Redis
	tel := &telemetry.Telemetry{Meter: noop.NewMeterProvider()}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := config.Default().Cache
	c.Redis.Addrs = []string{regtest.RedisAddr()}

	store, _, status, closeCache, err := newCache(c, tel, log)
	if err != nil {
		t.Fatal(err)
	}
	defer closeCache()
	if _, ok := store.(*cache.Near); !ok {
		t.Fatalf("store is %T, want *cache.Near", store)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.HasSuffix(status(), ": up; near cache: on") {
		if time.Now().After(deadline) {
			t.Fatalf("status %q never reported the near cache on", status())
		}
		time.Sleep(10 * time.Millisecond)
	}

	c.Near.MaxBytes = 0
	store, _, status, closeOff, err := newCache(c, tel, log)
	if err != nil {
		t.Fatal(err)
	}
	defer closeOff()
	if _, ok := store.(*cache.Resilient); !ok {
		t.Fatalf("with cache.near.maxBytes 0 the store is %T, want *cache.Resilient", store)
	}
	if strings.Contains(status(), "near") {
		t.Fatalf("status %q mentions a near cache that is off", status())
	}
}
