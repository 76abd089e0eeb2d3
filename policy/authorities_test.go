package policy

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"os"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

// unknownAlgorithmKey is a well-formed PKIX public key of an algorithm
// x509 does not know (its OID is made up).
func unknownAlgorithmKey(t *testing.T) string {
	der, err := asn1.Marshal(struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}{pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}}, asn1.BitString{Bytes: []byte{1, 2, 3}, BitLength: 24}})
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("PUBLIC KEY", der)
}

// oneAuthority is a policy with one authority whose key is key (PEM).
func oneAuthority(key string) string {
	return "version: 1\nauthorities:\n  - name: release\n    key: |\n" + indent(key, 6)
}

func TestParseAuthorityKeys(t *testing.T) {
	accepted := "want ECDSA P-256 or P-384, RSA of at least 2048 bits, or Ed25519"
	tests := []struct {
		kind string
		// check inspects an accepted key; nil when the key is refused.
		check func(any) bool
		want  string
		// prefix: want is only the start of the message (the rest is
		// the x509 package's own error text).
		prefix bool
	}{
		{kind: "p256", check: func(k any) bool { e, ok := k.(*ecdsa.PublicKey); return ok && e.Curve == elliptic.P256() }},
		{kind: "p384", check: func(k any) bool { e, ok := k.(*ecdsa.PublicKey); return ok && e.Curve == elliptic.P384() }},
		{kind: "rsa2048", check: func(k any) bool { r, ok := k.(*rsa.PublicKey); return ok && r.N.BitLen() == 2048 }},
		{kind: "ed25519", check: func(k any) bool { e, ok := k.(ed25519.PublicKey); return ok && len(e) == ed25519.PublicKeySize }},
		{kind: "rsa1024", want: "authorities[0].key: RSA key of 1024 bits is too weak (want at least 2048)"},
		{kind: "p521", want: "authorities[0].key: ECDSA curve P-521 is not supported (want P-256 or P-384)"},
		{kind: "dsa", want: "authorities[0].key: DSA keys are not supported (" + accepted + ")"},
		{kind: "x25519", want: "authorities[0].key: an X25519 key cannot sign (" + accepted + ")"},
		{kind: "rsa-pkcs1", want: `authorities[0].key: not a PEM public key: the PEM block is "RSA PUBLIC KEY" (want "PUBLIC KEY")`},
		{kind: "ec-private", want: "authorities[0].key: this is a private key (EC PRIVATE KEY): give the public key (cosign.pub), and never commit the private key"},
		{kind: "certificate", want: "authorities[0].key: this is a certificate, not a public key: give the signer's public key (cosign.pub), or for keyless signatures the identity under keyless"},
		{kind: "garbage", want: "authorities[0].key: not a PEM public key (want a -----BEGIN PUBLIC KEY----- block such as cosign.pub)"},
		{kind: "two keys", want: "authorities[0].key: holds more than one PEM block: give one key per authority"},
		{kind: "bad DER", want: "authorities[0].key: not a valid public key: the PEM block does not hold a DER-encoded PKIX public key"},
		{kind: "unknown algorithm", want: "authorities[0].key: not a valid public key: x509: ", prefix: true},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			var key string
			switch tt.kind {
			case "garbage":
				key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl release@ci"
			case "two keys":
				key = testKey(t, "p256") + testKey(t, "p384")
			case "bad DER":
				key = pemBlock("PUBLIC KEY", []byte("not DER at all"))
			case "unknown algorithm":
				key = unknownAlgorithmKey(t)
			default:
				key = testKey(t, tt.kind)
			}
			p, err := Parse([]byte(oneAuthority(key)))
			if tt.check != nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				a := p.Authorities()
				if len(a) != 1 || a[0].Name != "release" || a[0].KeyFile != "" || !tt.check(a[0].PublicKey) {
					t.Errorf("authorities = %+v", a)
				}
				return
			}
			got := problemStrings(t, err)
			if len(got) != 1 || (!tt.prefix && got[0] != tt.want) || (tt.prefix && !strings.HasPrefix(got[0], tt.want)) {
				t.Errorf("problems = %q, want [%q]", got, tt.want)
			}
		})
	}
}

