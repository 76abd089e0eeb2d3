package gate_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/redis/go-redis/v9"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/internal/scantest"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/records"
	"github.com/portcullis-dev/portcullis/scan/vulndb"
	"github.com/portcullis-dev/portcullis/upstream"
)

// Debian 12 packages, in the one-file-per-package layout of distroless images. Against
// the real Debian OSV records in scan/vulndb/testdata/debian, libssl3 before 3.0.14 has
// DSA-5764-1 (CVE-2024-5535, low, fixed in 3.0.14-1~deb12u2) and login (source shadow) has
// DEBIAN-CVE-2023-4641 (medium, no fix).
const (
	osRelease   = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n"
	libssl3Old  = "Package: libssl3\nVersion: 3.0.11-1~deb12u2\nArchitecture: amd64\nSource: openssl\n"
	libssl3Less = "Package: libssl3\nVersion: 3.0.13-1~deb12u1\nArchitecture: amd64\nSource: openssl\n"
	login       = "Package: login\nVersion: 1:4.13+dfsg1-1\nArchitecture: amd64\nSource: shadow\n"
)

// filesLayer is a layer holding the files (path → content); every layer also gets a file
// of random content, so that no two tests (nor two runs against one Redis) share layers.
func filesLayer(t *testing.T, files map[string]string) v1.Layer {
	t.Helper()
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	files["etc/nonce-"+hex.EncodeToString(nonce[:4])] = hex.EncodeToString(nonce)
	return scantest.FilesLayer(t, files)
}

// debianBase is a Debian 12 image with libssl3 3.0.11 (DSA-5764-1).
func debianBase(t *testing.T) v1.Image {
	t.Helper()
	return imageOf(t, empty.Image, filesLayer(t, map[string]string{
		"etc/os-release":                osRelease,
		"var/lib/dpkg/status.d/libssl3": libssl3Old,
	}))
}

// imageOf is base with layers added on top.
func imageOf(t *testing.T, base v1.Image, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(base, layers...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// baselineEnv is a real registry, a real Debian vulnerability database and a cache store,
// shared by the gates (replicas) of one test.
type baselineEnv struct {
	t     *testing.T
	host  string
	up    *upstream.Client
	dbDir string
	store cache.LockingStore
	clock time.Time
	// recordsPath is the SQLite records file the replicas share (each with its own
	// connections, as processes would).
	recordsPath string
}

func newBaselineEnv(t *testing.T, store cache.LockingStore) *baselineEnv {
	t.Helper()
	reg := regtest.Registry(t)
	up, err := upstream.New(reg, http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	dbDir := filepath.Join(t.TempDir(), "vulndb")
	if _, err := vulndb.Import(dbDir, filepath.Join("..", "scan", "vulndb", "testdata", "debian")); err != nil {
		t.Fatal(err)
	}
	return &baselineEnv{t: t, host: strings.TrimPrefix(reg, "http://"), up: up, dbDir: dbDir, store: store,
		clock: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC), recordsPath: filepath.Join(t.TempDir(), records.FileName)}
}

// records opens the records store the env's replicas share.
func (e *baselineEnv) records() *records.Store {
	e.t.Helper()
	s, err := records.OpenSQLite(context.Background(), e.recordsPath)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = s.Close() })
	return s
}

// gate is one replica: its own scanner, the env's store and clock.
func (e *baselineEnv) gate(doc string) (*gate.Gate, *memSink) {
	e.t.Helper()
	return e.gateAhead(doc, 0)
}

// gateAhead is a replica whose clock runs ahead of the env's by ahead.
func (e *baselineEnv) gateAhead(doc string, ahead time.Duration) (*gate.Gate, *memSink) {
	e.t.Helper()
	p, err := policy.Parse([]byte(doc))
	if err != nil {
		e.t.Fatal(err)
	}
	sink := &memSink{}
	scanner := gate.NewScanner(e.up, cache.NewFlight(cache.NewMemory(64<<20)), e.dbDir)
	return gate.New(p, e.up, sink, gate.WithImages(e.up), gate.WithScanner(scanner), gate.WithCache(e.store),
		gate.WithRecords(e.records()), gate.WithClock(func() time.Time { return e.clock.Add(ahead) })), sink
}

