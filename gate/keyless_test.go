package gate_test

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/portcullis-dev/portcullis/internal/cosigntest"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/policy"
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
