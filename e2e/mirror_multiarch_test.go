package e2e

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/portcullis-dev/portcullis/internal/cosigntest"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/internal/scantest"
)

// sbomArtifactType is the artifactType of the SBOM referrer the multi-arch test attaches.
const sbomArtifactType = "application/spdx+json"

// mirrorPlatforms are the platforms of the multi-arch images the source holds.
var mirrorPlatforms = []v1.Platform{
	{OS: "linux", Architecture: "amd64"},
	{OS: "linux", Architecture: "arm64", Variant: "v8"},
	{OS: "linux", Architecture: "s390x"},
}

// multiArchPolicy: under mirror/**, the release key's signature, no fixable vulnerability
// (pushes and pulls), nodes running linux/amd64 and linux/arm64/v8, and immutable tags.
func multiArchPolicy(t *testing.T, dir string, release cosigntest.Key) string {
	t.Helper()
	path := filepath.Join(dir, "policy.yaml")
	writeFile(t, path, []byte(`version: 1
exceptionProcess: "ask the platform team"
authorities:
`+release.AuthorityYAML(t, "release")+`environments:
  - name: mirror
    repositories: ["mirror/**"]
    failMode: closed
    platforms: [linux/amd64, linux/arm64/v8]
  - name: dev
    repositories: ["**"]
rules:
  - {id: immutable-tags, type: immutable, mode: block}
  - {id: mirror-signed, type: signature, mode: block, environments: [mirror], authorities: [release]}
  - {id: mirror-vulns, type: vulnerability, mode: block, environments: [mirror], actions: [push, pull], severity: low, fixable: true}
  - {id: mirror-platforms, type: platform, mode: block, environments: [mirror]}
`))
	return path
}

