package gate_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/cosigntest"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/upstream"
	"github.com/portcullis-dev/portcullis/verify"
)

func TestKeylessAuthorityThroughTheSignatureRule(t *testing.T) {
	reg := regtest.Registry(t)
	host := strings.TrimPrefix(reg, "http://")
	s := cosigntest.NewSigstore(t)
	const issuer = "https://token.actions.example.com"
	doc := `version: 1
exceptionProcess: "file a SEC ticket"
authorities:
  - name: ci
    keyless:
      issuer: ` + issuer + `
      subjectRegExp: 'release-bot(\+\w+)?@example\.com'
      trustedRoot: sigstore/trusted_root.json
environments:
  - name: prod
    repositories: ["prod/**"]
rules:
  - id: prod-signed
    type: signature
    mode: block
    environments: [prod]
    authorities: [ci]
`
	files := fstest.MapFS{"sigstore/trusted_root.json": {Data: s.TrustedRoot(t)}}
	p, err := policy.ParseWith([]byte(doc), policy.ParseOptions{ReadFile: files.ReadFile})
	if err != nil {
		t.Fatal(err)
	}
	g, _ := signedGate(t, reg, p)

	legacy := pushRandom(t, reg, "prod/api:1.0.0")
	s.PushLegacyKeyless(t, host, "prod/api", legacy, "release-bot@example.com", issuer, cosigntest.KeylessOptions{})
	if res := pull(g, "prod/api", legacy, nil); res.Verdict != policy.VerdictAllow {
		t.Fatalf("legacy keyless signature by the right identity: %s %q", res.Verdict, res.Message)
	}
	bundled := pushRandom(t, reg, "prod/api:1.0.1")
	s.PushKeylessBundle(t, host, "prod/api", bundled, "release-bot+v3@example.com", issuer, cosigntest.KeylessOptions{})
	if res := pull(g, "prod/api", bundled, nil); res.Verdict != policy.VerdictAllow {
		t.Fatalf("keyless bundle by the right identity: %s %q", res.Verdict, res.Message)
	}

	wrong := pushRandom(t, reg, "prod/api:1.0.2")
	s.PushKeylessBundle(t, host, "prod/api", wrong, "mallory@example.com", issuer, cosigntest.KeylessOptions{})
	res := pull(g, "prod/api", wrong, nil)
	if res.Verdict != policy.VerdictDeny {
		t.Fatalf("keyless bundle by another identity: %s %q", res.Verdict, res.Message)
	}
	for _, want := range []string{
		"[prod-signed]",
		`keyless signature by subject "mallory@example.com" from issuer "` + issuer + `"`,
		`authority "ci" requires subject matching "release-bot(\\+\\w+)?@example\\.com" from issuer "` + issuer + `"`,
		"cosign sign gw.example/prod/api@" + wrong + ` signed in as subject matching`,
	} {
		if !strings.Contains(res.Message, want) {
			t.Errorf("denial %q lacks %q", res.Message, want)
		}
	}
}

// TestCachedVerifierKeyless: keyless authorities are cached like keys, and a changed
// identity or trusted root is another question, verified again.
func TestCachedVerifierKeyless(t *testing.T) {
	reg := regtest.Registry(t)
	host := strings.TrimPrefix(reg, "http://")
	s := cosigntest.NewSigstore(t)
	img := pushRandom(t, reg, "prod/api:5.0.0")
	rdb := regtest.Redis(t, "portcullis:v1:signature:"+img+"*", "portcullis:v1:lock:portcullis:v1:signature:"+img+"*")
	const issuer = "https://token.example.com"
	s.PushLegacyKeyless(t, host, "prod/api", img, "ci@example.com", issuer, cosigntest.KeylessOptions{})

	up, err := upstream.New(reg, http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	real := &countingVerifier{Verifier: verify.New(up)}
	v := gate.NewCachedVerifier(real, cache.NewFlight(cache.NewRedis(rdb)))
	auth := func(subject string, root []byte) []verify.Authority {
		return []verify.Authority{{Name: "ci", Keyless: &verify.Keyless{Issuer: issuer, Subject: subject, TrustedRoot: root}}}
	}
	root := s.TrustedRoot(t)
	for range 2 {
		res, err := v.Verify(context.Background(), "prod/api", img, auth("ci@example.com", root), verify.Goal{})
		if err != nil || len(res.Authorities()) != 1 {
			t.Fatalf("keyless: %+v %v, want verified by ci", res, err)
		}
	}
	if n := real.calls.Load(); n != 1 {
		t.Fatalf("%d verifications for two checks, want 1", n)
	}
	if res, err := v.Verify(context.Background(), "prod/api", img, auth("other@example.com", root), verify.Goal{}); err != nil || len(res.Verified) != 0 {
		t.Fatalf("another identity: %+v %v, want not verified", res, err)
	}
	if res, err := v.Verify(context.Background(), "prod/api", img, auth("ci@example.com", cosigntest.NewSigstore(t).TrustedRoot(t)), verify.Goal{}); err != nil || len(res.Verified) != 0 {
		t.Fatalf("another trusted root: %+v %v, want not verified", res, err)
	}
	if n := real.calls.Load(); n != 3 {
		t.Fatalf("%d verifications after the identity and the trusted root changed, want 3", n)
	}
}
