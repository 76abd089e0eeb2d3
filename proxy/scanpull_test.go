package proxy_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/embedded"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/proxy"
	"github.com/portcullis-dev/portcullis/pullcred"
	"github.com/portcullis-dev/portcullis/upstream"
)

// A scanner adapter's credential pulls exactly one image through the gateway, on any
// replica sharing Redis, without a pull decision, read upstream as the service account
// (here through a token realm); everything else it is refused with OCI errors, and it
// stops working when revoked or expired.
func TestScanCredentialPullsOneImageOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opt, ts := regtest.TokenAuth(t, "svc", "s3cret")
	reg := regtest.StartRegistry(t, opt)
	svc := &authn.Basic{Username: "svc", Password: "s3cret"}
	img := randomImage(t, 2048, 2)
	digest, _ := img.Digest()
	upHost := hostOf(t, reg.URL)
	for _, r := range []string{"team/app:1.0.0", "other/app:1.0.0"} {
		if err := remote.Write(ref(t, upHost, r), img, remote.WithAuth(svc)); err != nil {
			t.Fatal(err)
		}
	}
	cfg, _ := img.ConfigName()

	// Pulls by anyone else are decided, and this gate denies them all: no scanner.
	p, err := policy.Parse([]byte("version: 1\nenvironments:\n  - {name: prod, repositories: [\"**\"], failMode: closed}\nrules:\n  - {id: vulns, type: vulnerability, mode: block, severity: high}\n"))
	if err != nil {
		t.Fatal(err)
	}
	up, err := upstream.New(reg.URL, http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	svcTransport := up.WithServiceAccount("svc", "s3cret").Transport()
	storeA := cache.NewRedis(regtest.Redis(t, cache.Prefix+"scancred:*"))
	storeB := cache.NewRedis(regtest.Redis(t))
	gateway := func(store cache.Store) gwEnv {
		g := gate.New(p, up, discardSink{})
		gw := regtest.Gateway(t, reg.URL, testLogger(t), proxy.WithGate(g), proxy.WithScanCredentials(pullcred.New(store), svcTransport))
		return newEnvFor(t, reg.URL, gw.URL)
	}
	a, b := gateway(storeA), gateway(storeB)
	issuer := pullcred.New(storeA)
	cred, err := issuer.Mint(ctx, "team/app", digest.String(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	basic := cred.Authorization()

	// The service account's own pull through the gateway is decided, and denied.
	resp, body := a.gw(t, http.MethodGet, "/v2/team/app/manifests/"+digest.String(), nil, "Authorization", "Bearer "+mustToken(t, ts, "repository:team/app:pull"))
	wantOCIError(t, resp, body, http.StatusForbidden, proxy.CodeDenied)

	issued := ts.Issued()
	for name, e := range map[string]gwEnv{"minting replica": a, "other replica": b} {
		resp, body := e.gw(t, http.MethodGet, "/v2/", nil, "Authorization", basic)
		wantStatus(t, resp, body, http.StatusOK)
		resp, body = e.gw(t, http.MethodGet, "/v2/team/app/manifests/"+digest.String(), nil, "Authorization", basic,
			"Accept", "application/vnd.docker.distribution.manifest.v2+json")
		wantStatus(t, resp, body, http.StatusOK)
		if sum := sha256.Sum256(body); "sha256:"+hex.EncodeToString(sum[:]) != digest.String() || resp.Header.Get("Docker-Content-Digest") != digest.String() {
			t.Fatalf("%s: served a manifest that is not %s", name, digest)
		}
		resp, body = e.gw(t, http.MethodHead, "/v2/team/app/manifests/"+digest.String(), nil, "Authorization", basic)
		wantStatus(t, resp, body, http.StatusOK)
		resp, body = e.gw(t, http.MethodGet, "/v2/team/app/blobs/"+cfg.String(), nil, "Authorization", basic)
		wantStatus(t, resp, body, http.StatusOK)
		if sum := sha256.Sum256(body); "sha256:"+hex.EncodeToString(sum[:]) != cfg.String() || resp.Header.Get("Content-Type") != "application/octet-stream" {
			t.Fatalf("%s: config blob %s served as %q", name, cfg, resp.Header.Get("Content-Type"))
		}
	}
	if ts.Issued() == issued {
		t.Error("the upstream's token realm issued nothing: the pulls did not go upstream as the service account")
	}
	// The Bearer form pulls the whole image with go-containerregistry (as Trivy does),
	// whatever the upstream's challenge.
	pulled, err := remote.Image(ref(t, b.gwHost, "team/app@"+digest.String()), b.remoteOpts(t, &authn.Bearer{Token: strings.TrimPrefix(cred.BearerAuthorization(), "Bearer ")})...)
	if err != nil {
		t.Fatalf("ggcr pull with the bearer form: %v", err)
	}
	if err := validate.Image(pulled); err != nil {
		t.Fatalf("pulled image: %v", err)
	}

	denied := []struct{ method, path string }{
		{http.MethodGet, "/v2/other/app/manifests/" + digest.String()}, // another repository
		{http.MethodGet, "/v2/other/app/blobs/" + cfg.String()},
		{http.MethodGet, "/v2/team/app/manifests/1.0.0"}, // a tag
		{http.MethodHead, "/v2/team/app/manifests/1.0.0"},
		{http.MethodGet, "/v2/team/app/manifests/sha256:" + strings.Repeat("a", 64)}, // another digest
		{http.MethodPut, "/v2/team/app/manifests/" + digest.String()},                // writes
		{http.MethodDelete, "/v2/team/app/manifests/" + digest.String()},
		{http.MethodDelete, "/v2/team/app/blobs/" + cfg.String()},
		{http.MethodPost, "/v2/team/app/blobs/uploads/"},
		{http.MethodGet, "/v2/team/app/tags/list"}, // listings
		{http.MethodGet, "/v2/_catalog"},
		{http.MethodGet, "/v2/team/app/referrers/" + digest.String()},
	}
	for _, d := range denied {
		resp, body := b.gw(t, d.method, d.path, []byte("{}"), "Authorization", basic)
		msg := wantOCIError(t, resp, body, http.StatusForbidden, proxy.CodeDenied)
		if d.method != http.MethodHead && !strings.Contains(msg, "only pulls team/app@"+digest.String()) {
			t.Errorf("%s %s: message %q", d.method, d.path, msg)
		}
	}

	unauthorized := func(what string, e gwEnv, auth string) {
		t.Helper()
		resp, body := e.gw(t, http.MethodGet, "/v2/team/app/manifests/"+digest.String(), nil, "Authorization", auth)
		wantOCIError(t, resp, body, http.StatusUnauthorized, proxy.CodeUnauthorized)
		if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("%s: challenge %q", what, resp.Header.Get("WWW-Authenticate"))
		}
	}
	forged := pullcred.Credential{ID: cred.ID, Secret: strings.Repeat("A", len(cred.Secret))}
	unauthorized("forged secret", a, forged.Authorization())
	guessed := pullcred.Credential{ID: strings.Repeat("0", 32), Secret: cred.Secret}
	unauthorized("guessed id", b, guessed.Authorization())

	// A gateway that mints none refuses the namespace, and does not pass it upstream.
	plain := newEnvFor(t, reg.URL, regtest.Gateway(t, reg.URL, testLogger(t)).URL)
	unauthorized("no scan credentials configured", plain, basic)

	// Revoked at the end of the scan: replayed on any replica, refused.
	if err := issuer.Revoke(ctx, cred); err != nil {
		t.Fatal(err)
	}
	unauthorized("revoked, same replica", a, basic)
	unauthorized("revoked, other replica", b, cred.BearerAuthorization())

	short, err := issuer.Mint(ctx, "team/app", digest.String(), 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	resp, body = b.gw(t, http.MethodHead, "/v2/team/app/manifests/"+digest.String(), nil, "Authorization", short.Authorization())
	wantStatus(t, resp, body, http.StatusOK)
	time.Sleep(400 * time.Millisecond)
	unauthorized("expired", b, short.Authorization())
}

func mustToken(t *testing.T, ts *regtest.TokenServer, scope string) string {
	t.Helper()
	tok, err := ts.Token(scope)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// With the embedded registry in process ("portcullis serve" without --upstream), a scan
// credential's pulls reach it through the same transport.
func TestScanCredentialInProcess(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := regtest.StartRegistry(t)
	img := randomImage(t, 1024, 1)
	digest, _ := img.Digest()
	if err := remote.Write(ref(t, hostOf(t, reg.URL), "team/app:1.0.0"), img); err != nil {
		t.Fatal(err)
	}
	store := cache.NewMemory(1 << 20)
	network, err := proxy.NewTransport(proxy.TransportOptions{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := upstream.New(embedded.InProcessURL, reg.Transport(network))
	if err != nil {
		t.Fatal(err)
	}
	gw := regtest.GatewayInProcess(t, reg, testLogger(t), proxy.WithScanCredentials(pullcred.New(store), svc.WithServiceAccount("", "").Transport()))
	cred, err := pullcred.New(store).Mint(ctx, "team/app", digest.String(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Image(ref(t, hostOf(t, gw.URL), "team/app@"+digest.String()), remote.WithAuth(&authn.Basic{Username: cred.Username(), Password: cred.Secret}))
	if err != nil {
		t.Fatalf("pull in process: %v", err)
	}
	if err := validate.Image(pulled); err != nil {
		t.Fatal(err)
	}
}