// TestMirrorMultiArchSignedWithReferrers carries signed multi-arch images between two
// gateways, each in front of its own registry, with nothing between them but the bundle
// on disk. On the source: team/multi:1.0.0, an index of three platforms signed with a
// cosign v2 `.sig` tag and a cosign v3 sigstore bundle referrer, with an SBOM referrer;
// team/slim:1.0.0, another signed index, mirrored with `platforms: [linux/amd64]`;
// team/vuln:1.0.0, signed, with a Debian openssl that has fixed advisories. Imported
// through the target gateway (policy: the release key under mirror/**, no fixable
// vulnerabilities, nodes on linux/amd64 and linux/arm64/v8):
//   - team/multi is pulled by tag with crane, and per platform the nodes run, every digest
//     and byte equal to the source's (linux/s390x is held by digest, and its pull refused by
//     the platform rule); its `.sig` tag is there, and the gateway's referrers API lists
//     the bundle and the SBOM;
//   - team/slim keeps its index byte for byte (same digest, still naming three platforms):
//     linux/amd64 is pulled; linux/arm64/v8, which the bundle did not carry, fails at once
//     with MANIFEST_UNKNOWN naming the child (the platform rule reads the index body and
//     passes it, so the error is the registry's, not a hang);
//   - team/vuln stays in quarantine, named in the report with the gateway's message;
//   - containerd, with the hosts.toml of `portcullis mirror client-config`, pulls
//     team/multi and team/slim by their source names through the target gateway.
func TestMirrorMultiArchSignedWithReferrers(t *testing.T) {
	crane := requireTool(t, "crane")
	dir := t.TempDir()
	release := cosigntest.NewKey(t)

	// Connected side: a gateway (the observe policy) in front of the source registry.
	srcReg := regtest.Registry(t)
	srcGw := startGateway(t, "--upstream", srcReg)
	src := srcGw.addr
	multi := pushMultiArch(t, src, "team/multi:1.0.0")
	slim := pushMultiArch(t, src, "team/slim:1.0.0")
	cosigntest.SignLegacy(t, src, "team/multi", multi.digest, release)
	bundleRef := cosigntest.PushBundle(t, src, "team/multi", multi.digest, release)
	sbomRef := pushSBOMReferrer(t, src, "team/multi", multi.digest)
	cosigntest.SignLegacy(t, src, "team/slim", slim.digest, release)
	vulnImg, err := mutate.AppendLayers(empty.Image, scantest.FilesLayer(t, map[string]string{
		"etc/os-release":      "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n",
		"var/lib/dpkg/status": "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl\nVersion: 3.0.11-1~deb12u2\n\n",
	}))
	if err != nil {
		t.Fatal(err)
	}
	vulnImg = withPlatform(t, vulnImg, mirrorPlatforms[0])
	vuln, _ := regtest.WriteImage(t, "http://"+src, "team/vuln:1.0.0", vulnImg)
	cosigntest.SignLegacy(t, src, "team/vuln", vuln, release)
	sigTag := "sha256-" + strings.TrimPrefix(multi.digest, "sha256:") + ".sig"
	srcSig := tagDigest(t, srcReg, "team/multi:"+sigTag)

	keyFile, pubFile := bundleKey(t, dir)
	mirrorFile := filepath.Join(dir, "mirror.yaml")
	writeFile(t, mirrorFile, []byte(`version: 1
sources:
  - registry: `+src+`
    insecure: true
    repositories:
      - {name: team/multi, tags: ["1.0.0"]}
      - {name: team/slim, tags: ["1.0.0"], platforms: [linux/amd64]}
      - {name: team/vuln, tags: ["1.0.0"]}
`))
	bundle := filepath.Join(dir, "bundle")
	portcullis(t, 0, []string{"COSIGN_PASSWORD=pw"}, "mirror", "collect", "--file", mirrorFile, "--out", bundle, "--key", keyFile, "--chunk-size", "1MiB")

	// Disconnected side: the target registry accepts an index whose children are not all
	// present (distribution: validation.manifests.indexes.platforms: none), as a mirror
	// carrying some platforms of an index needs; the vulnerability database is imported.
	target := regtest.Registry(t, func(c *configuration.Configuration) {
		c.Validation.Manifests.Indexes.Platforms = "none"
	})
	dbDir := filepath.Join(dir, "vulndb")
	runTool(t, gatewayBin, "db", "import", "--db", dbDir, filepath.Join(moduleRootDir(t), "scan", "vulndb", "testdata", "debian"))
	cfg := filepath.Join(dir, "portcullis.yaml")
	writeFile(t, cfg, []byte(fmt.Sprintf("scan:\n  db: %q\n", dbDir)))
	gw := startGateway(t, "--config", cfg, "--policy", multiArchPolicy(t, dir, release), "--upstream", target)
	ns := "mirror/" + strings.ReplaceAll(src, ":", "_") + "/team/"
	report := filepath.Join(dir, "report.json")
	out := portcullis(t, 3, nil, "mirror", "import", "--bundle", bundle, "--key", pubFile, "--gateway", "http://"+gw.addr, "--report", report)

	var rep struct {
		Images []struct{ Name, Tag, Digest, Verdict, Message string }
	}
	if err := json.Unmarshal(readFile(t, report), &rep); err != nil {
		t.Fatal(err)
	}
	verdicts := map[string]string{}
	for _, r := range rep.Images {
		verdicts[strings.TrimPrefix(r.Name, ns)] = r.Verdict
		if r.Name == ns+"vuln" {
			for _, want := range []string{"DENIED", "[mirror-vulns]", "DSA-5764-1", "CVE-2024-5535", "libssl3 3.0.11-1~deb12u2", "fixed in 3.0.14-1~deb12u2"} {
				if !strings.Contains(r.Message, want) || r.Digest != vuln {
					t.Errorf("the report on the vulnerable image does not say %q: %+v", want, r)
				}
			}
		}
	}
	if verdicts["multi"] != "allow" || verdicts["slim"] != "allow" || verdicts["vuln"] != "deny" {
		t.Fatalf("verdicts %v\n%s", verdicts, out)
	}
	if tagDigest(t, target, ns+"vuln:1.0.0") != "" {
		t.Error("the vulnerable image's tag was published")
	}

	// team/multi, by tag and per platform: the source's digests and bytes.
	at := func(repo string) string { return gw.addr + "/" + ns + repo }
	if got, _ := runTool(t, crane, "manifest", "--insecure", at("multi:1.0.0")); got != string(multi.body) {
		t.Fatalf("the index pulled through the gateway differs from the source's:\n%s\nwant\n%s", got, multi.body)
	}
	for _, p := range mirrorPlatforms[:2] {
		got, _ := runTool(t, crane, "manifest", "--insecure", "--platform", platformName(p), at("multi:1.0.0"))
		if d := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(got))); d != multi.children[platformName(p)] {
			t.Errorf("%s pulled through the gateway is %s, the source's is %s", platformName(p), d, multi.children[platformName(p)])
		}
	}
	// linux/s390x was carried (held by digest on-prem), but the nodes do not run it: the
	// gateway's platform rule refuses its pull.
	s390x := multi.children["linux/s390x"]
	if got := tagDigest(t, target, ns+"multi@"+s390x); got != s390x {
		t.Errorf("the target registry does not hold the linux/s390x child %s", s390x)
	}
	if _, stderr, err := tryTool(crane, "manifest", "--insecure", "--platform", "linux/s390x", at("multi:1.0.0")); err == nil || !strings.Contains(stderr, "[mirror-platforms]") {
		t.Errorf("the linux/s390x child through the gateway: %v\n%s\nwant the platform rule's refusal", err, stderr)
	}
	runTool(t, crane, "pull", "--insecure", "--format", "oci", "--platform", "linux/arm64/v8", at("multi:1.0.0"), filepath.Join(dir, "pulled"))
	if got := strings.TrimSpace(craneOut(t, crane, "digest", "--insecure", at("multi:"+sigTag))); got != srcSig {
		t.Errorf("the .sig tag through the gateway names %q, the source's %s", got, srcSig)
	}
	refs := referrersThrough(t, gw, ns+"multi", multi.digest)
	if refs[bundleRef] != cosigntest.BundleMediaType || refs[sbomRef] != sbomArtifactType {
		t.Errorf("the gateway's referrers API lists %v for the index; want the bundle %s and the SBOM %s", refs, bundleRef, sbomRef)
	}

	// team/slim: the index untouched; the platform carried is pulled, the other is not there.
	if got, _ := runTool(t, crane, "manifest", "--insecure", at("slim:1.0.0")); got != string(slim.body) {
		t.Fatalf("the filtered index differs from the source's:\n%s", got)
	}
	got, _ := runTool(t, crane, "manifest", "--insecure", "--platform", "linux/amd64", at("slim:1.0.0"))
	if d := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(got))); d != slim.children["linux/amd64"] {
		t.Errorf("slim linux/amd64 through the gateway is %s, want %s", d, slim.children["linux/amd64"])
	}
	_, stderr, err := tryTool(crane, "manifest", "--insecure", "--platform", "linux/arm64/v8", at("slim:1.0.0"))
	if err == nil || !strings.Contains(stderr, "MANIFEST_UNKNOWN") || !strings.Contains(stderr, slim.children["linux/arm64/v8"]) {
		t.Errorf("a platform the bundle did not carry: %v\n%s\nwant MANIFEST_UNKNOWN naming %s", err, stderr, slim.children["linux/arm64/v8"])
	}

	// containerd pulls both by their source names through the target gateway.
	c := newContainerdClient(t)
	clients := filepath.Join(dir, "clients")
	runTool(t, gatewayBin, "mirror", "client-config", "--file", mirrorFile, "--gateway", gw.url(""), "--out", clients, "--format", "containerd")
	for _, img := range []struct{ repo, digest string }{{"team/multi", multi.digest}, {"team/slim", slim.digest}} {
		ref := src + "/" + img.repo + ":1.0.0"
		if stderr, err := c.pull(filepath.Join(clients, "containerd"), ref); err != nil {
			t.Fatalf("ctr pull %s: %v\n%s", ref, err, stderr)
		}
		list, _, _ := tryTool(c.ctr, "-a", c.addr, "-n", c.ns, "images", "ls")
		found := false
		for _, line := range strings.Split(list, "\n") {
			if f := strings.Fields(line); len(f) > 2 && f[0] == ref {
				found = f[2] == img.digest
			}
		}
		if !found {
			t.Errorf("ctr images ls after pulling %s: want digest %s\n%s", ref, img.digest, list)
		}
		if got := manifestRequests(t, gw, ns+strings.TrimPrefix(img.repo, "team/")); len(got) == 0 {
			t.Errorf("ctr pull %s did not reach the target gateway", ref)
		}
	}
}

