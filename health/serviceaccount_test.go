package health_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/health"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/upstream"
)

// TestReadinessSaysToConfigureTheServiceAccount: a token-auth upstream and no service
// account make /readyz not ready, saying what to do; the right account makes it ready.
func TestReadinessSaysToConfigureTheServiceAccount(t *testing.T) {
	t.Parallel()
	opt, _ := regtest.TokenAuth(t, "svc", "s3cret")
	reg := regtest.Registry(t, opt)
	anon, err := upstream.New(reg, http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		client *upstream.Client
		ready  bool
		reason string
	}{
		{anon, false, "upstream requires authentication: configure upstream.serviceAccount"},
		{anon.WithServiceAccount("svc", "wrong"), false, `upstream refused upstream.serviceAccount (user \"svc\")`},
		{anon.WithServiceAccount("svc", "s3cret"), true, `"serviceAccount":"ok"`},
	} {
		h := health.New(5 * time.Second)
		h.Add("serviceAccount", health.Cached(time.Minute, c.client.CheckServiceAccount))
		code, body := get(t, h, "/readyz")
		if (code == http.StatusOK) != c.ready || !strings.Contains(body, c.reason) {
			t.Errorf("%d %s, want ready %v saying %s", code, body, c.ready, c.reason)
		}
		if code, body := get(t, h.Bare(), "/readyz"); (code == http.StatusOK) != c.ready || strings.Contains(body, "serviceAccount") {
			t.Errorf("bare: %d %s", code, body)
		}
	}
}

func TestCachedRunsACheckOncePerTTL(t *testing.T) {
	t.Parallel()
	runs := 0
	check := health.Cached(time.Hour, func(context.Context) error { runs++; return nil })
	for range 3 {
		if err := check(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if runs != 1 {
		t.Fatalf("%d runs, want 1", runs)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := 0
	interrupted := health.Cached(time.Hour, func(ctx context.Context) error { calls++; return ctx.Err() })
	_ = interrupted(ctx)
	if err := interrupted(context.Background()); err != nil || calls != 2 {
		t.Fatalf("an interrupted check was remembered: %v, %d calls", err, calls)
	}
}