// write stores img upstream as repo:tag (layers and manifest, as a client's push does
// before the gate judges the manifest) and returns its digest and manifest.
func (e *baselineEnv) write(repoTag string, img v1.Image) (string, []byte) {
	e.t.Helper()
	ref, err := name.ParseReference(e.host+"/"+repoTag, name.Insecure)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		e.t.Fatal(err)
	}
	d, _ := img.Digest()
	raw, _ := img.RawManifest()
	return d.String(), raw
}

// push writes img as repo:tag and asks g to admit the push.
func (e *baselineEnv) push(g *gate.Gate, repo, tag string, img v1.Image) (string, gate.Result) {
	e.t.Helper()
	d, raw := e.write(repo+":"+tag, img)
	return d, g.Admit(context.Background(), gate.Request{Action: policy.ActionPush, Repository: repo, Reference: tag, Digest: d, Manifest: raw})
}

// pull asks g to admit a pull of repo@digest.
func (e *baselineEnv) pull(g *gate.Gate, repo, digest string) gate.Result {
	e.t.Helper()
	return g.Admit(context.Background(), gate.Request{Action: policy.ActionPull, Repository: repo, Reference: digest, Digest: digest})
}

// inherited returns the ids of res's inherited and new findings.
func inheritedAndNew(res gate.Result) (inherited, fresh []string) {
	if res.Vulnerabilities == nil {
		return nil, nil
	}
	for _, f := range res.Vulnerabilities.Findings {
		if f.Inherited {
			inherited = append(inherited, f.ID+" "+f.Package)
		} else {
			fresh = append(fresh, f.ID+" "+f.Package)
		}
	}
	slices.Sort(inherited)
	slices.Sort(fresh)
	return inherited, fresh
}

// wantBaseline checks which baseline res was judged against.
func wantBaseline(t *testing.T, res gate.Result, how, repo, digest string) {
	t.Helper()
	b := res.Baseline()
	if b == nil || b.How != how || b.Repository != repo || b.Digest != digest {
		note := ""
		if res.Vulnerabilities != nil {
			note = res.Vulnerabilities.BaselineNote
		}
		t.Fatalf("baseline %+v (note %q), want %s %s@%s", b, note, how, repo, digest)
	}
}

// baselinePolicy warns about every vulnerability of base images and, for applications,
// blocks new ones only: inherited low+ findings warn for 7 days from first sighting.
const baselinePolicy = `version: 1
environments:
  - {name: prod, repositories: ["**"], failMode: closed}
rules:
  - {id: base-vulns, type: vulnerability, mode: warn, repositories: ["base/**"], severity: low}
  - {id: app-vulns, type: vulnerability, mode: block, repositories: ["app/**"], severity: low, new: true, remediation: {low: 7d, medium: 30d}}
`

// appLayer is what an application adds on its base: libssl3 upgraded to a version still
// affected by DSA-5764-1 (so inherited, though its version changed) and login, which
// brings DEBIAN-CVE-2023-4641 (new).
func appLayer(t *testing.T) v1.Layer {
	return filesLayer(t, map[string]string{
		"var/lib/dpkg/status.d/libssl3": libssl3Less,
		"var/lib/dpkg/status.d/login":   login,
		"app/server":                    "#!/bin/sh\n",
	})
}

