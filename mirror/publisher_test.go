package mirror

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/portcullis-dev/portcullis/internal/cosigntest"
	"github.com/portcullis-dev/portcullis/internal/regtest"
)

// publisherSource is a registry whose images are signed in each way cosign signs, not at
// all, or by someone else.
type publisherSource struct {
	host      string
	publisher cosigntest.Key
	other     cosigntest.Key
	digests   map[string]string // repository → digest of its tag 1.0
	layers    map[string]string // repository → digest of a layer only it has
}

func newPublisherSource(t *testing.T) *publisherSource {
	t.Helper()
	s := &publisherSource{host: strings.TrimPrefix(regtest.Registry(t), "http://"), publisher: cosigntest.NewKey(t), other: cosigntest.NewKey(t),
		digests: map[string]string{}, layers: map[string]string{}}
	push := func(repo string) string {
		img := randomImage(t, 1024, 1)
		d, _ := regtest.WriteImage(t, "http://"+s.host, repo+":1.0", img)
		ls, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		ld, _ := ls[0].Digest()
		s.digests[repo], s.layers[repo] = d, ld.String()
		return d
	}
	cosigntest.SignLegacy(t, s.host, "app/legacy", push("app/legacy"), s.publisher)       // cosign v2: .sig tag
	cosigntest.PushBundle(t, s.host, "app/bundle", push("app/bundle"), s.publisher)       // cosign v3: bundle referrer
	push("app/unsigned")                                                                  // no signature
	cosigntest.SignLegacy(t, s.host, "app/other", push("app/other"), s.other)             // someone else's key
	cosigntest.PushBundle(t, s.host, "app/otherbundle", push("app/otherbundle"), s.other) // someone else's key, v3

	// Multi-arch indexes: cosign signs the index digest. app/index is signed so;
	// app/childsigned has only its platform manifests signed, which does not sign the index.
	for _, repo := range []string{"app/index", "app/childsigned"} {
		idx := v1.ImageIndex(empty.Index)
		var children []string
		for _, p := range []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}} {
			img := randomImage(t, 1024, 1)
			d, _ := img.Digest()
			children = append(children, d.String())
			pl := p
			idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &pl}})
		}
		ref, err := name.ParseReference(s.host+"/"+repo+":1.0", name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.WriteIndex(ref, idx); err != nil {
			t.Fatal(err)
		}
		d, _ := idx.Digest()
		s.digests[repo] = d.String()
		if repo == "app/index" {
			cosigntest.SignLegacy(t, s.host, repo, d.String(), s.publisher)
			cosigntest.PushBundle(t, s.host, repo, d.String(), s.publisher)
		} else {
			for _, c := range children {
				cosigntest.SignLegacy(t, s.host, repo, c, s.publisher)
			}
		}
	}
	return s
}

// file is a mirror file selecting tag 1.0 of repos, with the publisher's key as the
// source's authority "release"; extra is appended to the source (e.g. a repository).
func (s *publisherSource) file(t *testing.T, repos ...string) *File {
	t.Helper()
	y := "version: 1\nsources:\n  - registry: " + s.host + "\n    authorities:\n" + indent(s.publisher.AuthorityYAML(t, "release"), "    ") +
		"    repositories:\n"
	for _, r := range repos {
		y += "      - name: " + r + "\n        tags: [\"1.0\"]\n"
	}
	f, err := ParseFile(strings.NewReader(y))
	if err != nil {
		t.Fatalf("%v\n%s", err, y)
	}
	return f
}

func indent(s, by string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = by + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}