// multiArch is an index pushed to the source: its digest, bytes, and children by platform.
type multiArch struct {
	digest   string
	body     []byte
	children map[string]string
}

// pushMultiArch pushes an index of mirrorPlatforms (each child's configuration names its
// platform) to host as repoTag.
func pushMultiArch(t *testing.T, host, repoTag string) multiArch {
	t.Helper()
	m := multiArch{children: map[string]string{}}
	idx := v1.ImageIndex(empty.Index)
	for _, p := range mirrorPlatforms {
		img, err := random.Image(2048, 2)
		if err != nil {
			t.Fatal(err)
		}
		img = withPlatform(t, img, p)
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		m.children[platformName(p)] = d.String()
		pl := p
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &pl}})
	}
	ref, err := name.ParseReference(host+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	m.digest = d.String()
	m.body, _ = idx.RawManifest()
	return m
}

// withPlatform sets the platform in img's configuration (the platform rule reads it).
func withPlatform(t *testing.T, img v1.Image, p v1.Platform) v1.Image {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Config.User = "1000"
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func platformName(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// pushSBOMReferrer attaches an SPDX document to repo@subject as an OCI 1.1 referrer (as
// `oras attach --artifact-type application/spdx+json` does) and returns its digest.
func pushSBOMReferrer(t *testing.T, host, repo, subject string) string {
	t.Helper()
	r, err := name.NewRepository(host+"/"+repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	desc := func(data []byte, mt string) map[string]any {
		l := static.NewLayer(data, types.MediaType(mt))
		if err := remote.WriteLayer(r, l); err != nil {
			t.Fatal(err)
		}
		d, _ := l.Digest()
		return map[string]any{"mediaType": mt, "digest": d.String(), "size": len(data)}
	}
	sd, err := remote.Head(r.Digest(subject))
	if err != nil {
		t.Fatal(err)
	}
	body := mustJSON(t, map[string]any{
		"schemaVersion": 2,
		"mediaType":     string(types.OCIManifestSchema1),
		"artifactType":  sbomArtifactType,
		"config":        desc([]byte("{}"), "application/vnd.oci.empty.v1+json"),
		"layers":        []any{desc([]byte(`{"spdxVersion":"SPDX-2.3","name":"team/multi","packages":[]}`), sbomArtifactType)},
		"subject":       map[string]any{"mediaType": sd.MediaType, "digest": subject, "size": sd.Size},
	})
	d := sha256Digest(body)
	if err := remote.Put(r.Digest(d), rawManifest{body: body, mt: types.OCIManifestSchema1}); err != nil {
		t.Fatal(err)
	}
	return d
}

// rawManifest is a manifest pushed as is.
type rawManifest struct {
	body []byte
	mt   types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.body, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }

// referrersThrough asks the gateway's referrers API for subject's referrers in repo and
// returns their artifactType by digest.
func referrersThrough(t *testing.T, gw *gateway, repo, subject string) map[string]string {
	t.Helper()
	resp, err := http.Get(gw.url("/v2/" + repo + "/referrers/" + subject))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("referrers of %s@%s through the gateway: %s\n%s", repo, subject, resp.Status, body)
	}
	var idx struct {
		Manifests []struct{ Digest, ArtifactType string }
	}
	if err := json.Unmarshal(body, &idx); err != nil {
		t.Fatalf("referrers of %s@%s: %v\n%s", repo, subject, err, body)
	}
	out := map[string]string{}
	for _, m := range idx.Manifests {
		out[m.Digest] = m.ArtifactType
	}
	return out
}
