package mirror

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/portcullis-dev/portcullis/internal/cosigntest"
	"github.com/portcullis-dev/portcullis/internal/regtest"
)

// source is a registry holding a signed multi-arch image and a few versions of a
// single-platform one.
type source struct {
	host      string
	index     string // app/web:1.0.0, linux/amd64 + linux/arm64, signed (.sig and v3 bundle)
	children  map[string]string
	apiTags   map[string]string // app/api tag → digest
	publisher cosigntest.Key
}

func newSource(t *testing.T) *source {
	t.Helper()
	s := &source{host: strings.TrimPrefix(regtest.Registry(t), "http://"), children: map[string]string{}, apiTags: map[string]string{}, publisher: cosigntest.NewKey(t)}
	idx := v1.ImageIndex(empty.Index)
	for _, p := range []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64", Variant: "v8"}} {
		img := randomImage(t, 2048, 2)
		d, _ := img.Digest()
		s.children[platformString(&p)] = d.String()
		pl := p
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &pl}})
	}
	ref := s.ref(t, "app/web:1.0.0")
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	s.index = d.String()
	cosigntest.SignLegacy(t, s.host, "app/web", s.index, s.publisher)
	cosigntest.PushBundle(t, s.host, "app/web", s.index, s.publisher)
	for _, tag := range []string{"2.0.0", "2.1.0", "3.0.0", "nightly"} {
		s.pushAPI(t, tag)
	}
	return s
}

func (s *source) pushAPI(t *testing.T, tag string) v1.Image {
	t.Helper()
	img := randomImage(t, 4096, 2)
	d, _ := regtest.WriteImage(t, "http://"+s.host, "app/api:"+tag, img)
	s.apiTags[tag] = d
	return img
}

func (s *source) ref(t *testing.T, r string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(s.host+"/"+r, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func randomImage(t *testing.T, size, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(size, layers)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// mirrorFile is a mirror file for s: app/web (platforms as given) and app/api 2.x.
func (s *source) mirrorFile(t *testing.T, platforms string) *File {
	t.Helper()
	y := "version: 1\nsources:\n  - registry: " + s.host + "\n    repositories:\n" +
		"      - name: app/web\n        tags: [\"1.0.0\"]\n" + platforms +
		"      - name: app/api\n        semver: \"~2\"\n"
	f, err := ParseFile(strings.NewReader(y))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// signingKey is an encrypted cosign.key and its public key, as cosign generate-key-pair
// writes them.
type signingKey struct {
	signer   signature.Signer
	verifier signature.Verifier
	pub      []byte
}

func newSigningKey(t testing.TB) signingKey {
	t.Helper()
	password := []byte("correct horse")
	priv, pub, err := cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), func(bool) ([]byte, error) { return password, nil })
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(priv, []byte("ENCRYPTED SIGSTORE PRIVATE KEY")) {
		t.Fatalf("key is not a cosign key:\n%s", priv)
	}
	s, err := LoadSigner(priv, password)
	if err != nil {
		t.Fatal(err)
	}
	v, err := LoadVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{signer: s, verifier: v, pub: pub}
}

// collect resolves f and writes a bundle into a new directory.
func collect(t *testing.T, f *File, key signingKey, o WriteOptions) (string, *BundleManifest) {
	t.Helper()
	plan, err := Resolve(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "bundle")
	m, err := Write(context.Background(), plan, dir, key.signer, o)
	if err != nil {
		t.Fatal(err)
	}
	return dir, m
}

// copyDir copies a bundle directory so that a test can damage the copy.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// events decodes JSON-lines progress.
func events(t *testing.T, b []byte) []Event {
	t.Helper()
	var out []Event
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var e Event
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("progress line %q: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}

func mustHash(t *testing.T, s string) v1.Hash {
	t.Helper()
	h, err := v1.NewHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// signManifest writes m as dir's bundle manifest, signed by key (an insider or a stolen
// key, for crafted bundles).
func signManifest(t *testing.T, dir string, key signingKey, m *BundleManifest) {
	t.Helper()
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := signBlob(key.signer, data)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, SignatureFile), sig, 0o644); err != nil {
		t.Fatal(err)
	}
}
