package proxy_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/proxy"
	"github.com/portcullis-dev/portcullis/records"
	"github.com/portcullis-dev/portcullis/upstream"
)

// countedRecords is a real records store that counts the calls made to it.
type countedRecords struct {
	*records.Store
	calls atomic.Int64
}

func (c *countedRecords) RecordTag(ctx context.Context, repo, tag, digest string, at time.Time) (string, error) {
	c.calls.Add(1)
	return c.Store.RecordTag(ctx, repo, tag, digest, at)
}

func (c *countedRecords) FirstDigest(ctx context.Context, repo, tag string) (string, bool, error) {
	c.calls.Add(1)
	return c.Store.FirstDigest(ctx, repo, tag)
}

func (c *countedRecords) Sight(ctx context.Context, repo, advisory string, now time.Time) (records.Sighting, error) {
	c.calls.Add(1)
	return c.Store.Sight(ctx, repo, advisory, now)
}

func (c *countedRecords) Sighting(ctx context.Context, repo, advisory string) (records.Sighting, bool, error) {
	c.calls.Add(1)
	return c.Store.Sighting(ctx, repo, advisory)
}

func (c *countedRecords) Previous(ctx context.Context, repo string) (string, bool, error) {
	c.calls.Add(1)
	return c.Store.Previous(ctx, repo)
}

func (c *countedRecords) Baseline(ctx context.Context, repo, digest string) (records.Baseline, bool, error) {
	c.calls.Add(1)
	return c.Store.Baseline(ctx, repo, digest)
}

func (c *countedRecords) Layers(ctx context.Context, h string) (records.Image, bool, error) {
	c.calls.Add(1)
	return c.Store.Layers(ctx, h)
}

func (c *countedRecords) MarkReminder(ctx context.Context, id, day string, at time.Time) (bool, error) {
	c.calls.Add(1)
	return c.Store.MarkReminder(ctx, id, day, at)
}

func (c *countedRecords) UnmarkReminder(ctx context.Context, id, day string) error {
	c.calls.Add(1)
	return c.Store.UnmarkReminder(ctx, id, day)
}

func (c *countedRecords) Write(ctx context.Context, w records.Writes) error {
	c.calls.Add(1)
	return c.Store.Write(ctx, w)
}

func (c *countedRecords) AddDecision(ctx context.Context, d records.Decision) error {
	c.calls.Add(1)
	return c.Store.AddDecision(ctx, d)
}

// TestHotPathTouchesNoRecords: a push writes records, a pull served from the cache reads
// and writes none.
func TestHotPathTouchesNoRecords(t *testing.T) {
	reg := regtest.Registry(t)
	p, err := policy.Parse([]byte(hotPolicy))
	if err != nil {
		t.Fatal(err)
	}
	client, err := upstream.New(reg, http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	s, err := records.OpenMemory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rs := &countedRecords{Store: s}
	g := gate.New(p, client, discardSink{}, gate.WithLogger(quietLogger), gate.WithRecords(rs))
	px, err := proxy.New(reg, http.DefaultTransport, proxy.WithGate(g), proxy.WithCache(cache.NewMemory(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(px)
	defer srv.Close()
	if resp := putManifest(t, srv.URL, "prod/api", "1.0.0"); resp.StatusCode != http.StatusCreated {
		t.Fatalf("push: %s", resp.Status)
	}
	if rs.calls.Load() == 0 {
		t.Fatal("an accepted push wrote no records")
	}
	afterPush := rs.calls.Load()
	if first, _ := getManifest(t, srv.URL+"/v2/prod/api/manifests/1.0.0", ""); first.StatusCode != http.StatusOK {
		t.Fatalf("first pull: %s", first.Status)
	}
	// The first pull's decision row is written in the background: wait for it, so that
	// it is not counted against the cached pulls.
	deadline := time.Now().Add(10 * time.Second)
	for rs.calls.Load() == afterPush && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if rs.calls.Load() == afterPush {
		t.Fatal("the first pull's decision row was never written")
	}
	before := rs.calls.Load()
	for range 5 {
		resp, _ := getManifest(t, srv.URL+"/v2/prod/api/manifests/1.0.0", "")
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Portcullis-Cache") != "hit" {
			t.Fatalf("cached pull: %s cache %q", resp.Status, resp.Header.Get("Portcullis-Cache"))
		}
	}
	if n := rs.calls.Load() - before; n != 0 {
		t.Fatalf("five pulls served from the cache made %d records calls, want 0", n)
	}
}