func TestParseAuthoritiesMalformedReportsEveryProblem(t *testing.T) {
	_, err := parseFile(t, "authorities.yaml")
	want := []string{
		`authorities[0].key: RSA key of 1024 bits is too weak (want at least 2048)`,
		`authorities[1].name: invalid name "bad name" (want up to 63 letters, digits, '.', '_' or '-', starting with a letter or digit)`,
		`authorities[1].key: not a PEM public key (want a -----BEGIN PUBLIC KEY----- block such as cosign.pub)`,
		`authorities[2].key: DSA keys are not supported (want ECDSA P-256 or P-384, RSA of at least 2048 bits, or Ed25519)`,
		`authorities[3].key: ECDSA curve P-521 is not supported (want P-256 or P-384)`,
		`authorities[4]: give key or keyFile, not both`,
		`authorities[5]: needs key (an inline PEM public key), keyFile, or keyless (a certificate identity)`,
		`authorities[7].name: duplicate of authorities[0].name`,
		`authorities[7].keyFile: reading keys/missing.pub: no such file or directory`,
		`authorities[8].key: same key as authorities[6] (ok): a threshold counts distinct keys, so give each key one name`,
		`authorities[8].signCommand: empty: give the command or remove the field`,
		`authorities[8].comment: unknown field: authorities take name, key, keyFile, keyless and signCommand (line 61)`,
		`rules[0].actions: signature rules apply to pulls (signatures are pushed after the image)`,
		`rules[0].authorities[2]: "release" is listed twice`,
		`rules[0].authorities[1]: no authority named "nobody" (want one of release, dsa, p521, both, none, ok, copy)`,
		`rules[0].threshold: want 1 to 2 (the number of authorities listed), got 5`,
		`rules[1].threshold: needs authorities to count`,
		`rules[1].perPlatform: want true or false, got "maybe"`,
		`rules[2].keys: unknown field: signature rules take authorities, threshold and perPlatform (line 77)`,
		`rules[2].threshold: want a whole number, got "two"`,
	}
	if got := problemStrings(t, err); !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestParseSignaturesExample(t *testing.T) {
	p, err := parseFile(t, "signatures.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type auth struct{ name, typ, file, cmd string }
	var got []auth
	for _, a := range p.Authorities() {
		typ := map[bool]string{true: "ok"}[a.PublicKey != nil]
		switch k := a.PublicKey.(type) {
		case *ecdsa.PublicKey:
			typ = "ecdsa " + k.Curve.Params().Name
		case *rsa.PublicKey:
			typ = "rsa"
		case ed25519.PublicKey:
			typ = "ed25519"
		}
		got = append(got, auth{a.Name, typ, a.KeyFile, a.SignCommand})
	}
	want := []auth{
		{"release", "ecdsa P-256", "keys/release.pub", ""},
		{"security", "ecdsa P-384", "", "cosign sign --key k8s://security/release-key"},
		{"legacy-rsa", "rsa", "", ""},
		{"edge", "ed25519", "", ""},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("authorities = %q\nwant %q", got, want)
	}
	type sig struct {
		id          string
		actions     []Action
		authorities []string
		threshold   int
		perPlatform bool
	}
	var rules []sig
	for _, r := range p.Rules() {
		rules = append(rules, sig{r.ID, r.Actions, r.Authorities, r.Threshold, r.PerPlatform})
	}
	wantRules := []sig{
		{"prod-signatures", []Action{ActionPull}, []string{"release", "security"}, 2, true},
		{"dev-signatures", []Action{ActionPull}, []string{"release", "legacy-rsa", "edge"}, 1, false},
		{"unkeyed", []Action{ActionPull}, nil, 1, false},
	}
	if !reflect.DeepEqual(rules, wantRules) {
		t.Errorf("rules = %+v\nwant %+v", rules, wantRules)
	}
	// Authorities and Rules return copies.
	p.Rules()[0].Authorities[0] = "x"
	p.Authorities()[0].Name = "x"
	if p.Rules()[0].Authorities[0] != "release" || p.Authorities()[0].Name != "release" {
		t.Error("Rules() or Authorities() exposes the policy's own slices")
	}
}

func TestParseKeyFile(t *testing.T) {
	src := []byte("version: 1\nauthorities:\n  - name: release\n    keyFile: keys/release.pub\n")
	files := fstest.MapFS{
		"keys/release.pub": {Data: []byte(testKey(t, "p256"))},
		"keys/weak.pub":    {Data: []byte(testKey(t, "rsa1024"))},
		"keys/big.pub":     {Data: []byte(strings.Repeat("A", 64<<10+1))},
	}
	var asked []string
	opts := ParseOptions{ReadFile: func(name string) ([]byte, error) {
		asked = append(asked, name)
		return files.ReadFile(name)
	}}
	p, err := ParseWith(src, opts)
	if err != nil {
		t.Fatal(err)
	}
	if a := p.Authorities(); len(a) != 1 || a[0].KeyFile != "keys/release.pub" || a[0].PublicKey == nil {
		t.Errorf("authorities = %+v", a)
	}
	if !reflect.DeepEqual(asked, []string{"keys/release.pub"}) {
		t.Errorf("ReadFile asked for %q, want the name as written", asked)
	}

	tests := []struct {
		name, file string
		opts       ParseOptions
		want       string
	}{
		{"no ReadFile", "keys/release.pub", ParseOptions{},
			"authorities[0].keyFile: keyFile needs a policy loaded from a file (portcullis reads it relative to the policy file)"},
		{"missing", "keys/x.pub", opts, "authorities[0].keyFile: reading keys/x.pub: file does not exist"},
		{"weak key", "keys/weak.pub", opts, "authorities[0].keyFile: keys/weak.pub: RSA key of 1024 bits is too weak (want at least 2048)"},
		{"too large", "keys/big.pub", opts, "authorities[0].keyFile: reading keys/big.pub: larger than 64 KiB; a public key is a few hundred bytes"},
		{"empty name", `""`, opts, "authorities[0].keyFile: want the path of a PEM public key file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "version: 1\nauthorities:\n  - name: release\n    keyFile: " + tt.file + "\n"
			_, err := ParseWith([]byte(src), tt.opts)
			if got := problemStrings(t, err); len(got) != 1 || got[0] != tt.want {
				t.Errorf("problems = %q, want [%q]", got, tt.want)
			}
		})
	}
	// Parse is ParseWith without options.
	_, err1 := Parse(src)
	_, err2 := ParseWith(src, ParseOptions{})
	if !reflect.DeepEqual(err1, err2) || err1 == nil {
		t.Errorf("Parse: %v; ParseWith: %v", err1, err2)
	}
}

func TestRevisionFollowsKeyFiles(t *testing.T) {
	src := []byte("version: 1\nauthorities:\n  - name: release\n    keyFile: keys/release.pub\n")
	parse := func(key string) string {
		t.Helper()
		p, err := ParseWith(src, ParseOptions{ReadFile: fstest.MapFS{"keys/release.pub": {Data: []byte(key)}}.ReadFile})
		if err != nil {
			t.Fatal(err)
		}
		return p.Revision()
	}
	a, a2, b := parse(signerKey(0)), parse(signerKey(0)), parse(signerKey(1))
	if a != a2 {
		t.Error("the same policy and key file give different revisions")
	}
	if a == b {
		t.Error("replacing the key file's content does not change the revision")
	}
	if a == revisionOf(src) {
		t.Error("the revision of a policy with a key file is the policy's hash alone")
	}
	// Without key files the revision is the SHA-256 of the file, as before.
	data, err := os.ReadFile("testdata/signatures.yaml")
	if err != nil {
		t.Fatal(err)
	}
	inline := []byte(oneAuthority(signerKey(0)))
	p := mustParse(t, string(inline))
	sum := sha256.Sum256(inline)
	if p.Revision() != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Errorf("revision %s is not the file's SHA-256", p.Revision())
	}
	sp, err := ParseWith(data, testdataFiles)
	if err != nil || sp.Revision() == revisionOf(data) {
		t.Errorf("signatures.yaml reads a key file; revision %v, %v", sp, err)
	}
}