func TestBaselineNamedByTheBaseAnnotation(t *testing.T) {
	env := newBaselineEnv(t, cache.NewMemory(64<<20))
	g, sink := env.gate(baselinePolicy)
	base := debianBase(t)
	// Pushed straight to the registry: the gateway has never seen it, only the annotation names it.
	baseDigest, _ := env.write("base/debian:12", base)

	app := mutate.Annotations(imageOf(t, base, appLayer(t)), map[string]string{
		"org.opencontainers.image.base.name":   env.host + "/base/debian:12",
		"org.opencontainers.image.base.digest": baseDigest,
	}).(v1.Image)
	_, res := env.push(g, "app/api", "1.0.0", app)
	wantBaseline(t, res, policy.BaselineBaseAnnotation, "base/debian", baseDigest)
	inh, fresh := inheritedAndNew(res)
	if !slices.Equal(inh, []string{"DSA-5764-1 libssl3"}) || !slices.Equal(fresh, []string{"DEBIAN-CVE-2023-4641 login"}) {
		t.Fatalf("inherited %q, new %q", inh, fresh)
	}
	if res.Verdict != policy.VerdictDeny {
		t.Fatalf("a new medium finding: %s %q", res.Verdict, res.Message)
	}
	for _, want := range []string{
		"[app-vulns] 1 new low+ vulnerabilities: DEBIAN-CVE-2023-4641 (medium) in login 1:4.13+dfsg1-1, no fix yet",
		"baseline base/debian@" + baseDigest[:19] + "…, the base image its annotations name",
	} {
		if !strings.Contains(res.Message, want) {
			t.Errorf("denial lacks %q:\n%s", want, res.Message)
		}
	}
	// The inherited finding is not part of the denial: it is a warning of its own.
	if strings.Contains(res.Message, "DSA-5764-1") {
		t.Errorf("the denial names an inherited finding that only warns:\n%s", res.Message)
	}
	wantWarning := "1 low+ vulnerabilities inherited from the base image base/debian@" + baseDigest[:19] + "…, which only warn: DSA-5764-1 (CVE-2024-5535, DEBIAN-CVE-2024-5535, low) in libssl3 3.0.13-1~deb12u1, fixed in 3.0.14-1~deb12u2, 7 days left to fix (first seen 2026-11-20, window 7d)"
	if !slices.ContainsFunc(res.Warnings, func(w string) bool { return strings.Contains(w, wantWarning) }) {
		t.Errorf("warnings lack %q:\n%q", wantWarning, res.Warnings)
	}
	// The audit event names the baseline and lists the findings new and inherited apart.
	ev := sink.events[len(sink.events)-1].Vulnerabilities
	if ev == nil || ev.Baseline == nil || ev.Baseline.How != "base-annotation" || ev.Baseline.Digest != baseDigest ||
		len(ev.New) != 1 || ev.New[0].ID != "DEBIAN-CVE-2023-4641" || len(ev.Inherited) != 1 || ev.Inherited[0].ID != "DSA-5764-1" ||
		ev.Inherited[0].Version != "3.0.13-1~deb12u1" || ev.Inherited[0].FirstSeen != "2026-11-20" {
		t.Fatalf("audit vulnerabilities = %+v", ev)
	}

	// The same through configuration labels, naming the base by tag only: the tag still
	// points at the image this one starts with, so it is the baseline.
	labelled, err := mutate.Config(imageOf(t, base, appLayer(t)), v1.Config{Labels: map[string]string{
		"org.opencontainers.image.base.name": "base/debian:12",
	}})
	if err != nil {
		t.Fatal(err)
	}
	_, res = env.push(g, "app/labelled", "1.0.0", labelled)
	wantBaseline(t, res, policy.BaselineBaseAnnotation, "base/debian", baseDigest)

	// Named by a tag that has moved on to another image: not this image's base.
	env.write("base/debian:12", debianBase(t))
	_, res = env.push(g, "app/moved", "1.0.0", mutate.Annotations(imageOf(t, base, appLayer(t)), map[string]string{
		"org.opencontainers.image.base.name": env.host + "/base/debian:12",
	}).(v1.Image))
	if res.Baseline() != nil || !strings.Contains(res.Vulnerabilities.BaselineNote, "its base image base/debian:12 now points at an image whose layers this image does not start with") {
		t.Fatalf("moved tag: baseline %+v, note %q", res.Baseline(), res.Vulnerabilities.BaselineNote)
	}
}

