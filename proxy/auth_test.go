package proxy_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/proxy"
)

// wantStatusErr checks that err is a registry error with HTTP status.
func wantStatusErr(t *testing.T, err error, status int) {
	t.Helper()
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != status {
		t.Errorf("error %v, want a registry error with status %d", err, status)
	}
}

// TestBasicAuthPassThrough puts the gateway in front of a registry that demands basic
// auth: the client's own credentials travel through, the challenge comes back intact, and
// the gateway's service account never stands in for an anonymous client.
func TestBasicAuthPassThrough(t *testing.T) {
	t.Parallel()
	e := newEnv(t, []func(*configuration.Configuration){regtest.Htpasswd(t, "ci", "s3cret")},
		proxy.WithServiceAccount(proxy.ServiceAccount{Username: "ci", Password: "s3cret"}))

	for _, target := range []string{"/v2/", "/v2/team/app/tags/list", "/v2/team/app/manifests/v1", "/v2/_catalog"} {
		up, upBody := e.up(t, http.MethodGet, target, nil)
		gw, gwBody := e.gw(t, http.MethodGet, target, nil)
		wantStatus(t, gw, gwBody, http.StatusUnauthorized)
		if got, want := gw.Header.Values("WWW-Authenticate"), up.Header.Values("WWW-Authenticate"); !slices.Equal(got, want) || len(want) == 0 {
			t.Errorf("GET %s: WWW-Authenticate %q through the gateway, %q from the upstream", target, got, want)
		}
		if string(gwBody) != string(upBody) {
			t.Errorf("GET %s: body %s through the gateway, %s from the upstream", target, gwBody, upBody)
		}
	}

	img := randomImage(t, 4096, 2)
	good := e.remoteOpts(t, &authn.Basic{Username: "ci", Password: "s3cret"})
	if err := remote.Write(ref(t, e.gwHost, "team/app:v1"), img, good...); err != nil {
		t.Fatalf("push with credentials: %v", err)
	}
	pulled, err := remote.Image(ref(t, e.gwHost, "team/app:v1"), good...)
	if err != nil {
		t.Fatalf("pull with credentials: %v", err)
	}
	if err := validate.Image(pulled); err != nil {
		t.Errorf("pulled image: %v", err)
	}

	bad := e.remoteOpts(t, &authn.Basic{Username: "ci", Password: "wrong"})
	_, err = remote.Image(ref(t, e.gwHost, "team/app:v1"), bad...)
	wantStatusErr(t, err, http.StatusUnauthorized)
	err = remote.Write(ref(t, e.gwHost, "team/app:v2"), img, bad...)
	wantStatusErr(t, err, http.StatusUnauthorized)
	_, err = remote.Image(ref(t, e.gwHost, "team/app:v1"), e.remoteOpts(t, nil)...)
	wantStatusErr(t, err, http.StatusUnauthorized)

	resp, body := e.gw(t, http.MethodGet, "/v2/team/app/tags/list", nil, "Authorization", "Basic Y2k6d3Jvbmc=") // ci:wrong
	wantStatus(t, resp, body, http.StatusUnauthorized)
	if resp.Header.Get("WWW-Authenticate") == "" {
		t.Error("401 for wrong credentials lost its WWW-Authenticate")
	}
}

