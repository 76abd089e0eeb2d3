package gate_test

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/internal/scantest"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/scan/layer"
	"github.com/portcullis-dev/portcullis/upstream"
)

// claimsPolicy blocks secrets in prod (closed) and dev (open).
const claimsPolicy = `version: 1
environments:
  - {name: prod, repositories: ["prod/**"], failMode: closed}
  - {name: dev, repositories: ["dev/**"], failMode: open}
rules:
  - {id: no-secrets, type: secret, mode: block}
`

// pushClaiming pushes straight to the registry an image of layers whose configuration
// claims the diff_ids claimed (whatever the layers hold), returning its digest and manifest.
func pushClaiming(t *testing.T, reg, repoTag string, claimed []string, layers ...v1.Layer) (string, []byte) {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	if img, err = mutate.Config(img, v1.Config{User: "65532"}); err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.RootFS.DiffIDs = nil
	for _, c := range claimed {
		h, err := v1.NewHash(c)
		if err != nil {
			t.Fatal(err)
		}
		cf.RootFS.DiffIDs = append(cf.RootFS.DiffIDs, h)
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	regtest.WriteImage(t, reg, repoTag, img)
	raw, _ := img.RawConfigFile()
	for _, c := range claimed {
		if !bytes.Contains(raw, []byte(c)) {
			t.Fatalf("the pushed configuration does not claim %s:\n%s", c, raw)
		}
	}
	d, _ := img.Digest()
	m, _ := img.RawManifest()
	return d.String(), m
}

// digests returns a layer's blob digest and diffID.
func digests(t *testing.T, l v1.Layer) (blob, diffID string) {
	t.Helper()
	b, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	d, err := l.DiffID()
	if err != nil {
		t.Fatal(err)
	}
	return b.String(), d.String()
}

// claimsEnv is a registry, a gate blocking secrets and the cache its scanner shares.
type claimsEnv struct {
	reg   string
	store cache.LockingStore
	g     *gate.Gate
}

func newClaimsEnv(t *testing.T) claimsEnv {
	t.Helper()
	return newClaimsReplica(t, regtest.Registry(t), cache.NewMemory(64<<20))
}

// newClaimsReplica is a gateway replica in front of reg, caching in store.
func newClaimsReplica(t *testing.T, reg string, store cache.LockingStore) claimsEnv {
	t.Helper()
	up, err := upstream.New(reg, http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse([]byte(claimsPolicy))
	if err != nil {
		t.Fatal(err)
	}
	scanner := gate.NewScanner(up, cache.NewFlight(store), t.TempDir())
	g := gate.New(p, up, &memSink{}, gate.WithImages(up), gate.WithScanner(scanner))
	return claimsEnv{reg: reg, store: store, g: g}
}

func (e claimsEnv) push(repo, dgst string, manifest []byte) gate.Result {
	return e.g.Admit(context.Background(), gate.Request{Action: policy.ActionPush, Repository: repo, Reference: "1.0.0", Digest: dgst, Manifest: manifest})
}

// stored reports whether a layer analysis is cached under (blob, diffID).
func (e claimsEnv) stored(t *testing.T, blob, diffID string) bool {
	t.Helper()
	_, ok, err := e.store.Get(context.Background(), cache.LayerKey(blob, diffID, layer.AnalyzerVersion))
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// A layer holding a private key, under a configuration claiming a clean layer's diffID, is
// judged on its content: denied in every environment with a message naming the layer, its
// blob and both diffIDs, before and after the clean layer was analysed, and the clean
// layer's later pushes are judged on their own content.
func TestLayerUnderAnotherLayersDiffIDIsDenied(t *testing.T) {
	e := newClaimsEnv(t)
	key, _ := scantest.PrivateKeyPEM(t)
	clean := scantest.FileLayer(t, "app/main.py", []byte("print('hello')\n"))
	leaky := scantest.FileLayer(t, "app/id_rsa", []byte(key))
	cleanBlob, cleanID := digests(t, clean)
	leakyBlob, leakyID := digests(t, leaky)

	// The clean layer first, honestly: its analysis is cached under its own digests.
	d, m := pushClaiming(t, e.reg, "prod/api:1.0.0", []string{cleanID}, clean)
	if res := e.push("prod/api", d, m); res.Verdict != policy.VerdictAllow {
		t.Fatalf("honest clean image: %s %q", res.Verdict, res.Message)
	}
	if !e.stored(t, cleanBlob, cleanID) {
		t.Fatal("the clean layer's analysis is not cached under its blob digest and diffID")
	}

	want := "layer 1 (blob " + leakyBlob + "): the image configuration says diffID " + cleanID + ", its content is " + leakyID
	for _, repo := range []string{"prod/api", "dev/api"} {
		d, m := pushClaiming(t, e.reg, repo+":evil", []string{cleanID}, leaky)
		res := e.push(repo, d, m)
		if res.Verdict != policy.VerdictDeny || res.Unavailable || !strings.Contains(res.Message, want) {
			t.Fatalf("%s: a private key claiming the clean layer's diffID: %s (unavailable %v) %q\nwant a denial with %q", repo, res.Verdict, res.Unavailable, res.Message, want)
		}
	}
	if e.stored(t, leakyBlob, cleanID) {
		t.Error("the leaky layer's analysis was stored under the diffID its configuration claims")
	}
	if !e.stored(t, leakyBlob, leakyID) {
		t.Error("the leaky layer's analysis is not cached under the digests it computed")
	}

	// Claimed by a clean image again, the clean layer is still clean; honestly named, the
	// leaky layer is denied for its key.
	d, m = pushClaiming(t, e.reg, "prod/api:1.0.1", []string{cleanID}, clean)
	if res := e.push("prod/api", d, m); res.Verdict != policy.VerdictAllow || res.Decision.Results[0].Finding != "no secrets in the image configuration and layers" {
		t.Fatalf("honest clean image after the attack: %s %+v", res.Verdict, res.Decision.Results)
	}
	d, m = pushClaiming(t, e.reg, "prod/api:1.0.2", []string{leakyID}, leaky)
	if res := e.push("prod/api", d, m); res.Verdict != policy.VerdictDeny || !strings.Contains(res.Message, "private-key in /app/id_rsa:1") {
		t.Fatalf("leaky image honestly named: %s %q", res.Verdict, res.Message)
	}
	// A configuration listing more diff_ids than the manifest has layers.
	d, m = pushClaiming(t, e.reg, "prod/api:1.0.3", []string{cleanID, leakyID}, clean)
	if res := e.push("prod/api", d, m); res.Verdict != policy.VerdictDeny || !strings.Contains(res.Message, "layer 2 (blob (none)): the image configuration says diffID "+leakyID) {
		t.Fatalf("one layer, two diff_ids: %s %q", res.Verdict, res.Message)
	}
}

// An attacker's layer whose analysis cannot finish, under a configuration claiming a clean
// layer's diffID, is "could not check" (refused in prod, a warning in dev) and leaves
// nothing under the claimed diffID: a later honest push of the clean layer is judged on its
// own content.
func TestIncompleteAnalysisDoesNotPoisonTheClaimedDiffID(t *testing.T) {
	e := newClaimsEnv(t)
	key, _ := scantest.PrivateKeyPEM(t)
	clean := scantest.FileLayer(t, "app/main.py", []byte("print('hello')\n"))
	_, cleanID := digests(t, clean)
	cleanBlob, _ := digests(t, clean)
	hostile := scantest.HugeWindowZstdLayer(t, map[string]string{"app/id_rsa": key})
	hostileBlob, err := hostile.Digest()
	if err != nil {
		t.Fatal(err)
	}

	d, m := pushClaiming(t, e.reg, "prod/api:evil", []string{cleanID}, hostile)
	res := e.push("prod/api", d, m)
	if res.Verdict != policy.VerdictDeny || res.Unavailable || !strings.Contains(res.Message, "not every layer could be searched") ||
		!strings.Contains(res.Message, "environment prod fails closed") {
		t.Fatalf("prod: unreadable layer claiming a clean diffID: %s (unavailable %v) %q, want a could-not-check denial", res.Verdict, res.Unavailable, res.Message)
	}
	d, m = pushClaiming(t, e.reg, "dev/api:evil", []string{cleanID}, hostile)
	res = e.push("dev/api", d, m)
	if res.Verdict != policy.VerdictWarn || !strings.Contains(strings.Join(res.Warnings, "\n"), "environment dev fails open, so this only warns") {
		t.Fatalf("dev: unreadable layer: %s %q, want a could-not-check warning", res.Verdict, res.Warnings)
	}
	if e.stored(t, hostileBlob.String(), cleanID) {
		t.Fatal("an incomplete analysis was stored under the diffID its configuration claims")
	}

	d, m = pushClaiming(t, e.reg, "prod/api:1.0.0", []string{cleanID}, clean)
	res = e.push("prod/api", d, m)
	if res.Verdict != policy.VerdictAllow || res.Decision.Results[0].Finding != "no secrets in the image configuration and layers" {
		t.Fatalf("honest push of the clean layer after the attack: %s %+v", res.Verdict, res.Decision.Results)
	}
	if !e.stored(t, cleanBlob, cleanID) {
		t.Error("the clean layer's analysis is not cached under its own digests")
	}
}

// Two replicas sharing one Redis: an unreadable layer pushed through one under a clean
// layer's diffID leaves nothing the other finds, which judges the honest push of the clean
// layer on its content.
func TestIncompleteAnalysisDoesNotPoisonAnotherReplica(t *testing.T) {
	key, _ := scantest.PrivateKeyPEM(t)
	clean := scantest.FileLayer(t, "app/main.py", []byte("print('"+randomToken(16)+"')\n"))
	cleanBlob, cleanID := digests(t, clean)
	hostile := scantest.HugeWindowZstdLayer(t, map[string]string{"app/id_rsa": key})
	hostileBlob, _ := digests(t, hostile)
	rdb := regtest.Redis(t, "portcullis:v1:*"+cleanBlob[7:]+"*", "portcullis:v1:*"+hostileBlob[7:]+"*")
	reg := regtest.Registry(t)
	attacked := newClaimsReplica(t, reg, cache.NewRedis(rdb, cache.WithTimeout(5*time.Second)))
	honest := newClaimsReplica(t, reg, cache.NewRedis(rdb, cache.WithTimeout(5*time.Second)))

	d, m := pushClaiming(t, reg, "prod/api:evil", []string{cleanID}, hostile)
	if res := attacked.push("prod/api", d, m); res.Verdict != policy.VerdictDeny || !strings.Contains(res.Message, "could not check") {
		t.Fatalf("unreadable layer through replica 1: %s %q", res.Verdict, res.Message)
	}
	if attacked.stored(t, hostileBlob, cleanID) {
		t.Fatal("the incomplete analysis reached the shared cache under the claimed diffID")
	}
	d, m = pushClaiming(t, reg, "prod/api:1.0.0", []string{cleanID}, clean)
	res := honest.push("prod/api", d, m)
	if res.Verdict != policy.VerdictAllow || res.Decision.Results[0].Finding != "no secrets in the image configuration and layers" {
		t.Fatalf("honest push through replica 2: %s %+v", res.Verdict, res.Decision.Results)
	}
	if !honest.stored(t, cleanBlob, cleanID) {
		t.Error("the clean layer's analysis is not in the shared cache under its own digests")
	}
}

// OS packages without a known release are "OS unknown" in the report (removing os-release
// must not turn every OS package into "not checkable" and pass); an image without OS
// packages, or with its os-release, is not.
func TestScanReportsAnUnknownOperatingSystem(t *testing.T) {
	dbDir, reg, up := scanEnv(t)
	status := "Package: openssl\nStatus: install ok installed\nVersion: 3.0.11-1~deb12u2\nArchitecture: amd64\n\n"
	osRelease := "ID=debian\nVERSION_ID=\"12\"\n"
	tests := []struct {
		name    string
		files   map[string]string
		unknown bool
		reason  string
	}{
		{"dpkg without os-release", map[string]string{"var/lib/dpkg/status": status}, true, "no os-release in the image"},
		{"dpkg, os-release without VERSION_ID", map[string]string{"var/lib/dpkg/status": status, "etc/os-release": "ID=debian\n"}, true, "release is unknown"},
		{"dpkg with os-release", map[string]string{"var/lib/dpkg/status": status, "etc/os-release": osRelease}, false, ""},
		{"no OS packages", map[string]string{"app/main.py": "print('hello')\n"}, false, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := gate.NewScanner(up, cache.NewFlight(cache.NewMemory(64<<20)), dbDir)
			d, m, _ := pushLayers(t, reg, "prod/os:"+strconv.Itoa(i), scantest.FilesLayer(t, tt.files))
			rep, err := s.Scan(context.Background(), "prod/os", d, m)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OSUnknown != tt.unknown || !strings.Contains(rep.OSUnknownReason, tt.reason) {
				t.Fatalf("OS unknown %v (%q), want %v (%q)", rep.OSUnknown, rep.OSUnknownReason, tt.unknown, tt.reason)
			}
		})
	}
}
