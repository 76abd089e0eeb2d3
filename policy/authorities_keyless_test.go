package policy

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"testing/fstest"
)

// keylessFiles holds the public-good trusted root and broken ones.
func keylessFiles(t *testing.T) fstest.MapFS {
	t.Helper()
	good, err := os.ReadFile("testdata/keyless/trusted_root.json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(good, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "certificateAuthorities")
	noCA, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return fstest.MapFS{
		"sigstore/trusted_root.json": {Data: good},
		"sigstore/garbage.json":      {Data: []byte("{not json")},
		"sigstore/wrong-type.json":   {Data: []byte(`{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1", "tlogs": "x"}`)},
		"sigstore/no-ca.json":        {Data: noCA},
		"sigstore/empty.json":        {Data: []byte(`{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`)},
	}
}

func TestParseKeylessAuthority(t *testing.T) {
	files := keylessFiles(t)
	src := `version: 1
authorities:
  - name: ci
    keyless:
      issuer: https://token.actions.githubusercontent.com
      subjectRegExp: https://github\.com/example/app/\.github/workflows/release\.yaml@refs/tags/v.*
      trustedRoot: sigstore/trusted_root.json
  - name: alice
    keyless: {issuer: https://accounts.google.com, subject: alice@example.com, trustedRoot: sigstore/trusted_root.json}
`
	p, err := ParseWith([]byte(src), ParseOptions{ReadFile: files.ReadFile})
	if err != nil {
		t.Fatal(err)
	}
	as := p.Authorities()
	if len(as) != 2 {
		t.Fatalf("authorities = %+v", as)
	}
	ci, alice := as[0].Keyless, as[1].Keyless
	if ci == nil || ci.Issuer != "https://token.actions.githubusercontent.com" || ci.SubjectRegExp == "" || ci.Subject != "" ||
		ci.TrustedRoot != "sigstore/trusted_root.json" || string(ci.TrustedRootJSON) != string(files["sigstore/trusted_root.json"].Data) {
		t.Errorf("ci = %+v", ci)
	}
	if alice == nil || alice.Subject != "alice@example.com" || as[1].PublicKey != nil {
		t.Errorf("alice = %+v", as[1])
	}
	if got, want := alice.Identity(), `subject "alice@example.com" from issuer "https://accounts.google.com"`; got != want {
		t.Errorf("Identity() = %q, want %q", got, want)
	}
}

func TestParseKeylessAuthorityProblems(t *testing.T) {
	files := keylessFiles(t)
	opts := ParseOptions{ReadFile: files.ReadFile}
	const root = "sigstore/trusted_root.json"
	tests := []struct {
		name, keyless string
		opts          ParseOptions
		want          []string
	}{
		{"malformed JSON", `{issuer: i, subject: s, trustedRoot: sigstore/garbage.json}`, opts,
			[]string{"authorities[0].keyless.trustedRoot: sigstore/garbage.json: not a sigstore trusted_root.json: "}},
		{"wrong field type", `{issuer: i, subject: s, trustedRoot: sigstore/wrong-type.json}`, opts,
			[]string{"authorities[0].keyless.trustedRoot: sigstore/wrong-type.json: not a sigstore trusted_root.json: "}},
		{"no CA", `{issuer: i, subject: s, trustedRoot: sigstore/no-ca.json}`, opts,
			[]string{"authorities[0].keyless.trustedRoot: sigstore/no-ca.json: no certificateAuthorities: keyless certificates cannot be checked without the Fulcio CA"}},
		{"nothing", `{issuer: i, subject: s, trustedRoot: sigstore/empty.json}`, opts,
			[]string{"authorities[0].keyless.trustedRoot: sigstore/empty.json: no certificateAuthorities"}},
		{"missing file", `{issuer: i, subject: s, trustedRoot: sigstore/x.json}`, opts,
			[]string{"authorities[0].keyless.trustedRoot: reading sigstore/x.json: file does not exist"}},
		{"no ReadFile", `{issuer: i, subject: s, trustedRoot: ` + root + `}`, ParseOptions{},
			[]string{"authorities[0].keyless.trustedRoot: trustedRoot needs a policy loaded from a file (portcullis reads it relative to the policy file)"}},
		{"both subjects", `{issuer: i, subject: s, subjectRegExp: s.*, trustedRoot: ` + root + `}`, opts,
			[]string{"authorities[0].keyless: give subject or subjectRegExp, not both"}},
		{"no subject", `{issuer: i, trustedRoot: ` + root + `}`, opts,
			[]string{"authorities[0].keyless: needs subject or subjectRegExp: the identity signatures must be made by"}},
		{"no issuer", `{subject: s, trustedRoot: ` + root + `}`, opts,
			[]string{"authorities[0].keyless.issuer: required: the OIDC issuer the certificate must name"}},
		{"no trusted root", `{issuer: i, subject: s}`, opts,
			[]string{"authorities[0].keyless.trustedRoot: required: the path of sigstore's trusted_root.json (Fulcio CAs, Rekor keys) to verify offline with"}},
		{"bad regexp", `{issuer: i, subjectRegExp: "a(", trustedRoot: ` + root + `}`, opts,
			[]string{"authorities[0].keyless.subjectRegExp: not a regular expression: "}},
		{"empty subject", `{issuer: i, subject: "", trustedRoot: ` + root + `}`, opts,
			[]string{"authorities[0].keyless.subject: want the certificate subject (an email or URI) (one line, not empty)"}},
		{"unknown field", `{issuer: i, subject: s, trustedRoot: ` + root + `, san: x}`, opts,
			[]string{"authorities[0].keyless.san: unknown field: keyless takes issuer, subject, subjectRegExp and trustedRoot (line 4)"}},
		{"not a mapping", `yes`, opts,
			[]string{"authorities[0].keyless: want a mapping, got "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "version: 1\nauthorities:\n  - name: ci\n    keyless: " + tt.keyless + "\n"
			_, err := ParseWith([]byte(src), tt.opts)
			got := problemStrings(t, err)
			if len(got) != len(tt.want) {
				t.Fatalf("problems = %q, want %q", got, tt.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("problem %d = %q, want it to start with %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestParseKeylessWithKeyRefused(t *testing.T) {
	src := "version: 1\nauthorities:\n  - name: ci\n    keyFile: k.pub\n    keyless: {issuer: i, subject: s, trustedRoot: r.json}\n"
	files := keylessFiles(t)
	files["r.json"] = files["sigstore/trusted_root.json"]
	files["k.pub"] = &fstest.MapFile{Data: []byte(testKey(t, "p256"))}
	_, err := ParseWith([]byte(src), ParseOptions{ReadFile: files.ReadFile})
	got := problemStrings(t, err)
	if len(got) != 1 || got[0] != "authorities[0]: give key, keyFile or keyless, only one" {
		t.Errorf("problems = %q", got)
	}
}

func TestParseKeylessSameIdentityTwice(t *testing.T) {
	src := `version: 1
authorities:
  - name: ci
    keyless: {issuer: i, subject: s, trustedRoot: sigstore/trusted_root.json}
  - name: ci-again
    keyless: {issuer: i, subject: s, trustedRoot: sigstore/trusted_root.json}
  - name: other
    keyless: {issuer: i, subject: t, trustedRoot: sigstore/trusted_root.json}
`
	_, err := ParseWith([]byte(src), ParseOptions{ReadFile: keylessFiles(t).ReadFile})
	got := problemStrings(t, err)
	want := "authorities[1].keyless: same identity and trusted root as authorities[0] (ci): a threshold counts distinct authorities, so give each identity one name"
	if len(got) != 1 || !strings.HasPrefix(got[0], want) {
		t.Errorf("problems = %q, want [%q]", got, want)
	}
}
