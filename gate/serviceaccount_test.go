package gate_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/upstream"
)

const serviceAccountPolicy = `version: 1
environments:
  - {name: prod, repositories: ["prod/**"], platforms: [linux/arm64]}
  - {name: dev, repositories: ["dev/**"], failMode: open, platforms: [linux/arm64]}
rules:
  - {id: no-root, type: config, mode: block, check: root}
  - {id: hardware, type: platform, mode: block}
`

// TestUpstreamRequiringAuthWithoutServiceAccountIsALastingDenial: with a token-auth
// upstream and no service account, every decision that reads the image is refused in a
// closed environment as DENIED saying to configure upstream.serviceAccount (retrying cannot
// help), not as a 503; an open one warns. With the service account the same push passes.
func TestUpstreamRequiringAuthWithoutServiceAccountIsALastingDenial(t *testing.T) {
	opt, _ := regtest.TokenAuth(t, "svc", "s3cret")
	reg := regtest.Registry(t, opt)
	img := platformImage(t, "linux", "arm64", "")
	ref, err := name.ParseReference(strings.TrimPrefix(reg, "http://")+"/prod/app:1.0.0", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "svc", Password: "s3cret"})); err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()
	manifest, _ := img.RawManifest()
	p, err := policy.Parse([]byte(serviceAccountPolicy))
	if err != nil {
		t.Fatal(err)
	}
	up, err := upstream.New(reg, http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	now := gate.WithClock(func() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) })
	admit := func(g *gate.Gate, repo string) gate.Result {
		return g.Admit(context.Background(), gate.Request{Action: policy.ActionPull, Repository: repo, Reference: "1.0.0", Digest: digest.String(), Manifest: manifest})
	}

	without := gate.New(p, up, &memSink{}, gate.WithImages(up), now)
	res := admit(without, "prod/app")
	if res.Verdict != policy.VerdictDeny || res.Unavailable || !res.Lasting || res.RetryAfter != 0 ||
		!strings.Contains(res.Message, "configure upstream.serviceAccount") || !strings.Contains(res.Message, "retrying will not help") {
		t.Fatalf("prod without a service account: %s unavailable=%v lasting=%v %q", res.Verdict, res.Unavailable, res.Lasting, res.Message)
	}
	if dev := admit(without, "dev/app"); dev.Verdict != policy.VerdictWarn || dev.Unavailable {
		t.Fatalf("dev without a service account: %s %q", dev.Verdict, dev.Message)
	}

	with := gate.New(p, up, &memSink{}, gate.WithImages(up.WithServiceAccount("svc", "s3cret")), now)
	if res := admit(with, "prod/app"); res.Verdict != policy.VerdictAllow {
		t.Fatalf("prod with the service account: %s %q", res.Verdict, res.Message)
	}
	wrong := gate.New(p, up, &memSink{}, gate.WithImages(up.WithServiceAccount("svc", "wrong")), now)
	if res := admit(wrong, "prod/app"); res.Verdict != policy.VerdictDeny || res.Unavailable || !strings.Contains(res.Message, "check its credentials") {
		t.Fatalf("prod with a wrong service account: %s unavailable=%v %q", res.Verdict, res.Unavailable, res.Message)
	}
}
