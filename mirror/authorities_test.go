package mirror

import (
	"crypto"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/cosigntest"
)

func TestParseFileAuthoritiesInThePolicySyntax(t *testing.T) {
	release, vendor := cosigntest.NewKey(t), cosigntest.NewKey(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "vendor.pub"), []byte(vendor.PublicPEM(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	y := "version: 1\nsources:\n  - registry: ghcr.io\n    authorities:\n" + indent(release.AuthorityYAML(t, "release"), "    ") +
		"      - name: vendor\n        keyFile: vendor.pub\n        signCommand: cosign sign --key vendor.key\n" +
		"    repositories:\n      - name: a/b\n        tags: [v1]\n"
	read := func(name string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, name)) }
	f, err := ParseFileWith(strings.NewReader(y), ParseOptions{ReadFile: read})
	if err != nil {
		t.Fatal(err)
	}
	got := PublisherAuthorities(f.Sources[0], f.Sources[0].Repositories[0])
	if len(got) != 2 || got[0].Name != "release" || got[1].Name != "vendor" || got[1].KeyFile != "vendor.pub" || got[1].SignCommand != "cosign sign --key vendor.key" {
		t.Fatalf("authorities %+v", got)
	}
	if !release.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(got[0].PublicKey) || !vendor.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(got[1].PublicKey) {
		t.Fatal("keys differ from the file's")
	}
	// Without a way to read files, a keyFile is a problem (ParseFile reads no files).
	_, err = ParseFile(strings.NewReader(y))
	if err == nil || !strings.Contains(err.Error(), "sources[0].authorities[1].keyFile: keyFile needs a mirror loaded from a file") {
		t.Fatalf("ParseFile: %v", err)
	}
}

func TestParseFileAuthorityProblemsHaveFieldPaths(t *testing.T) {
	k := cosigntest.NewKey(t)
	y := "version: 1\nsources:\n  - registry: ghcr.io\n    authorities:\n" + indent(k.AuthorityYAML(t, "release"), "    ") +
		"      - name: broken\n        key: not a pem\n" +
		"      - name: release\n        keyFile: missing.pub\n" +
		"      - name: nokey\n        colour: blue\n" +
		"    repositories:\n" +
		"      - name: a/b\n        tags: [v1]\n        authorities: []\n" +
		"      - name: c/d\n        tags: [v1]\n        authorities:\n" + indent(k.AuthorityYAML(t, "x"), "        ") + indent(k.AuthorityYAML(t, "y"), "        ") +
		"  - registry: quay.io\n    authorities: []\n    repositories: [{name: e/f, tags: [v1]}]\n" +
		"  - registry: docker.io\n    authorities: {name: x}\n    repositories: [{name: e/f, tags: [v1]}]\n"
	read := func(name string) ([]byte, error) { return nil, os.ErrNotExist }
	_, err := ParseFileWith(strings.NewReader(y), ParseOptions{ReadFile: read})
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v, want a *ValidationError", err)
	}
	var got []string
	for _, p := range ve.Problems {
		got = append(got, p.String())
	}
	want := []string{
		"sources[0].repositories[0].authorities: empty: list this repository's publisher keys, or remove the field to use the source's",
		"sources[1].authorities: empty: list the publisher's keys, or remove the field to collect without publisher verification",
		"sources[0].authorities[1].key: not a PEM public key (want a -----BEGIN PUBLIC KEY----- block such as cosign.pub)",
		"sources[0].authorities[2].name: duplicate of sources[0].authorities[0].name",
		"sources[0].authorities[2].keyFile: reading missing.pub: file does not exist",
		"sources[0].authorities[3].colour: unknown field: authorities take name, key, keyFile, keyless and signCommand (line",
		"sources[0].authorities[3]: needs key (an inline PEM public key), keyFile, or keyless (a certificate identity)",
		"sources[0].repositories[1].authorities[1].key: same key as sources[0].repositories[1].authorities[0] (x)",
		"sources[2].authorities: want a list, got a mapping",
	}
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, w) }) {
			t.Errorf("no problem %q in:\n%s", w, strings.Join(got, "\n"))
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d problems, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
}
