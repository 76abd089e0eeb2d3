package mirror

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestImportDeltaWhoseManifestsAreOnPrem imports a full bundle, then a delta collected
// against an inventory of the on-prem registry: the delta leaves out the signed index
// (with its children and referrers) and the image behind a new tag 2.0.1 for an existing
// digest, and carries only the new image 2.2.0. The import confirms what was left out
// through the gateway and publishes 2.0.1 and 2.2.0. The same delta imported into a
// registry that lacks what it left out is refused before anything is written, naming the
// image and telling to collect without --have.
func TestImportDeltaWhoseManifestsAreOnPrem(t *testing.T) {
	src := newSource(t)
	key := newSigningKey(t)
	f := src.mirrorFile(t, "")
	full, m := collect(t, f, key, WriteOptions{})
	tg := newTarget(t)
	if _, err := Import(context.Background(), full, key.verifier, tg.options(t, filepath.Join(t.TempDir(), "j"), nil)); err != nil {
		t.Fatal(err)
	}
	var repos []string
	for _, img := range m.Images {
		if len(repos) == 0 || repos[len(repos)-1] != img.Name {
			repos = append(repos, img.Name)
		}
	}
	inv, err := TakeInventory(context.Background(), strings.TrimPrefix(tg.reg, "http://"), true, repos)
	if err != nil {
		t.Fatal(err)
	}

	// Connected side: a new image, and a new tag for an image already carried.
	src.pushAPI(t, "2.2.0")
	old, err := remote.Get(src.ref(t, "app/api:2.0.0"))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(src.ref(t, "app/api:2.0.1"), old); err != nil {
		t.Fatal(err)
	}
	delta, dm := collect(t, f, key, WriteOptions{Have: inv})
	v, err := Verify(delta, key.verifier, nil)
	if err != nil {
		t.Fatal(err)
	}
	byTag := map[string]Image{}
	for _, img := range dm.Images {
		byTag[img.Tag] = img
	}
	for _, tag := range []string{"1.0.0", "2.0.1"} {
		if _, carried := v.Blobs[byTag[tag].Digest]; carried {
			t.Fatalf("the delta carries %s's manifest, which the inventory lists", tag)
		}
	}
	if _, carried := v.Blobs[byTag["2.2.0"].Digest]; !carried {
		t.Fatal("the delta does not carry the new image")
	}

	// A registry without the first bundle: refused, nothing written, no journal.
	empty := newTarget(t)
	journal := filepath.Join(t.TempDir(), "j")
	_, err = Import(context.Background(), delta, key.verifier, empty.options(t, journal, nil))
	web := dm.Images[0]
	for _, want := range []string{"nothing imported", web.Name + ":1.0.0", "the image's manifest " + web.Digest, "neither in the bundle", "collect the bundle again without --have"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("delta into a registry lacking its base: %v\nwant it to say %q", err, want)
		}
	}
	if n := empty.writes.Load(); n != 0 {
		t.Fatalf("the refused delta wrote %d times", n)
	}
	if _, err := os.Stat(journal); !os.IsNotExist(err) {
		t.Fatal("the refused delta started a journal")
	}

	// The registry holding the first bundle: every tag published.
	rep, err := Import(context.Background(), delta, key.verifier, tg.options(t, filepath.Join(t.TempDir(), "j2"), nil))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"1.0.0": VerdictAllow, "2.0.0": VerdictAllow, "2.0.1": VerdictAllow, "2.1.0": VerdictDeny, "2.2.0": VerdictAllow}
	if len(rep.Images) != len(want) {
		t.Fatalf("report %+v", rep.Images)
	}
	for _, r := range rep.Images {
		if r.Verdict != want[r.Tag] {
			t.Errorf("%s:%s: %s %q, want %s", r.Name, r.Tag, r.Verdict, r.Message, want[r.Tag])
		}
		if r.Verdict == VerdictAllow {
			if got := tg.tagDigest(t, r.Name, r.Tag); got != r.Digest {
				t.Errorf("%s:%s points at %q on-prem, want %s", r.Name, r.Tag, got, r.Digest)
			}
		}
	}
	if byTag["2.0.1"].Digest != byTag["2.0.0"].Digest {
		t.Fatalf("2.0.1 pinned to %s, 2.0.0 to %s", byTag["2.0.1"].Digest, byTag["2.0.0"].Digest)
	}
}

// TestImportPartialIndexIntoACompleteIndexRegistry imports an index carried for one of its
// two platforms into a registry that requires every child of an index (distribution's
// default): the registry refuses the index, and the report says why and what to change.
func TestImportPartialIndexIntoACompleteIndexRegistry(t *testing.T) {
	src := newSource(t)
	key := newSigningKey(t)
	dir, m := collect(t, src.mirrorFile(t, "        platforms: [linux/arm64]\n"), key, WriteOptions{})
	tg := newTarget(t)
	rep, err := Import(context.Background(), dir, key.verifier, tg.options(t, filepath.Join(t.TempDir(), "j"), nil))
	if err != nil {
		t.Fatal(err)
	}
	web := rep.Images[0]
	if web.Digest != m.Images[0].Digest || web.Verdict != VerdictDeny || !strings.Contains(web.Message, "carries 1 of the index's 2 children") ||
		!strings.Contains(web.Message, "validation.manifests.indexes.platforms: none") {
		t.Fatalf("the partial index: %+v", web)
	}
	t.Logf("report: %s", web.Message)
	if got := tg.tagDigest(t, web.Name, web.Tag); got != "" {
		t.Fatalf("%s:%s was published", web.Name, web.Tag)
	}
}