func TestParseSignatureRules(t *testing.T) {
	auths := authoritiesYAML("release", "security")
	tests := []struct {
		name, rule string
		want       []string
	}{
		{"defaults", "{id: s, type: signature, mode: block, authorities: [release]}", nil},
		{"pull only", "{id: s, type: signature, mode: block, actions: [pull], authorities: [release]}", nil},
		{"no authorities", "{id: s, type: signature, mode: warn}", nil},
		{"push", "{id: s, type: signature, mode: block, actions: [push], authorities: [release]}",
			[]string{"rules[0].actions: signature rules apply to pulls (signatures are pushed after the image)"}},
		{"push and pull", "{id: s, type: signature, mode: block, actions: [pull, push], authorities: [release]}",
			[]string{"rules[0].actions: signature rules apply to pulls (signatures are pushed after the image)"}},
		{"unknown authority", "{id: s, type: signature, mode: block, authorities: [release, nobody]}",
			[]string{`rules[0].authorities[1]: no authority named "nobody" (want one of release, security)`}},
		{"empty authorities", "{id: s, type: signature, mode: block, authorities: []}",
			[]string{"rules[0].authorities: empty list: give at least one item or remove the field"}},
		{"listed twice", "{id: s, type: signature, mode: block, authorities: [release, release], threshold: 2}",
			[]string{`rules[0].authorities[1]: "release" is listed twice`, "rules[0].threshold: want 1 to 1 (the number of authorities listed), got 2"}},
		{"threshold 2 of 2", "{id: s, type: signature, mode: block, authorities: [release, security], threshold: 2}", nil},
		{"threshold 3 of 2", "{id: s, type: signature, mode: block, authorities: [release, security], threshold: 3}",
			[]string{"rules[0].threshold: want 1 to 2 (the number of authorities listed), got 3"}},
		{"threshold 0", "{id: s, type: signature, mode: block, authorities: [release], threshold: 0}",
			[]string{"rules[0].threshold: want 1 to 1 (the number of authorities listed), got 0"}},
		{"threshold 1.5", "{id: s, type: signature, mode: block, authorities: [release], threshold: 1.5}",
			[]string{`rules[0].threshold: want a whole number, got "1.5"`}},
		{"threshold without authorities", "{id: s, type: signature, mode: block, threshold: 1}",
			[]string{"rules[0].threshold: needs authorities to count"}},
		{"perPlatform", "{id: s, type: signature, mode: block, authorities: [release], perPlatform: yes}",
			[]string{`rules[0].perPlatform: want true or false, got "yes"`}},
		{"inert parameter", "{id: s, type: signature, mode: block, keys: [cosign.pub]}",
			[]string{"rules[0].keys: unknown field: signature rules take authorities, threshold and perPlatform (line 3)"}},
		{"authorities on a tag rule", "{id: s, type: tag, mode: block, forbidden: [latest], authorities: [release]}",
			[]string{"rules[0].authorities: unknown field: tag rules take forbidden, allowed and requireDigest (line 3)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "version: 1\nrules:\n  - " + tt.rule + "\n" + auths
			p, err := Parse([]byte(src))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if r := p.Rules()[0]; !reflect.DeepEqual(r.Actions, []Action{ActionPull}) || r.Threshold < 1 {
					t.Errorf("rule = %+v, want actions [pull] and a threshold", r)
				}
				return
			}
			var got []string
			if err != nil {
				got = problemStrings(t, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
	// The authorities section may come after the rules; a policy without
	// one names the fix.
	_, err := Parse([]byte("version: 1\nrules:\n  - {id: s, type: signature, mode: block, authorities: [release]}\n"))
	if got := problemStrings(t, err); len(got) != 1 || got[0] != `rules[0].authorities[0]: no authority named "release" (add it under authorities)` {
		t.Errorf("problems = %q", got)
	}
}

func TestParseAuthoritySection(t *testing.T) {
	key := indent(signerKey(0), 6)
	tests := []struct {
		name, src string
		want      []string
	}{
		{"not a list", "version: 1\nauthorities: {name: a}\n", []string{"authorities: want a list, got a mapping"}},
		{"not a mapping", "version: 1\nauthorities: [release]\n", []string{`authorities[0]: want a mapping, got "release"`}},
		{"no name", "version: 1\nauthorities:\n  - key: |\n" + key, []string{"authorities[0].name: required"}},
		{"key not a string", "version: 1\nauthorities:\n  - {name: a, key: [x]}\n", []string{"authorities[0].key: want a string, got a list"}},
		{"null key", "version: 1\nauthorities:\n  - {name: a, key: ~}\n", []string{"authorities[0].key: want a PEM public key"}},
		{"null keyFile", "version: 1\nauthorities:\n  - {name: a, keyFile: ~}\n", []string{"authorities[0].keyFile: want the path of a PEM public key file"}},
		{"multi-line signCommand", "version: 1\nauthorities:\n  - name: a\n    signCommand: \"cosign sign\\n--key x\"\n    key: |\n" + key,
			[]string{"authorities[0].signCommand: must be one line without control characters"}},
		{"signCommand trimmed", "version: 1\nauthorities:\n  - name: a\n    signCommand: \"  cosign sign --key x  \"\n    key: |\n" + key, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse([]byte(tt.src))
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if got := p.Authorities()[0].SignCommand; got != "cosign sign --key x" {
					t.Errorf("signCommand = %q", got)
				}
				return
			}
			if got := problemStrings(t, err); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}