// TestBearerTokenPassThrough puts the gateway in front of a registry using token auth:
// the client follows the upstream's Bearer challenge (relayed by the gateway) to the token
// server, then presents the token to the gateway, which passes it to the upstream.
func TestBearerTokenPassThrough(t *testing.T) {
	t.Parallel()
	opt, ts := regtest.TokenAuth(t, "ci", "s3cret")
	e := newEnv(t, []func(*configuration.Configuration){opt})

	resp, body := e.gw(t, http.MethodGet, "/v2/team/app/tags/list", nil)
	wantStatus(t, resp, body, http.StatusUnauthorized)
	challenge := resp.Header.Get("WWW-Authenticate")
	for _, part := range []string{`Bearer realm="` + ts.URL + `"`, `service="` + ts.Service + `"`, `scope="repository:team/app:pull"`} {
		if !strings.Contains(challenge, part) {
			t.Errorf("challenge %q lacks %s", challenge, part)
		}
	}
	up, _ := e.up(t, http.MethodGet, "/v2/team/app/tags/list", nil)
	if up.Header.Get("WWW-Authenticate") != challenge {
		t.Errorf("challenge through the gateway %q, from the upstream %q", challenge, up.Header.Get("WWW-Authenticate"))
	}

	img := randomImage(t, 4096, 2)
	d, _ := img.Digest()
	good := e.remoteOpts(t, &authn.Basic{Username: "ci", Password: "s3cret"})
	if err := remote.Write(ref(t, e.gwHost, "team/app:v1"), img, good...); err != nil {
		t.Fatalf("push through the bearer dance: %v", err)
	}
	if !slices.ContainsFunc(ts.Scopes(), func(s string) bool {
		return strings.HasPrefix(s, "repository:team/app:") && strings.Contains(s, "push")
	}) {
		t.Errorf("no push token was issued; scopes %v", ts.Scopes())
	}
	for _, r := range []string{"team/app:v1", "team/app@" + d.String()} {
		pulled, err := remote.Image(ref(t, e.gwHost, r), good...)
		if err != nil {
			t.Fatalf("pull %s through the bearer dance: %v", r, err)
		}
		if err := validate.Image(pulled); err != nil {
			t.Errorf("pulled %s: %v", r, err)
		}
	}
	if ts.Issued() == 0 {
		t.Error("the token server issued no token, so no bearer dance happened")
	}

	// Wrong password: the token server refuses, nothing is pulled.
	refused := ts.Refused()
	_, err := remote.Image(ref(t, e.gwHost, "team/app:v1"), e.remoteOpts(t, &authn.Basic{Username: "ci", Password: "wrong"})...)
	wantStatusErr(t, err, http.StatusUnauthorized)
	if ts.Refused() == refused {
		t.Error("the token server was not asked")
	}

	// A token for another repository does not open this one.
	tok, err := ts.Token("repository:other/app:pull")
	if err != nil {
		t.Fatal(err)
	}
	resp, body = e.gw(t, http.MethodGet, "/v2/team/app/manifests/v1", nil, "Authorization", "Bearer "+tok)
	wantStatus(t, resp, body, http.StatusUnauthorized)
	if c := resp.Header.Get("WWW-Authenticate"); !strings.Contains(c, `error="insufficient_scope"`) {
		t.Errorf("token for another repository: challenge %q, want insufficient_scope", c)
	}

	// A token from an issuer the registry does not trust is refused.
	forged := forgeToken(t, ts)
	resp, body = e.gw(t, http.MethodGet, "/v2/team/app/manifests/v1", nil, "Authorization", "Bearer "+forged)
	wantStatus(t, resp, body, http.StatusUnauthorized)
	if c := resp.Header.Get("WWW-Authenticate"); !strings.Contains(c, `error="invalid_token"`) {
		t.Errorf("forged token: challenge %q, want invalid_token", c)
	}

	// A valid token presented directly works through the gateway.
	tok, err = ts.Token("repository:team/app:pull")
	if err != nil {
		t.Fatal(err)
	}
	resp, body = e.gw(t, http.MethodGet, "/v2/team/app/tags/list", nil, "Authorization", "Bearer "+tok)
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(string(body), `"v1"`) {
		t.Errorf("tags with a token: %s", body)
	}
}

// forgeToken signs a token with the claims ts would issue, but with a key of its own.
func forgeToken(t *testing.T, ts *regtest.TokenServer) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "forged"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok, err := jwt.Signed(signer).Claims(map[string]any{
		"iss": ts.Issuer, "sub": "ci", "aud": ts.Service,
		"exp": now.Add(time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(),
		"access": []map[string]any{{"type": "repository", "name": "team/app", "actions": []string{"pull"}}},
	}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