// TestImportDeltaLeftOutImageDeniedOnPrem: a delta leaves out app/api 2.0.0's manifest
// (on-prem since the full import) and names it again under the new tag 2.0.1; imported
// through a gateway whose policy now requires the publisher's signature, which 2.0.0 lacks,
// the confirmation HEAD is refused (403: the gateway found it and judged it), which
// confirms it is on-prem; 2.0.1 is then judged as usual and refused with the rule's
// message, and its tag is not published.
func TestImportDeltaLeftOutImageDeniedOnPrem(t *testing.T) {
	src, key, tg, old, delta, _ := retagDelta(t)

	strict := newGateway(t, tg.reg, `version: 1
exceptionProcess: "ask the platform team"
authorities:
`+src.publisher.AuthorityYAML(t, "publisher")+`environments:
  - name: dev
    repositories: ["**"]
rules:
  - {id: immutable-tags, type: immutable, mode: block}
  - {id: publisher-signed, type: signature, mode: block, authorities: [publisher]}
`)
	rep, err := Import(context.Background(), delta, key.verifier, strict.options(t, filepath.Join(t.TempDir(), "j2"), nil))
	if err != nil {
		t.Fatalf("a delta whose left-out image the gateway now refuses: %v", err)
	}
	var found bool
	for _, r := range rep.Images {
		if r.Tag != "2.0.1" {
			continue
		}
		found = true
		if r.Verdict != VerdictDeny || r.Digest != old.Digest.String() || !strings.Contains(r.Message, "publisher-signed") {
			t.Errorf("2.0.1: %+v", r)
		}
		if got := tg.tagDigest(t, r.Name, r.Tag); got != "" {
			t.Errorf("refused %s:%s was published", r.Name, r.Tag)
		}
	}
	if !found {
		t.Fatalf("no 2.0.1 in the report: %+v", rep.Images)
	}
}

// TestImportDeltaPermissionRefusalIsNotPresence: a 403 that is not the gateway's policy
// refusal (here a front that refuses the importer's credential for one repository, with
// DENIED as registries answer) must not count as "the left-out manifest is on-prem": the
// import stops with that error and publishes nothing. Only "denied by policy" says the
// gateway found the manifest and judged it.
func TestImportDeltaPermissionRefusalIsNotPresence(t *testing.T) {
	_, key, tg, _, delta, dm := retagDelta(t)
	var api string
	for _, img := range dm.Images {
		if img.Tag == "2.0.1" {
			api = img.Name
		}
	}
	if api == "" {
		t.Fatalf("no 2.0.1 in the delta: %+v", dm.Images)
	}
	gw, err := url.Parse("http://" + tg.gw)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(gw)
	var refused atomic.Int64
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v2/"+api+"/manifests/") && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			refused.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			if r.Method == http.MethodGet {
				_, _ = io.WriteString(w, `{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}`)
			}
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	opts := tg.options(t, filepath.Join(t.TempDir(), "j2"), nil)
	opts.Gateway = strings.TrimPrefix(front.URL, "http://")
	writes := tg.writes.Load()
	_, err = Import(context.Background(), delta, key.verifier, opts)
	if err == nil || !strings.Contains(err.Error(), "requested access to the resource is denied") || !strings.Contains(err.Error(), "confirming that") {
		t.Fatalf("import through a front refusing %s: %v, want the refusal while confirming the left-out manifest", api, err)
	}
	if n := tg.writes.Load() - writes; n != 0 {
		t.Fatalf("the import wrote %d times before it stopped; the check must come before any write", n)
	}
	if refused.Load() == 0 {
		t.Fatal("the front refused nothing; the test proves nothing")
	}
	if got := tg.tagDigest(t, api, "2.0.1"); got != "" {
		t.Fatalf("%s:2.0.1 was published (%s) although its base could not be confirmed", api, got)
	}
}

// retagDelta imports a full bundle into a new target, then tags app/api 2.0.0 again as
// 2.0.1 at the source and collects a delta against the target's inventory: the delta
// leaves 2.0.0's manifest out and names it again under 2.0.1. It returns the source, the
// bundle key, the target, 2.0.0's descriptor, and the delta's directory and manifest.
func retagDelta(t *testing.T) (*source, signingKey, *target, *remote.Descriptor, string, *BundleManifest) {
	t.Helper()
	src := newSource(t)
	key := newSigningKey(t)
	f := src.mirrorFile(t, "")
	full, m := collect(t, f, key, WriteOptions{})
	tg := newTarget(t)
	if _, err := Import(context.Background(), full, key.verifier, tg.options(t, filepath.Join(t.TempDir(), "j"), nil)); err != nil {
		t.Fatal(err)
	}
	inv, err := TakeInventory(context.Background(), strings.TrimPrefix(tg.reg, "http://"), true, []string{m.Images[0].Name, m.Images[1].Name})
	if err != nil {
		t.Fatal(err)
	}
	old, err := remote.Get(src.ref(t, "app/api:2.0.0"))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(src.ref(t, "app/api:2.0.1"), old); err != nil {
		t.Fatal(err)
	}
	delta, dm := collect(t, f, key, WriteOptions{Have: inv})
	return src, key, tg, old, delta, dm
}
