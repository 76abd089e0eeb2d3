package upstream_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/upstream"
)

// wantServiceAccountError checks that err is a *ServiceAccountError saying what to do.
func wantServiceAccountError(t *testing.T, what string, err error, configured bool, text string) {
	t.Helper()
	var se *upstream.ServiceAccountError
	if !errors.As(err, &se) || se.Configured != configured || !strings.Contains(err.Error(), text) {
		t.Errorf("%s: %v, want a ServiceAccountError (configured %v) saying %q", what, err, configured, text)
	}
}

func TestCheckServiceAccountWithTokenAuth(t *testing.T) {
	t.Parallel()
	opt, ts := regtest.TokenAuth(t, "svc", "s3cret")
	base := regtest.Registry(t, opt)
	ctx := context.Background()
	anon := client(t, base, http.DefaultTransport)

	wantServiceAccountError(t, "no service account", anon.CheckServiceAccount(ctx), false,
		"upstream requires authentication: configure upstream.serviceAccount")
	refused := ts.Refused()
	wantServiceAccountError(t, "wrong password", anon.WithServiceAccount("svc", "wrong").CheckServiceAccount(ctx), true,
		`upstream refused upstream.serviceAccount (user "svc"): check its username, password and read rights (the upstream answered 401 Unauthorized)`)
	if ts.Refused() != refused+1 {
		t.Errorf("the probe with a wrong password asked the realm %d times, want once", ts.Refused()-refused)
	}
	if err := anon.WithServiceAccount("svc", "s3cret").CheckServiceAccount(ctx); err != nil {
		t.Fatalf("right service account: %v", err)
	}
	if !slices.Contains(ts.Scopes(), "registry:catalog:*") {
		t.Errorf("the probe asked for no catalog scope: %v", ts.Scopes())
	}
}

func TestCheckServiceAccountWithBasicAuthAndWithout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	basic := regtest.Registry(t, regtest.Htpasswd(t, "svc", "s3cret"))
	anon := client(t, basic, http.DefaultTransport)
	wantServiceAccountError(t, "no service account", anon.CheckServiceAccount(ctx), false, "configure upstream.serviceAccount")
	wantServiceAccountError(t, "wrong password", anon.WithServiceAccount("svc", "wrong").CheckServiceAccount(ctx), true, "upstream refused upstream.serviceAccount")
	if err := anon.WithServiceAccount("svc", "s3cret").CheckServiceAccount(ctx); err != nil {
		t.Fatalf("right service account: %v", err)
	}
	open := client(t, regtest.Registry(t), http.DefaultTransport)
	if err := open.CheckServiceAccount(ctx); err != nil {
		t.Fatalf("an upstream without authentication: %v", err)
	}
	var se *upstream.ServiceAccountError
	if err := client(t, "http://127.0.0.1:1", http.DefaultTransport).CheckServiceAccount(ctx); err == nil || errors.As(err, &se) {
		t.Fatalf("an unreachable upstream: %v, want an error that is not about the service account", err)
	}
}