func TestPublisherVerificationSignedImagesPass(t *testing.T) {
	s := newPublisherSource(t)
	plan, err := Resolve(context.Background(), s.file(t, "app/legacy", "app/bundle", "app/index"))
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Unverified) != 0 {
		t.Fatalf("unverified: %v", plan.Unverified)
	}
	want := map[string]string{"app/legacy": "legacy", "app/bundle": "bundle", "app/index": "legacy"}
	if len(plan.Images) != 3 {
		t.Fatalf("images %+v", plan.Images)
	}
	for _, img := range plan.Images {
		repo := strings.TrimPrefix(img.Source, s.host+"/")
		if img.Digest != s.digests[repo] {
			t.Errorf("%s: digest %s, want %s", repo, img.Digest, s.digests[repo])
		}
		p := img.Publisher
		if p == nil || !slices.Equal(p.Verified, []string{"release"}) || !slices.Equal(p.Authorities, []string{"release"}) || len(p.Signatures) == 0 {
			t.Fatalf("%s: publisher %+v, want verified by release", repo, p)
		}
		if p.Signatures[0].Format != want[repo] || p.Signatures[0].Authority != "release" || !digestPattern.MatchString(p.Signatures[0].Artifact) {
			t.Errorf("%s: signature %+v, want a %s signature by release", repo, p.Signatures[0], want[repo])
		}
	}
	if len(plan.Images[2].Children) != 2 {
		t.Errorf("the signed index carries %d children, want 2", len(plan.Images[2].Children))
	}

	// The verified authority travels in bundle.json.
	key := newSigningKey(t)
	dir := filepath.Join(t.TempDir(), "bundle")
	if _, err := Write(context.Background(), plan, dir, key.signer, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	v, err := Verify(dir, key.verifier, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range v.Manifest.Images {
		if img.Publisher == nil || !slices.Equal(img.Publisher.Verified, []string{"release"}) {
			t.Errorf("bundle.json image %s: publisher %+v", img.Source, img.Publisher)
		}
	}
}

func TestPublisherVerificationRefusesUnsignedAndForeign(t *testing.T) {
	s := newPublisherSource(t)
	f := s.file(t, "app/legacy", "app/unsigned", "app/other", "app/otherbundle", "app/childsigned")
	plan, err := Resolve(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Images) != 1 || plan.Images[0].Source != s.host+"/app/legacy" {
		t.Fatalf("images %+v: want only app/legacy", plan.Images)
	}
	var got []string
	for _, u := range plan.Unverified {
		got = append(got, strings.TrimPrefix(u.Source, s.host+"/"))
	}
	if want := []string{"app/unsigned", "app/other", "app/otherbundle", "app/childsigned"}; !slices.Equal(got, want) {
		t.Fatalf("unverified %v, want %v", got, want)
	}
	for _, u := range plan.Unverified {
		msg := u.String()
		repo := strings.TrimPrefix(u.Source, s.host+"/")
		for _, part := range []string{u.Source + ":1.0", s.digests[repo], "no valid signature by publisher authority release"} {
			if !strings.Contains(msg, part) {
				t.Errorf("message %q lacks %q", msg, part)
			}
		}
		switch repo {
		case "app/unsigned", "app/childsigned":
			if !strings.Contains(msg, "carries no cosign signature") {
				t.Errorf("%s: message %q does not say no signature was found", repo, msg)
			}
			if hint := "a multi-platform image is signed by its index digest"; strings.Contains(msg, hint) != (repo == "app/childsigned") {
				t.Errorf("%s: message %q: the index hint belongs to the index only", repo, msg)
			}
		default:
			if !strings.Contains(msg, "unknown-key") {
				t.Errorf("%s: message %q does not say the signature is by an unknown key", repo, msg)
			}
		}
	}
	// Nothing of a refused image is in the plan.
	for _, repo := range []string{"app/unsigned", "app/other"} {
		if _, ok := plan.objects[s.layers[repo]]; ok {
			t.Errorf("the plan holds a layer of refused %s", repo)
		}
		if _, ok := plan.objects[s.digests[repo]]; ok {
			t.Errorf("the plan holds the manifest of refused %s", repo)
		}
	}

	// Default: the whole collect is refused and nothing is written.
	key := newSigningKey(t)
	dir := filepath.Join(t.TempDir(), "bundle")
	_, err = Write(context.Background(), plan, dir, key.signer, WriteOptions{})
	var ue *UnverifiedError
	if !errors.As(err, &ue) || len(ue.Images) != 4 {
		t.Fatalf("Write: %v, want an *UnverifiedError naming 4 images", err)
	}
	if !strings.Contains(err.Error(), "refusing to write the bundle: 4 images fail publisher signature verification") ||
		!strings.Contains(err.Error(), s.host+"/app/unsigned:1.0 ("+s.digests["app/unsigned"]+")") {
		t.Errorf("error %q", err)
	}
	if _, serr := os.Stat(dir); !os.IsNotExist(serr) {
		t.Errorf("refused collect created %s (%v)", dir, serr)
	}

	// Leave-out: the bundle holds the signed image and lists the others as left out.
	m, err := Write(context.Background(), plan, dir, key.signer, WriteOptions{LeaveOutUnverified: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Images) != 1 || len(m.LeftOut) != 4 {
		t.Fatalf("bundle: %d images, %d left out", len(m.Images), len(m.LeftOut))
	}
	out := filepath.Join(t.TempDir(), "layout")
	v, err := Extract(dir, out, key.verifier, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Manifest.LeftOut) != 4 || v.Manifest.LeftOut[0].Digest != s.digests["app/unsigned"] {
		t.Errorf("bundle.json leftOut %+v", v.Manifest.LeftOut)
	}
	for _, repo := range []string{"app/unsigned", "app/other"} {
		if _, err := os.Stat(filepath.Join(out, "blobs", "sha256", strings.TrimPrefix(s.layers[repo], "sha256:"))); !os.IsNotExist(err) {
			t.Errorf("the bundle carries a layer of refused %s", repo)
		}
	}
}

func TestPublisherVerificationRepositoryAuthoritiesReplaceTheSource(t *testing.T) {
	s := newPublisherSource(t)
	y := "version: 1\nsources:\n  - registry: " + s.host + "\n    authorities:\n" + indent(s.publisher.AuthorityYAML(t, "release"), "    ") +
		"    repositories:\n" +
		"      - name: app/other\n        tags: [\"1.0\"]\n        authorities:\n" + indent(s.other.AuthorityYAML(t, "vendor"), "        ") +
		"      - name: app/legacy\n        tags: [\"1.0\"]\n        authorities:\n" + indent(s.other.AuthorityYAML(t, "vendor"), "        ")
	f, err := ParseFile(strings.NewReader(y))
	if err != nil {
		t.Fatalf("%v\n%s", err, y)
	}
	plan, err := Resolve(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Images) != 1 || plan.Images[0].Publisher == nil || !slices.Equal(plan.Images[0].Publisher.Verified, []string{"vendor"}) {
		t.Fatalf("images %+v: want app/other verified by vendor", plan.Images)
	}
	// app/legacy is signed by release, which its repository's authorities replace.
	if len(plan.Unverified) != 1 || !strings.HasSuffix(plan.Unverified[0].Source, "/app/legacy") || !slices.Equal(plan.Unverified[0].Authorities, []string{"vendor"}) {
		t.Fatalf("unverified %+v", plan.Unverified)
	}
}

func TestPublisherVerificationWithoutAuthoritiesVerifiesNothing(t *testing.T) {
	s := newPublisherSource(t)
	f, err := ParseFile(strings.NewReader("version: 1\nsources:\n  - registry: " + s.host + "\n    repositories:\n      - name: app/unsigned\n        tags: [\"1.0\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := Resolve(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Images) != 1 || plan.Images[0].Publisher != nil || len(plan.Unverified) != 0 {
		t.Fatalf("plan %+v / %+v", plan.Images, plan.Unverified)
	}
}

// TestPublisherVerificationThroughTheReferrersFallbackTag: a registry without the referrers
// API (go-containerregistry's) holds a cosign v3 bundle only under the fallback tag
// sha256-<hex>; collect finds and verifies it there.
func TestPublisherVerificationThroughTheReferrersFallbackTag(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	if resp, err := http.Get(srv.URL + "/v2/x/referrers/sha256:" + strings.Repeat("0", 64)); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatalf("this registry answers the referrers API (%d): the test needs one without", resp.StatusCode)
		}
	}
	publisher := cosigntest.NewKey(t)
	d, _ := regtest.WriteImage(t, srv.URL, "app/v3:1.0", randomImage(t, 1024, 1))
	cosigntest.PushBundle(t, host, "app/v3", d, publisher)
	y := "version: 1\nsources:\n  - registry: " + host + "\n    insecure: true\n    authorities:\n" + indent(publisher.AuthorityYAML(t, "release"), "    ") +
		"    repositories:\n      - {name: app/v3, tags: [\"1.0\"]}\n"
	f, err := ParseFile(strings.NewReader(y))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := Resolve(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Unverified) != 0 || len(plan.Images) != 1 || plan.Images[0].Publisher == nil || plan.Images[0].Publisher.Signatures[0].Format != "bundle" {
		t.Fatalf("images %+v, unverified %v: want app/v3 verified by its bundle", plan.Images, plan.Unverified)
	}
}

// TestPublisherVerificationWithCollectCredentials: a source registry that demands tokens is
// read, signatures included, with the credentials collect is given; without them collect
// fails with an error.
func TestPublisherVerificationWithCollectCredentials(t *testing.T) {
	opt, _ := regtest.TokenAuth(t, "ci", "s3cret")
	reg := regtest.Registry(t, opt)
	host := strings.TrimPrefix(reg, "http://")
	auth := remote.WithAuth(&authn.Basic{Username: "ci", Password: "s3cret"})
	publisher := cosigntest.NewKey(t)
	img := randomImage(t, 1024, 1)
	ref, err := name.ParseReference(host+"/app/private:1.0", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, auth); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	// The .sig image cosign pushes, written with the credentials.
	payload := cosigntest.Payload(host+"/app/private", d.String())
	sig, err := mutate.Append(mutate.MediaType(mutate.ConfigMediaType(empty.Image, types.OCIConfigJSON), types.OCIManifestSchema1),
		mutate.Addendum{Layer: static.NewLayer(payload, "application/vnd.dev.cosign.simplesigning.v1+json"),
			Annotations: map[string]string{"dev.cosignproject.cosign/signature": publisher.Sign(t, payload)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref.Context().Tag("sha256-"+d.Hex+".sig"), sig, auth); err != nil {
		t.Fatal(err)
	}
	y := "version: 1\nsources:\n  - registry: " + host + "\n    insecure: true\n    authorities:\n" + indent(publisher.AuthorityYAML(t, "release"), "    ") +
		"    repositories:\n      - {name: app/private, tags: [\"1.0\"]}\n"
	f, err := ParseFile(strings.NewReader(y))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := Resolve(context.Background(), f, auth)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Images) != 1 || plan.Images[0].Publisher == nil || plan.Images[0].Publisher.Signatures[0].Format != "legacy" {
		t.Fatalf("images %+v, unverified %v", plan.Images, plan.Unverified)
	}
	if _, err := Resolve(context.Background(), f); err == nil {
		t.Fatal("resolved a registry demanding tokens without credentials")
	}
}

// TestPublisherVerificationRegistryFailureIsAnError: a source that fails to answer for the
// signature tag decides nothing; collect stops with an error naming the image instead of
// refusing it as unsigned or carrying it.
func TestPublisherVerificationRegistryFailureIsAnError(t *testing.T) {
	s := newPublisherSource(t)
	target, err := url.Parse("http://" + s.host)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/manifests/sha256-") {
			http.Error(w, `{"errors":[{"code":"UNKNOWN","message":"backend down"}]}`, http.StatusInternalServerError)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(broken.Close)
	host := strings.TrimPrefix(broken.URL, "http://")
	y := "version: 1\nsources:\n  - registry: " + host + "\n    insecure: true\n    authorities:\n" + indent(s.publisher.AuthorityYAML(t, "release"), "    ") +
		"    repositories:\n      - {name: app/legacy, tags: [\"1.0\"]}\n"
	f, err := ParseFile(strings.NewReader(y))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Resolve(context.Background(), f, remote.WithRetryStatusCodes())
	if err == nil || !strings.Contains(err.Error(), "verifying the publisher signature of "+host+"/app/legacy:1.0@"+s.digests["app/legacy"]) {
		t.Fatalf("Resolve: %v, want an error naming the image", err)
	}
}