func TestBaselineByLayerPrefix(t *testing.T) {
	env := newBaselineEnv(t, cache.NewMemory(64<<20))
	g, _ := env.gate(baselinePolicy)
	base := debianBase(t)
	baseDigest, res := env.push(g, "base/debian", "12", base)
	if res.Verdict != policy.VerdictWarn || res.Baseline() != nil {
		t.Fatalf("base image: %s, baseline %+v", res.Verdict, res.Baseline())
	}

	// No annotation: the base is found because the gateway saw an image with exactly the
	// first layers of this one.
	mid := imageOf(t, base, filesLayer(t, map[string]string{"usr/share/doc/readme": "middle layer"}))
	appDigest, res := env.push(g, "app/api", "1.0.0", imageOf(t, mid, appLayer(t)))
	wantBaseline(t, res, policy.BaselineLayerPrefix, "base/debian", baseDigest)
	if inh, fresh := inheritedAndNew(res); !slices.Equal(inh, []string{"DSA-5764-1 libssl3"}) || !slices.Equal(fresh, []string{"DEBIAN-CVE-2023-4641 login"}) {
		t.Fatalf("inherited %q, new %q", inh, fresh)
	}
	if res.Verdict != policy.VerdictDeny || !strings.Contains(res.Message, "the image whose layers start it (longest layer-prefix match)") {
		t.Fatalf("%s %q", res.Verdict, res.Message)
	}

	// The longest prefix wins: once the middle image is seen (pulled), it is the baseline.
	midDigest, _ := env.write("base/middle:1", mid)
	env.pull(g, "base/middle", midDigest)
	_, res = env.push(g, "app/api", "1.0.1", imageOf(t, mid, appLayer(t)))
	wantBaseline(t, res, policy.BaselineLayerPrefix, "base/middle", midDigest)
	// An image is never its own baseline: once pulled, the gateway has seen the app's own
	// layers too, yet pulling it again still finds the middle image.
	env.pull(g, "app/api", appDigest)
	res = env.pull(g, "app/api", appDigest)
	wantBaseline(t, res, policy.BaselineLayerPrefix, "base/middle", midDigest)

	// A base the gateway never saw, and a repository with no accepted push: no baseline,
	// every finding is new, and the decision says so.
	other := debianBase(t)
	env.write("base/other:12", other)
	_, res = env.push(g, "app/worker", "1.0.0", imageOf(t, other, appLayer(t)))
	if res.Baseline() != nil {
		t.Fatalf("baseline %+v for an image on an unseen base", res.Baseline())
	}
	if inh, fresh := inheritedAndNew(res); len(inh) != 0 || len(fresh) != 2 {
		t.Fatalf("inherited %q, new %q", inh, fresh)
	}
	if !strings.Contains(res.Message, "2 new low+ vulnerabilities") ||
		!strings.Contains(res.Message, "no baseline found, so every finding counts as new: the image names no base image, and no image the gateway has seen has layers it starts with; app/worker has no previous accepted push") {
		t.Fatalf("no baseline: %q", res.Message)
	}
}

func TestBaselineIsThePreviousAcceptedPush(t *testing.T) {
	env := newBaselineEnv(t, cache.NewMemory(64<<20))
	g, sink := env.gate(`version: 1
rules:
  - {id: app-vulns, type: vulnerability, mode: block, severity: medium, new: true}
`)
	// v1 has only a low finding: accepted.
	v1Image := debianBase(t)
	v1Digest, res := env.push(g, "app/svc", "1.0.0", v1Image)
	if res.Verdict != policy.VerdictAllow || res.Baseline() != nil {
		t.Fatalf("v1: %s %q, baseline %+v", res.Verdict, res.Message, res.Baseline())
	}
	// v2 was built from scratch (no layer in common with v1): its baseline is v1.
	v2 := imageOf(t, empty.Image, filesLayer(t, map[string]string{
		"etc/os-release":                osRelease,
		"var/lib/dpkg/status.d/libssl3": libssl3Less,
		"var/lib/dpkg/status.d/login":   login,
	}))
	v2Digest, res := env.push(g, "app/svc", "1.1.0", v2)
	wantBaseline(t, res, policy.BaselinePrevious, "app/svc", v1Digest)
	if inh, fresh := inheritedAndNew(res); !slices.Equal(inh, []string{"DSA-5764-1 libssl3"}) || !slices.Equal(fresh, []string{"DEBIAN-CVE-2023-4641 login"}) {
		t.Fatalf("inherited %q, new %q", inh, fresh)
	}
	if res.Verdict != policy.VerdictDeny || !strings.Contains(res.Message, "1 new medium+ vulnerabilities: DEBIAN-CVE-2023-4641") ||
		!strings.Contains(res.Message, "baseline app/svc@"+v1Digest[:19]+"…, the repository's previous accepted push") {
		t.Fatalf("v2: %s %q", res.Verdict, res.Message)
	}
	if b := sink.events[len(sink.events)-1].Vulnerabilities.Baseline; b == nil || b.How != "previous" || b.Digest != v1Digest {
		t.Fatalf("audit baseline %+v", b)
	}
	// A denied push is not the previous one: v3 is compared with v1 still.
	v3Digest, res := env.push(g, "app/svc", "1.2.0", imageOf(t, empty.Image, filesLayer(t, map[string]string{"etc/os-release": osRelease})))
	wantBaseline(t, res, policy.BaselinePrevious, "app/svc", v1Digest)
	if res.Verdict != policy.VerdictAllow {
		t.Fatalf("v3: %s %q", res.Verdict, res.Message)
	}
	// v3 was accepted; re-pushing v1 now compares it with v3, and a pull of v2 (never
	// accepted, so with no recorded baseline) has none.
	_, res = env.push(g, "app/svc", "1.0.0", v1Image)
	wantBaseline(t, res, policy.BaselinePrevious, "app/svc", v3Digest)
	if res := env.pull(g, "app/svc", v2Digest); res.Baseline() != nil {
		t.Fatalf("pull of a denied push: baseline %+v", res.Baseline())
	}
}

