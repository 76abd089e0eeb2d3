package policy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// listNode parses a YAML document and returns the value of its key "authorities".
func listNode(t *testing.T, doc string) *yaml.Node {
	t.Helper()
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &root); err != nil {
		t.Fatal(err)
	}
	m := root.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "authorities" {
			return m.Content[i+1]
		}
	}
	t.Fatal("no authorities key")
	return nil
}

func TestReadAuthoritiesAsThePolicyReadsThem(t *testing.T) {
	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k2, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	doc := "authorities:\n  - name: release\n    key: |\n" + indent(publicPEM(&k1.PublicKey), 6) +
		"    signCommand: cosign sign --key release.key\n  - name: vendor\n    keyFile: keys/vendor.pub\n"
	read := func(name string) ([]byte, error) {
		if name != "keys/vendor.pub" {
			return nil, errors.New("unexpected " + name)
		}
		return []byte(publicPEM(&k2.PublicKey)), nil
	}
	got, err := ReadAuthorities("sources[3].authorities", "mirror", listNode(t, doc), ParseOptions{ReadFile: read})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "release" || got[0].SignCommand != "cosign sign --key release.key" || got[1].KeyFile != "keys/vendor.pub" {
		t.Fatalf("authorities %+v", got)
	}
	if !k1.PublicKey.Equal(got[0].PublicKey) || !k2.PublicKey.Equal(got[1].PublicKey) {
		t.Fatal("keys differ from those written")
	}
	// The same list parsed as a policy's gives the same authorities.
	p, err := ParseWith([]byte("version: 1\n"+doc), ParseOptions{ReadFile: read})
	if err != nil {
		t.Fatal(err)
	}
	if pa := p.Authorities(); len(pa) != 2 || pa[0].Name != got[0].Name || !k2.PublicKey.Equal(pa[1].PublicKey) {
		t.Fatalf("policy authorities %+v", pa)
	}
	// A null list is an empty one.
	if got, err := ReadAuthorities("x", "mirror", listNode(t, "authorities:\n"), ParseOptions{}); err != nil || len(got) != 0 {
		t.Fatalf("null list: %v %v", got, err)
	}
}

func TestReadAuthoritiesProblemsUnderThePath(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	key := indent(publicPEM(&k.PublicKey), 6)
	doc := "authorities:\n  - name: a\n    key: |\n" + key +
		"  - name: a\n    keyFile: a.pub\n" +
		"  - name: b\n    key: |\n" + key +
		"  - {name: c, key: nonsense, shade: blue}\n"
	_, err := ReadAuthorities("sources[0].authorities", "mirror", listNode(t, doc), ParseOptions{})
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v, want a *ValidationError", err)
	}
	want := []string{
		"sources[0].authorities[1].name: duplicate of sources[0].authorities[0].name",
		"sources[0].authorities[1].keyFile: keyFile needs a mirror loaded from a file (portcullis reads it relative to the mirror file)",
		"sources[0].authorities[2].key: same key as sources[0].authorities[0] (a)",
		"sources[0].authorities[3].key: not a PEM public key",
		"sources[0].authorities[3].shade: unknown field",
	}
	var got []string
	for _, p := range ve.Problems {
		got = append(got, p.String())
	}
	if len(got) != len(want) {
		t.Fatalf("problems:\n%s\nwant %d", strings.Join(got, "\n"), len(want))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) || ve.Problems[i].Line == 0 {
			t.Errorf("problem %d: %q (line %d), want %q...", i, got[i], ve.Problems[i].Line, want[i])
		}
	}
	// Not a list.
	if _, err := ReadAuthorities("p", "mirror", listNode(t, "authorities: {name: a}\n"), ParseOptions{}); err == nil || !strings.Contains(err.Error(), "p: want a list, got a mapping") {
		t.Fatalf("mapping: %v", err)
	}
}
