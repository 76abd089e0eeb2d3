package gate_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/internal/scantest"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/proxy"
	"github.com/portcullis-dev/portcullis/pullcred"
	"github.com/portcullis-dev/portcullis/scan/harbor"
	"github.com/portcullis-dev/portcullis/upstream"
)

// mintLog is pullcred.Issuer, remembering what it minted (to replay it afterwards).
type mintLog struct {
	*pullcred.Issuer
	mu     sync.Mutex
	minted []pullcred.Credential
}

func (m *mintLog) Mint(ctx context.Context, repo, digest string, ttl time.Duration) (pullcred.Credential, error) {
	c, err := m.Issuer.Mint(ctx, repo, digest, ttl)
	m.mu.Lock()
	m.minted = append(m.minted, c)
	m.mu.Unlock()
	return c, err
}

// An adapter (portcullis's own, a real one) given the gateway's URL pulls the image
// through the gateway with a credential minted for that scan: the upstream needs a token
// (the adapter never sees the service account), the adapter's pulls are not decisions
// (the gate would wait on itself), its findings decide, and the credential is revoked
// when the scan ends.
func TestAdapterPullsThroughTheGatewayWithAScanCredential(t *testing.T) {
	for _, bearer := range []bool{true, false} {
		t.Run(map[bool]string{true: "bearer", false: "basic"}[bearer], func(t *testing.T) {
			var regOpt = regtest.Htpasswd(t, "svc", "s3cret")
			if bearer {
				// A token realm: only a Bearer credential gets past go-containerregistry's
				// ping, which takes a Basic one to the realm.
				regOpt, _ = regtest.TokenAuth(t, "svc", "s3cret")
			}
			reg := regtest.Registry(t, regOpt)
			img, err := mutate.AppendLayers(empty.Image, scantest.FileLayer(t, "app/svc", scantest.VulnerableGoBinary(t)))
			if err != nil {
				t.Fatal(err)
			}
			if img, err = mutate.Config(img, v1.Config{User: "65532"}); err != nil {
				t.Fatal(err)
			}
			r, err := name.ParseReference(strings.TrimPrefix(reg, "http://")+"/prod/svc:1.0.0", name.Insecure)
			if err != nil {
				t.Fatal(err)
			}
			if err := remote.Write(r, img, remote.WithAuth(&authn.Basic{Username: "svc", Password: "s3cret"})); err != nil {
				t.Fatal(err)
			}
			digest, _ := img.Digest()
			manifest, _ := img.RawManifest()

			up, err := upstream.New(reg, http.DefaultTransport)
			if err != nil {
				t.Fatal(err)
			}
			svc := up.WithServiceAccount("svc", "s3cret")
			p, err := policy.Parse([]byte(`version: 1
environments:
  - {name: prod, repositories: ["prod/**"], failMode: closed, scanner: own}
rules:
  - {id: vulns, type: vulnerability, mode: block, severity: high}
`))
			if err != nil {
				t.Fatal(err)
			}
			var handler http.Handler
			gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
			t.Cleanup(gw.Close)
			adapter := harbor.NewServer(harbor.NewBuiltin(scantest.GoDB(t)), harbor.WithRefreshAfter(time.Second),
				harbor.WithAllowedRegistries(gw.URL), harbor.WithScannerInfo(harbor.Scanner{Name: "own", Vendor: "portcullis", Version: "test"}))
			adapterSrv := httptest.NewServer(adapter)
			t.Cleanup(func() { adapterSrv.Close(); adapter.Close() })
			store := cache.NewMemory(1 << 20)
			client, err := harbor.NewClient(adapterSrv.URL, harbor.WithBound(time.Minute), harbor.WithStore(store, time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			issuer := &mintLog{Issuer: pullcred.New(store)}
			sink := &memSink{}
			g := gate.New(p, svc, sink, gate.WithImages(svc), gate.WithPullScanWait(time.Minute),
				gate.WithAdapters(map[string]gate.AdapterScanner{"own": client}, harbor.Registry{URL: gw.URL, Authorization: "Basic bm90OnNlbnQ="}),
				gate.WithScanCredentials(issuer, bearer))
			px, err := proxy.New(reg, http.DefaultTransport, proxy.WithGate(g), proxy.WithScanCredentials(pullcred.New(store), svc.Transport()))
			if err != nil {
				t.Fatal(err)
			}
			handler = px

			res := g.Admit(context.Background(), gate.Request{Action: policy.ActionPull, Repository: "prod/svc", Reference: digest.String(), Digest: digest.String(), Manifest: manifest})
			if res.Verdict != policy.VerdictDeny || !strings.Contains(res.Message, "GO-2022-1059") {
				t.Fatalf("pull judged on the adapter's findings: %s %q (undecided: %q)", res.Verdict, res.Message, res.Undecided)
			}
			if len(sink.events) != 1 {
				t.Fatalf("%d decisions recorded, want the one pull (the adapter's pulls are not decisions)", len(sink.events))
			}
			if len(issuer.minted) != 1 {
				t.Fatalf("%d credentials minted, want one for the one scan", len(issuer.minted))
			}
			c := issuer.minted[0]
			if c.Grant.Repository != "prod/svc" || c.Grant.Digest != digest.String() || time.Until(c.Grant.Expires) > time.Minute {
				t.Fatalf("grant %+v, want prod/svc@%s for at most the scan's bound", c.Grant, digest)
			}
			if _, err := issuer.Check(context.Background(), c.Username(), c.Secret); !errors.Is(err, pullcred.ErrInvalid) {
				t.Fatalf("the credential outlived its scan: %v", err)
			}
			// Findings kept by the client: a second decision mints nothing.
			g.Admit(context.Background(), gate.Request{Action: policy.ActionPull, Repository: "prod/svc", Reference: digest.String(), Digest: digest.String(), Manifest: manifest})
			if len(issuer.minted) != 1 {
				t.Fatalf("kept findings minted %d credentials in all, want 1", len(issuer.minted))
			}
		})
	}
}