func TestFixTimelinesSharedByReplicasAndEscalating(t *testing.T) {
	run := make([]byte, 4)
	_, _ = rand.Read(run)
	id := hex.EncodeToString(run)
	baseRepo, appRepo := "base-"+id+"/debian", "app-"+id+"/api"
	rdb := regtest.Redis(t, "portcullis:v1:*"+id+"*")
	env := newBaselineEnv(t, cache.NewRedis(rdb, cache.WithTimeout(5*time.Second)))
	doc := strings.NewReplacer("base/**", "base-"+id+"/**", "app/**", "app-"+id+"/**").Replace(baselinePolicy)
	replicaA, _ := env.gate(doc)
	replicaB, _ := env.gate(doc)

	base := debianBase(t)
	baseDigest, _ := env.push(replicaA, baseRepo, "12", base)
	t.Cleanup(func() { layersKeysCleanup(t, rdb, base) })
	// An application that only upgrades libssl3 (still affected): nothing new, the
	// inherited finding warns, with its window from today.
	onlyUpgrade := func() v1.Image {
		img := imageOf(t, base, filesLayer(t, map[string]string{"var/lib/dpkg/status.d/libssl3": libssl3Less}))
		t.Cleanup(func() { layersKeysCleanup(t, rdb, img) })
		return img
	}
	v1Digest, res := env.push(replicaB, appRepo, "1.0.0", onlyUpgrade())
	wantBaseline(t, res, policy.BaselineLayerPrefix, baseRepo, baseDigest) // found through A's record
	if res.Verdict != policy.VerdictWarn || len(res.Warnings) != 1 ||
		!strings.Contains(res.Warnings[0], "inherited from the base image "+baseRepo+"@") ||
		!strings.Contains(res.Warnings[0], "DSA-5764-1 (CVE-2024-5535, DEBIAN-CVE-2024-5535, low) in libssl3 3.0.13-1~deb12u1, fixed in 3.0.14-1~deb12u2, 7 days left to fix (first seen 2026-11-20, window 7d)") {
		t.Fatalf("day 0: %s %q %q", res.Verdict, res.Message, res.Warnings)
	}
	// The first sighting is in the records store, for every replica.
	rs := env.records()
	stored := func() string {
		s, ok, err := rs.Sighting(context.Background(), appRepo, "DSA-5764-1")
		if err != nil || !ok {
			t.Fatalf("no first sighting of DSA-5764-1 in %s: %v", appRepo, err)
		}
		return s.First.UTC().Format(time.RFC3339)
	}
	if got := stored(); got != "2026-11-20T10:00:00Z" {
		t.Fatalf("first seen %s", got)
	}

	// Two days later, on the other replica, a new version: the same timeline.
	env.clock = time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	_, res = env.push(replicaA, appRepo, "1.1.0", onlyUpgrade())
	if res.Verdict != policy.VerdictWarn || !strings.Contains(strings.Join(res.Warnings, " "), "5 days left to fix (first seen 2026-11-20, window 7d)") {
		t.Fatalf("day 2: %s %q", res.Verdict, res.Warnings)
	}
	if got := stored(); got != "2026-11-20T10:00:00Z" {
		t.Fatalf("first seen moved to %s", got)
	}
	for _, f := range res.Vulnerabilities.Findings {
		if f.ID == "DSA-5764-1" && !f.FirstSeen.Equal(time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)) {
			t.Fatalf("evidence first seen %s", f.FirstSeen)
		}
	}

	// From the day after the window's last, the inherited finding blocks: pushes, and pulls
	// of what was accepted before.
	env.clock = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	for name, res := range map[string]gate.Result{
		"push": func() gate.Result { _, r := env.push(replicaB, appRepo, "1.2.0", onlyUpgrade()); return r }(),
		"pull": env.pull(replicaA, appRepo, v1Digest),
	} {
		wantBaseline(t, res, policy.BaselineLayerPrefix, baseRepo, baseDigest)
		if res.Verdict != policy.VerdictDeny || !strings.Contains(res.Message, "past their remediation window: DSA-5764-1") ||
			!strings.Contains(res.Message, "1 day overdue (first seen 2026-11-20, window 7d, blocking since 2026-11-27)") ||
			!strings.Contains(res.Message, "update the base image (debian 12: libssl3 3.0.14-1~deb12u2 fixes it)") {
			t.Fatalf("%s on day 7: %s %q", name, res.Verdict, res.Message)
		}
	}
}

func TestFirstSightingIsWrittenOnceUnderConcurrency(t *testing.T) {
	run := make([]byte, 4)
	_, _ = rand.Read(run)
	id := hex.EncodeToString(run)
	repo := "app-" + id + "/api"
	rdb := regtest.Redis(t, "portcullis:v1:*"+id+"*")
	env := newBaselineEnv(t, cache.NewRedis(rdb, cache.WithTimeout(5*time.Second)))
	doc := `version: 1
rules:
  - {id: vulns, type: vulnerability, mode: warn, severity: low}
`
	img := debianBase(t)
	t.Cleanup(func() { layersKeysCleanup(t, rdb, img) })
	d, raw := env.write(repo+":1.0.0", img)
	// Four replicas, whose clocks disagree by hours, see the image at once: whoever records
	// first, they all agree on when that was.
	var replicas []*gate.Gate
	for i := range 4 {
		g, _ := env.gateAhead(doc, time.Duration(i)*time.Hour)
		replicas = append(replicas, g)
	}
	// Each has scanned the image already (pulled from another repository), so that the
	// sightings below happen at the same moment rather than one scan after another.
	env.write("app-"+id+"/warm:1.0.0", img)
	for _, g := range replicas {
		if res := g.Admit(context.Background(), gate.Request{Action: policy.ActionPull, Repository: "app-" + id + "/warm", Reference: d, Digest: d, Manifest: raw}); res.Vulnerabilities == nil {
			t.Fatalf("warming up: %+v", res)
		}
	}
	start := make(chan struct{})
	results := make(chan gate.Result, 16)
	for i := range 16 {
		go func() {
			<-start
			results <- replicas[i%4].Admit(context.Background(), gate.Request{Action: policy.ActionPull, Repository: repo, Reference: d, Digest: d, Manifest: raw})
		}()
	}
	close(start)
	var seen []time.Time
	for range 16 {
		res := <-results
		if res.Vulnerabilities == nil || len(res.Vulnerabilities.Findings) == 0 {
			t.Fatalf("no findings: %+v", res)
		}
		for _, f := range res.Vulnerabilities.Findings {
			seen = append(seen, f.FirstSeen)
		}
	}
	for _, s := range seen {
		if !s.Equal(seen[0]) || s.IsZero() {
			t.Fatalf("first sightings differ: %v", seen)
		}
	}
	// And later sightings keep it.
	env.clock = env.clock.AddDate(0, 0, 3)
	g, _ := env.gate(doc)
	res := env.pull(g, repo, d)
	if f := res.Vulnerabilities.Findings[0]; !f.FirstSeen.Equal(seen[0]) {
		t.Fatalf("three days later: first seen %s, want %s", f.FirstSeen, seen[0])
	}
}

// layersKeysCleanup deletes the record that the gateway saw img's layers.
func layersKeysCleanup(t *testing.T, rdb redis.UniversalClient, img v1.Image) {
	m, err := img.Manifest()
	if err != nil {
		t.Error(err)
		return
	}
	var layers []string
	for _, l := range m.Layers {
		layers = append(layers, l.Digest.String())
	}
	rdb.Del(context.Background(), cache.LayersKey(cache.LayersHash(layers)))
}

func TestBaselinesOnlyWhereARuleJudgesNewFindings(t *testing.T) {
	env := newBaselineEnv(t, cache.NewMemory(64<<20))
	g, sink := env.gate(`version: 1
rules:
  - {id: vulns, type: vulnerability, mode: warn, severity: low}
`)
	base := debianBase(t)
	baseDigest, res := env.push(g, "base/debian", "12", base)
	if res.Verdict != policy.VerdictWarn || res.Vulnerabilities == nil || res.Baseline() != nil || res.Vulnerabilities.BaselineNote != "" {
		t.Fatalf("no rule with new: true: %s %+v", res.Verdict, res.Vulnerabilities)
	}
	if f := res.Vulnerabilities.Findings[0]; f.Inherited || !f.FirstSeen.Equal(env.clock) {
		t.Fatalf("finding %+v: timelines start at the first sighting, whatever the rules", f)
	}
	if v := sink.events[len(sink.events)-1].Vulnerabilities; v != nil {
		t.Fatalf("audit vulnerabilities %+v without a comparison", v)
	}
	// The sighting was recorded all the same: once a rule judges new findings, the base is found.
	p, err := policy.Parse([]byte(baselinePolicy))
	if err != nil {
		t.Fatal(err)
	}
	g.SetPolicy(p)
	_, res = env.push(g, "app/api", "1.0.0", imageOf(t, base, appLayer(t)))
	wantBaseline(t, res, policy.BaselineLayerPrefix, "base/debian", baseDigest)
}

// manifestCounter is the real upstream reader, counting manifest reads per repository.
type manifestCounter struct {
	*upstream.Client
	mu    sync.Mutex
	reads map[string]int
}

func (m *manifestCounter) Manifest(ctx context.Context, repo, ref string) ([]byte, string, error) {
	m.mu.Lock()
	m.reads[repo]++
	m.mu.Unlock()
	return m.Client.Manifest(ctx, repo, ref)
}

func (m *manifestCounter) count(repo string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reads[repo]
}

// A pull is judged against the baseline its push was, and that baseline's manifest is
// kept with the push's record: pulls do not read it from the upstream again.
func TestPullsReuseTheRecordedBaselineManifest(t *testing.T) {
	env := newBaselineEnv(t, cache.NewMemory(64<<20))
	p, err := policy.Parse([]byte(strings.Replace(baselinePolicy, `mode: block, repositories: ["app/**"]`, `mode: warn, repositories: ["app/**"]`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	reader := &manifestCounter{Client: env.up, reads: map[string]int{}}
	scanner := gate.NewScanner(env.up, cache.NewFlight(cache.NewMemory(64<<20)), env.dbDir)
	g := gate.New(p, env.up, &memSink{}, gate.WithImages(reader), gate.WithScanner(scanner), gate.WithCache(env.store),
		gate.WithClock(func() time.Time { return env.clock }))
	base := debianBase(t)
	baseDigest, _ := env.write("base/debian:12", base)
	app := mutate.Annotations(imageOf(t, base, appLayer(t)), map[string]string{
		"org.opencontainers.image.base.name":   env.host + "/base/debian:12",
		"org.opencontainers.image.base.digest": baseDigest,
	}).(v1.Image)
	appDigest, res := env.push(g, "app/api", "1.0.0", app)
	wantBaseline(t, res, policy.BaselineBaseAnnotation, "base/debian", baseDigest)
	if res.Verdict == policy.VerdictDeny {
		t.Fatalf("push: %s %q", res.Verdict, res.Message)
	}
	if reader.count("base/debian") == 0 {
		t.Fatal("the push did not read its base image's manifest: the counter sees nothing")
	}
	before := reader.count("base/debian")
	for range 3 {
		res = env.pull(g, "app/api", appDigest)
		wantBaseline(t, res, policy.BaselineBaseAnnotation, "base/debian", baseDigest)
	}
	if n := reader.count("base/debian") - before; n != 0 {
		t.Errorf("three pulls read the baseline's manifest %d times from the upstream, want 0", n)
	}
}
