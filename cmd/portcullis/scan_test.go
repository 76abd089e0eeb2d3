package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/uuid"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/portcullis-dev/portcullis/internal/scantest"
	"github.com/portcullis-dev/portcullis/scan/inventory"
	"github.com/portcullis-dev/portcullis/scan/layer"
	"github.com/portcullis-dev/portcullis/scan/match"
)

// imageLayout writes img into a new OCI layout under tag and returns its directory.
func imageLayout(t *testing.T, img v1.Image, tag string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "oci")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})); err != nil {
		t.Fatal(err)
	}
	return dir
}

// vulnerableLayout writes an OCI layout holding one image (tag 1.0.0) whose layer carries
// a Go binary with known advisories, and a GitHub token in its Env.
func vulnerableLayout(t *testing.T) string {
	t.Helper()
	bin := scantest.VulnerableGoBinary(t)
	l := scantest.FileLayer(t, "app/svc", bin)
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	if img, err = mutate.Config(img, v1.Config{Env: []string{"GH_TOKEN=ghp_Qm7Tz2Lk9Vx4Rw8Ny3Pb6Hj1Sd5Fg0Ac2Ze7"}}); err != nil {
		t.Fatal(err)
	}
	return imageLayout(t, img, "1.0.0")
}

func TestScanCommand(t *testing.T) {
	dbDir := scantest.GoDB(t)
	dir := vulnerableLayout(t)
	run := func(args ...string) (int, string, string) {
		var out, errs bytes.Buffer
		code := run(append([]string{"scan", "--db", dbDir}, args...), &out, &errs)
		return code, out.String(), errs.String()
	}

	code, out, errs := run("oci:" + dir + ":1.0.0")
	if code != 0 {
		t.Fatalf("table: exit %d\n%s", code, errs)
	}
	for _, want := range []string{"GO-2022-1059", "golang.org/x/text", "0.3.5", "0.3.8", "runs as root", "secret:"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Qm7Tz2Lk9Vx4Rw8Ny3Pb6Hj1Sd5Fg0Ac2Ze7") {
		t.Error("the table shows the token itself")
	}

	code, out, _ = run("--output", "sarif", "oci:"+dir)
	var sarif struct {
		Version string `json:"version"`
		Runs    []struct {
			Results []struct {
				RuleID string `json:"ruleId"`
				Level  string `json:"level"`
			} `json:"results"`
		} `json:"runs"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &sarif) != nil || sarif.Version != "2.1.0" || len(sarif.Runs) != 1 {
		t.Fatalf("sarif: exit %d\n%s", code, out)
	}
	ids := map[string]bool{}
	for _, r := range sarif.Runs[0].Results {
		ids[r.RuleID] = true
	}
	if !ids["GO-2022-1059"] || !ids["GO-2021-0113"] {
		t.Errorf("sarif results %v lack the x/text advisories", ids)
	}

	code, out, _ = run("--output", "json", "oci:"+dir)
	var doc struct {
		Manifests []struct {
			Report struct {
				Findings []json.RawMessage `json:"findings"`
			} `json:"report"`
			Secrets []struct{ Type string } `json:"secrets"`
		} `json:"manifests"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &doc) != nil || len(doc.Manifests) != 1 || len(doc.Manifests[0].Report.Findings) == 0 || len(doc.Manifests[0].Secrets) == 0 {
		t.Fatalf("json: exit %d\n%s", code, out)
	}

	if code, _, _ := run("--fail-on", "high", "oci:"+dir); code != 1 {
		t.Errorf("--fail-on high with findings: exit %d, want 1", code)
	}
	if code, _, errs := run("oci:" + filepath.Join(dir, "missing")); code != 1 || !strings.Contains(errs, "not an OCI image layout") {
		t.Errorf("missing layout: exit %d %q", code, errs)
	}
	if code, _, _ := run("--output", "yaml", "oci:"+dir); code != 2 {
		t.Errorf("bad --output: exit %d, want 2", code)
	}
}

// debianLayer holds a Debian 12 os-release and a dpkg database with two packages, one
// built from a differently named source package.
func debianLayer(t *testing.T) v1.Layer {
	return scantest.FilesLayer(t, map[string]string{
		"etc/os-release": "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n",
		"var/lib/dpkg/status": "Package: base-files\nStatus: install ok installed\nArchitecture: amd64\nVersion: 12.4+deb12u5\n\n" +
			"Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl\nVersion: 3.0.11-1~deb12u2\n\n",
	})
}

// cdxDoc is the part of a CycloneDX document the tests read.
type cdxDoc struct {
	BOMFormat    string `json:"bomFormat"`
	SpecVersion  string `json:"specVersion"`
	SerialNumber string `json:"serialNumber"`
	Version      int    `json:"version"`
	Metadata     struct {
		Timestamp string       `json:"timestamp"`
		Component cdxComponent `json:"component"`
		Tools     struct {
			Components []cdxComponent `json:"components"`
		} `json:"tools"`
	} `json:"metadata"`
	Components   []cdxComponent `json:"components"`
	Dependencies []struct {
		Ref       string   `json:"ref"`
		DependsOn []string `json:"dependsOn"`
	} `json:"dependencies"`
	Vulnerabilities []struct {
		ID     string `json:"id"`
		Source struct {
			Name string `json:"name"`
			URL  string `json:"url"`
		} `json:"source"`
		Ratings []struct {
			Severity string   `json:"severity"`
			Score    *float64 `json:"score"`
			Vector   string   `json:"vector"`
			Method   string   `json:"method"`
		} `json:"ratings"`
		Recommendation string `json:"recommendation"`
		Affects        []struct {
			Ref      string `json:"ref"`
			Versions []struct {
				Version string `json:"version"`
				Status  string `json:"status"`
			} `json:"versions"`
		} `json:"affects"`
		Properties []cdxProperty `json:"properties"`
	} `json:"vulnerabilities"`
}

type cdxComponent struct {
	BOMRef     string         `json:"bom-ref"`
	Type       string         `json:"type"`
	Name       string         `json:"name"`
	Version    string         `json:"version"`
	PURL       string         `json:"purl"`
	Properties []cdxProperty  `json:"properties"`
	Components []cdxComponent `json:"components"`
	Evidence   struct {
		Occurrences []struct {
			Location string `json:"location"`
		} `json:"occurrences"`
	} `json:"evidence"`
}

type cdxProperty struct{ Name, Value string }

func (c cdxComponent) prop(name string) string {
	for _, p := range c.Properties {
		if p.Name == name {
			return p.Value
		}
	}
	return ""
}

var serialRE = regexp.MustCompile(`^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// checkCycloneDX validates raw against the CycloneDX 1.6 JSON schema (the copy the
// cyclonedx-go module ships) and checks what the schema cannot: bomFormat, specVersion,
// a random-UUID serial number, bom-refs unique across the document and every reference
// (affects, dependencies) naming one. It returns the decoded document and every
// component by bom-ref.
func checkCycloneDX(t *testing.T, raw []byte) (cdxDoc, map[string]cdxComponent) {
	t.Helper()
	validateCycloneDXSchema(t, raw)
	var doc cdxDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("SBOM is not JSON: %v\n%s", err, raw)
	}
	if doc.BOMFormat != "CycloneDX" || doc.SpecVersion != "1.6" || doc.Version != 1 {
		t.Errorf("bomFormat %q specVersion %q version %d, want CycloneDX 1.6 version 1", doc.BOMFormat, doc.SpecVersion, doc.Version)
	}
	if !serialRE.MatchString(doc.SerialNumber) {
		t.Errorf("serialNumber %q is not urn:uuid:<random UUID>", doc.SerialNumber)
	}
	if len(doc.Metadata.Tools.Components) != 1 || doc.Metadata.Tools.Components[0].Name != "portcullis" {
		t.Errorf("metadata.tools = %+v, want portcullis", doc.Metadata.Tools)
	}
	refs := map[string]cdxComponent{}
	var walk func([]cdxComponent)
	walk = func(cs []cdxComponent) {
		for _, c := range cs {
			if c.BOMRef == "" {
				t.Errorf("component %s@%s has no bom-ref", c.Name, c.Version)
			} else if _, dup := refs[c.BOMRef]; dup {
				t.Errorf("bom-ref %q is not unique", c.BOMRef)
			}
			refs[c.BOMRef] = c
			walk(c.Components)
		}
	}
	walk([]cdxComponent{doc.Metadata.Component})
	walk(doc.Components)
	for _, v := range doc.Vulnerabilities {
		if len(v.Affects) == 0 {
			t.Errorf("vulnerability %s affects nothing", v.ID)
		}
		for _, a := range v.Affects {
			if _, ok := refs[a.Ref]; !ok {
				t.Errorf("vulnerability %s affects %q, which is no component", v.ID, a.Ref)
			}
		}
	}
	for _, d := range doc.Dependencies {
		for _, r := range append([]string{d.Ref}, d.DependsOn...) {
			if _, ok := refs[r]; !ok {
				t.Errorf("dependency ref %q is no component", r)
			}
		}
	}
	return doc, refs
}

// validateCycloneDXSchema validates raw against bom-1.6.schema.json as shipped in the
// cyclonedx-go module (with the SPDX and JSF schemas it refers to).
func validateCycloneDXSchema(t *testing.T, raw []byte) {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/CycloneDX/cyclonedx-go").Output()
	if err != nil {
		t.Fatalf("locating the cyclonedx-go module: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "schema")
	c := jsonschema.NewCompiler()
	for file, id := range map[string]string{
		"bom-1.6.schema.json":   "http://cyclonedx.org/schema/bom-1.6.schema.json",
		"spdx.schema.json":      "http://cyclonedx.org/schema/spdx.schema.json",
		"jsf-0.82.schemax.json": "http://cyclonedx.org/schema/jsf-0.82.schema.json",
	} {
		f, err := os.Open(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if err := c.AddResource(id, doc); err != nil {
			t.Fatal(err)
		}
	}
	sch, err := c.Compile("http://cyclonedx.org/schema/bom-1.6.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Errorf("the SBOM does not validate against the CycloneDX 1.6 schema: %v", err)
	}
}

func TestScanCycloneDX(t *testing.T) {
	dbDir := scantest.GoDB(t)
	bin := scantest.VulnerableGoBinary(t)
	goLayer := scantest.FileLayer(t, "app/svc", bin)
	debLayer := debianLayer(t)
	img, err := mutate.AppendLayers(empty.Image, debLayer, goLayer)
	if err != nil {
		t.Fatal(err)
	}
	dir := imageLayout(t, img, "1.0.0")
	digest, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	goDiffID, err := goLayer.DiffID()
	if err != nil {
		t.Fatal(err)
	}
	debDiffID, err := debLayer.DiffID()
	if err != nil {
		t.Fatal(err)
	}

	var out, errs bytes.Buffer
	if code := run([]string{"scan", "--db", dbDir, "--output", "cyclonedx", "oci:" + dir + ":1.0.0"}, &out, &errs); code != 0 {
		t.Fatalf("exit %d\n%s", code, errs.String())
	}
	doc, refs := checkCycloneDX(t, out.Bytes())

	root := doc.Metadata.Component
	if root.Type != "container" || root.Name != "oci" || root.Version != digest.String() || root.BOMRef != digest.String() {
		t.Errorf("metadata.component = %+v, want container oci version %s", root, digest)
	}
	byPURL := map[string]cdxComponent{}
	for _, c := range doc.Components {
		byPURL[c.PURL] = c
	}
	text, ok := byPURL["pkg:golang/golang.org/x/text@v0.3.5"]
	if !ok {
		t.Fatalf("no component with purl pkg:golang/golang.org/x/text@v0.3.5 among %v", keys(byPURL))
	}
	if text.Type != "library" || text.Name != "golang.org/x/text" || text.Version != "v0.3.5" ||
		text.prop("portcullis:layer:diffID") != goDiffID.String() || text.prop("portcullis:path") != "/app/svc" ||
		len(text.Evidence.Occurrences) != 1 || text.Evidence.Occurrences[0].Location != "/app/svc" {
		t.Errorf("x/text component = %+v, want library v0.3.5 from /app/svc in layer %s", text, goDiffID)
	}
	if _, ok := byPURL["pkg:golang/stdlib@v"+strings.TrimPrefix(runtime.Version(), "go")]; !ok {
		t.Errorf("no stdlib component for %s among %v", runtime.Version(), keys(byPURL))
	}
	ssl, ok := byPURL["pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12"]
	if !ok {
		t.Fatalf("no Debian libssl3 component among %v", keys(byPURL))
	}
	if ssl.prop("portcullis:layer:diffID") != debDiffID.String() || ssl.prop("portcullis:path") != "/var/lib/dpkg/status" ||
		ssl.prop("portcullis:source:name") != "openssl" {
		t.Errorf("libssl3 component = %+v, want source openssl from /var/lib/dpkg/status in layer %s", ssl, debDiffID)
	}
	if _, ok := byPURL["pkg:deb/debian/base-files@12.4%2Bdeb12u5?arch=amd64&distro=debian-12"]; !ok {
		t.Errorf("no Debian base-files component among %v", keys(byPURL))
	}
	if os, ok := refs["os:debian@12"]; !ok || os.Type != "operating-system" {
		t.Errorf("no operating-system component debian 12: %+v", os)
	}

	// The x/text advisories, each with its fix, affecting the x/text component.
	wantFix := map[string]string{"GO-2021-0113": "0.3.7", "GO-2022-1059": "0.3.8"}
	for _, v := range doc.Vulnerabilities {
		fix, ok := wantFix[v.ID]
		if !ok {
			continue
		}
		delete(wantFix, v.ID)
		if len(v.Affects) != 1 || v.Affects[0].Ref != text.BOMRef {
			t.Errorf("%s affects %+v, want the x/text component %q", v.ID, v.Affects, text.BOMRef)
			continue
		}
		vs := v.Affects[0].Versions
		if len(vs) != 2 || vs[0].Version != "v0.3.5" || vs[0].Status != "affected" || vs[1].Version != "v"+fix || vs[1].Status != "unaffected" {
			t.Errorf("%s versions = %+v, want v0.3.5 affected, v%s unaffected", v.ID, vs, fix)
		}
		if !strings.Contains(v.Recommendation, "to v"+fix) {
			t.Errorf("%s recommendation %q does not name the fix %s", v.ID, v.Recommendation, fix)
		}
		if v.Source.Name != "Go Vulnerability Database" || v.Source.URL != "https://osv.dev/vulnerability/"+v.ID {
			t.Errorf("%s source = %+v", v.ID, v.Source)
		}
		var fixProp string
		for _, p := range v.Properties {
			if p.Name == "portcullis:fixedVersion" {
				fixProp = p.Value
			}
		}
		if fixProp != fix {
			t.Errorf("%s portcullis:fixedVersion = %q, want %s", v.ID, fixProp, fix)
		}
		// Go advisories state no severity: the rating says so, and claims no method.
		if len(v.Ratings) != 1 || v.Ratings[0].Severity != "unknown" || v.Ratings[0].Method != "" || v.Ratings[0].Score != nil {
			t.Errorf("%s ratings = %+v, want one of unknown severity, no method or score", v.ID, v.Ratings)
		}
	}
	if len(wantFix) != 0 {
		t.Errorf("SBOM lacks the vulnerabilities %v", wantFix)
	}
	if len(doc.Dependencies) != 1 || doc.Dependencies[0].Ref != root.BOMRef || len(doc.Dependencies[0].DependsOn) != len(doc.Components) {
		t.Errorf("dependencies = %+v, want the image depending on its %d components", doc.Dependencies, len(doc.Components))
	}
}

func TestScanCycloneDXIndex(t *testing.T) {
	dbDir := scantest.GoDB(t)
	bin := scantest.VulnerableGoBinary(t)
	paths := map[string]string{"amd64": "app/svc", "arm64": "opt/tool"}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	digests := map[string]string{}
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := mutate.AppendLayers(empty.Image, scantest.FileLayer(t, paths[arch], bin))
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests[arch] = d.String()
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	idxDigest, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "multi")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "2.0.0"})); err != nil {
		t.Fatal(err)
	}

	var out, errs bytes.Buffer
	if code := run([]string{"scan", "--db", dbDir, "--output", "cyclonedx", "oci:" + dir + ":2.0.0"}, &out, &errs); code != 0 {
		t.Fatalf("exit %d\n%s", code, errs.String())
	}
	doc, refs := checkCycloneDX(t, out.Bytes())
	if doc.Metadata.Component.Version != idxDigest.String() {
		t.Errorf("metadata.component.version = %q, want the index digest %s", doc.Metadata.Component.Version, idxDigest)
	}
	if len(doc.Components) != 2 {
		t.Fatalf("%d top-level components, want one per platform", len(doc.Components))
	}
	textRefs := map[string]bool{}
	for _, arch := range []string{"amd64", "arm64"} {
		pc, ok := refs[digests[arch]]
		if !ok || pc.Type != "container" || pc.Version != digests[arch] || pc.prop("portcullis:platform") != "linux/"+arch {
			t.Errorf("platform %s component = %+v", arch, pc)
			continue
		}
		found := false
		for _, c := range pc.Components {
			if c.PURL == "pkg:golang/golang.org/x/text@v0.3.5" {
				found = true
				textRefs[c.BOMRef] = true
				if c.prop("portcullis:path") != "/"+paths[arch] {
					t.Errorf("%s x/text path %q, want /%s", arch, c.prop("portcullis:path"), paths[arch])
				}
			}
		}
		if !found {
			t.Errorf("platform %s has no nested x/text component", arch)
		}
	}
	affected := map[string]bool{}
	for _, v := range doc.Vulnerabilities {
		if v.ID == "GO-2022-1059" {
			for _, a := range v.Affects {
				affected[a.Ref] = true
			}
		}
	}
	if len(textRefs) != 2 || len(affected) != 2 {
		t.Errorf("GO-2022-1059 affects %v, want both platforms' x/text components %v", affected, textRefs)
	}
	for r := range textRefs {
		if !affected[r] {
			t.Errorf("GO-2022-1059 does not affect %s", r)
		}
	}
}

func TestPURLs(t *testing.T) {
	deb12 := layer.Distro{ID: "debian", VersionID: "12"}
	alpine := layer.Distro{ID: "alpine", VersionID: "3.20.3"}
	ubuntu := layer.Distro{ID: "ubuntu", VersionID: "22.04"}
	for _, c := range []struct {
		pkg    inventory.Package
		distro layer.Distro
		want   string
	}{
		{inventory.Package{Ecosystem: "Debian", Name: "libc6", Version: "2.36-9+deb12u4"}, deb12, "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?distro=debian-12"},
		{inventory.Package{Ecosystem: "Ubuntu", Name: "bash", Version: "5.1-6ubuntu1"}, ubuntu, "pkg:deb/ubuntu/bash@5.1-6ubuntu1?distro=ubuntu-22.04"},
		{inventory.Package{Ecosystem: "Debian", Name: "bash", Version: "5.2"}, layer.Distro{}, "pkg:deb/debian/bash@5.2"},
		{inventory.Package{Ecosystem: "Alpine", Name: "musl", Version: "1.2.5-r0"}, alpine, "pkg:apk/alpine/musl@1.2.5-r0?distro=alpine-3.20.3"},
		{inventory.Package{Ecosystem: "Go", Name: "github.com/BurntSushi/toml", Version: "v1.3.2"}, deb12, "pkg:golang/github.com/BurntSushi/toml@v1.3.2"},
		{inventory.Package{Ecosystem: "Go", Name: "stdlib", Version: "1.22.3"}, deb12, "pkg:golang/stdlib@v1.22.3"},
		{inventory.Package{Ecosystem: "Go", Name: "example.com/app", Version: "(devel)"}, deb12, "pkg:golang/example.com/app"},
		{inventory.Package{Ecosystem: "npm", Name: "@babel/core", Version: "7.24.0"}, deb12, "pkg:npm/%40babel/core@7.24.0"},
		{inventory.Package{Ecosystem: "npm", Name: "lodash", Version: "4.17.20"}, deb12, "pkg:npm/lodash@4.17.20"},
		{inventory.Package{Ecosystem: "PyPI", Name: "Typing_Extensions", Version: "4.9.0"}, deb12, "pkg:pypi/typing-extensions@4.9.0"},
		{inventory.Package{Ecosystem: "Maven", Name: "org.apache.logging.log4j:log4j-core", Version: "2.14.1"}, deb12, "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"},
	} {
		if got := purlOf(c.pkg, c.distro); got != c.want {
			t.Errorf("purlOf(%+v) = %q, want %q", c.pkg, got, c.want)
		}
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestCycloneDXRatings(t *testing.T) {
	pkg := inventory.Package{Ecosystem: "Debian", Name: "libssl3", Version: "3.0.11-1~deb12u2", SourceName: "openssl", Path: "/var/lib/dpkg/status", Layer: "sha256:1"}
	target := scanTarget{Digest: "sha256:abc", packages: []inventory.Package{pkg}, distro: layer.Distro{ID: "debian", VersionID: "12"}}
	target.Report.Findings = []match.Finding{
		{Package: pkg, ID: "DSA-5764-1", Aliases: []string{"CVE-2024-5535"}, Severity: match.SeverityCritical, CVSS: 9.1,
			CVSSVector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:H", Fixed: "3.0.14-1~deb12u1", Fixable: true},
		{Package: pkg, ID: "DEBIAN-CVE-2024-0001", Severity: match.SeverityLow},
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(cycloneDXOf("registry.example/team/app:1.0.0", "sha256:abc", []scanTarget{target}, time.Now(), uuid.New())); err != nil {
		t.Fatal(err)
	}
	doc, _ := checkCycloneDX(t, buf.Bytes())
	if len(doc.Vulnerabilities) != 2 {
		t.Fatalf("%d vulnerabilities, want 2", len(doc.Vulnerabilities))
	}
	r := doc.Vulnerabilities[0].Ratings
	if len(r) != 1 || r[0].Severity != "critical" || r[0].Score == nil || *r[0].Score != 9.1 || r[0].Method != "CVSSv31" || !strings.HasPrefix(r[0].Vector, "CVSS:3.1/AV:N") {
		t.Errorf("DSA rating = %+v, want critical 9.1 CVSSv31 with its vector", r)
	}
	if v := doc.Vulnerabilities[0]; v.Source.Name != "Debian Security Tracker" || v.Recommendation != "Upgrade libssl3 from 3.0.11-1~deb12u2 to 3.0.14-1~deb12u1 or later." {
		t.Errorf("DSA source %+v, recommendation %q", v.Source, v.Recommendation)
	}
	if r := doc.Vulnerabilities[1].Ratings; len(r) != 1 || r[0].Severity != "low" || r[0].Score != nil || r[0].Method != "" {
		t.Errorf("word-only rating = %+v, want low with no score or method", r)
	}
	if v := doc.Vulnerabilities[1]; !strings.Contains(v.Recommendation, "No fixed version") || len(v.Affects[0].Versions) != 1 {
		t.Errorf("unfixed vulnerability: recommendation %q, versions %+v", v.Recommendation, v.Affects[0].Versions)
	}
	want := "pkg:oci/app@sha256:abc?repository_url=registry.example%2Fteam%2Fapp&tag=1.0.0"
	if c := doc.Metadata.Component; c.Name != "registry.example/team/app" || c.PURL != want {
		t.Errorf("image component %q purl %q, want registry.example/team/app, %s", c.Name, c.PURL, want)
	}
}

// keyPEMs generates two private keys and returns them PEM-encoded: an EC key (SEC 1) and
// an Ed25519 key (PKCS#8).
func keyPEMs(t *testing.T) (ec, ed string) {
	t.Helper()
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	ec = string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if der, err = x509.MarshalPKCS8PrivateKey(edKey); err != nil {
		t.Fatal(err)
	}
	ed = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	return ec, ed
}

// assertNoKeyBody fails if out holds any 10 consecutive characters of the base64 body of
// the PEM block key (the redacted excerpt shows 4 and 2).
func assertNoKeyBody(t *testing.T, what, out, key string) {
	t.Helper()
	var body strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(key), "\n") {
		if !strings.HasPrefix(line, "-----") {
			body.WriteString(line)
		}
	}
	b := body.String()
	if len(b) < 60 {
		t.Fatalf("key body %q too short to check", b)
	}
	for i := 0; i+10 <= len(b); i++ {
		if strings.Contains(out, b[i:i+10]) {
			t.Fatalf("%s shows %q of a private key's body", what, b[i:i+10])
		}
	}
}

func TestScanReportsSecretsInLayerFiles(t *testing.T) {
	dbDir := scantest.GoDB(t)
	ecKey, edKey := keyPEMs(t)
	// Layer 1 adds a key that layer 2 deletes (a whiteout): a container does not see it,
	// but layer 1's blob still carries it. Layer 2 adds another key, on line 3.
	l1 := scantest.FilesLayer(t, map[string]string{"app/deploy.pem": ecKey, "app/main.py": "print('hello')\n"})
	l2 := scantest.FilesLayer(t, map[string]string{"app/.wh.deploy.pem": "", "root/.ssh/id_ed25519": "# CI key\n\n" + edKey})
	img, err := mutate.AppendLayers(empty.Image, l1, l2)
	if err != nil {
		t.Fatal(err)
	}
	var diffIDs []string
	for _, l := range []v1.Layer{l1, l2} {
		d, err := l.DiffID()
		if err != nil {
			t.Fatal(err)
		}
		diffIDs = append(diffIDs, d.String())
	}
	dir := imageLayout(t, img, "1.0.0")
	ref := "oci:" + dir + ":1.0.0"
	scan := func(output string) string {
		t.Helper()
		var out, errs bytes.Buffer
		if code := run([]string{"scan", "--db", dbDir, "--output", output, ref}, &out, &errs); code != 0 {
			t.Fatalf("--output %s: exit %d\n%s", output, code, errs.String())
		}
		for _, key := range []string{ecKey, edKey} {
			assertNoKeyBody(t, output, out.String(), key)
		}
		return out.String()
	}
	short := func(d string) string { return d[:len("sha256:")+12] + "…" }

	// --fail-on-secrets fails the job on them; without it, secrets alone do not.
	var out, errs bytes.Buffer
	if code := run([]string{"scan", "--db", dbDir, "--fail-on-secrets", ref}, &out, &errs); code != 1 {
		t.Errorf("--fail-on-secrets with two keys: exit %d, want 1\n%s", code, errs.String())
	}
	cleanImg, err := mutate.AppendLayers(empty.Image, scantest.FilesLayer(t, map[string]string{"app/main.py": "print('hello')\n"}))
	if err != nil {
		t.Fatal(err)
	}
	clean := imageLayout(t, cleanImg, "1.0.0")
	if code := run([]string{"scan", "--db", dbDir, "--fail-on-secrets", "oci:" + clean + ":1.0.0"}, &out, &errs); code != 0 {
		t.Errorf("--fail-on-secrets without secrets: exit %d, want 0\n%s", code, errs.String())
	}

	table := scan("table")
	for _, want := range []string{
		"secret: private-key in /app/deploy.pem:1 in layer 1 (" + short(diffIDs[0]) + "), deleted in a later layer but still in the image's blobs (-----BEGIN EC PRIVATE KEY----- ",
		"secret: private-key in /root/.ssh/id_ed25519:3 in layer 2 (" + short(diffIDs[1]) + ") (-----BEGIN PRIVATE KEY----- ",
		"[high]",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}

	var doc struct {
		Manifests []struct {
			Secrets []struct {
				Type        string `json:"type"`
				Location    string `json:"location"`
				Excerpt     string `json:"excerpt"`
				Path        string `json:"path"`
				Line        int    `json:"line"`
				Layer       string `json:"layer"`
				LayerNumber int    `json:"layerNumber"`
				Deleted     bool   `json:"deleted"`
				Confidence  string `json:"confidence"`
			} `json:"secrets"`
		} `json:"manifests"`
	}
	if out := scan("json"); json.Unmarshal([]byte(out), &doc) != nil || len(doc.Manifests) != 1 {
		t.Fatalf("json:\n%s", out)
	}
	got := doc.Manifests[0].Secrets
	if len(got) != 2 {
		t.Fatalf("json secrets = %+v, want the two keys", got)
	}
	for i, want := range []struct {
		path    string
		line    int
		deleted bool
		armor   string
	}{{"/app/deploy.pem", 1, true, "-----BEGIN EC PRIVATE KEY----- "}, {"/root/.ssh/id_ed25519", 3, false, "-----BEGIN PRIVATE KEY----- "}} {
		s := got[i]
		if s.Type != "private-key" || s.Path != want.path || s.Line != want.line || s.Location != fmt.Sprintf("%s:%d", want.path, want.line) ||
			s.Layer != diffIDs[i] || s.LayerNumber != i+1 || s.Deleted != want.deleted || s.Confidence != "high" ||
			!strings.HasPrefix(s.Excerpt, want.armor) {
			t.Errorf("json secret %d = %+v, want %s:%d in layer %d %s, deleted %v", i, s, want.path, want.line, i+1, diffIDs[i], want.deleted)
		}
	}

	var sarif struct {
		Runs []struct {
			Tool struct {
				Driver struct {
					Rules []struct {
						ID string `json:"id"`
					} `json:"rules"`
				} `json:"driver"`
			} `json:"tool"`
			Results []struct {
				RuleID  string `json:"ruleId"`
				Level   string `json:"level"`
				Message struct {
					Text string `json:"text"`
				} `json:"message"`
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct {
							URI string `json:"uri"`
						} `json:"artifactLocation"`
						Region struct {
							StartLine int `json:"startLine"`
						} `json:"region"`
					} `json:"physicalLocation"`
				} `json:"locations"`
				Properties struct {
					Layer       string `json:"layer"`
					LayerNumber int    `json:"layerNumber"`
					Deleted     bool   `json:"deleted"`
				} `json:"properties"`
			} `json:"results"`
		} `json:"runs"`
	}
	if out := scan("sarif"); json.Unmarshal([]byte(out), &sarif) != nil || len(sarif.Runs) != 1 {
		t.Fatalf("sarif:\n%s", out)
	}
	rules := map[string]bool{}
	for _, r := range sarif.Runs[0].Tool.Driver.Rules {
		rules[r.ID] = true
	}
	var located []string
	for _, r := range sarif.Runs[0].Results {
		if r.RuleID != "secret/private-key" {
			continue
		}
		if !rules[r.RuleID] || r.Level != "error" || len(r.Locations) != 1 || !strings.HasPrefix(r.Message.Text, "private-key in "+ref+": /") {
			t.Errorf("sarif secret result %+v (rules %v)", r, rules)
			continue
		}
		loc := r.Locations[0].PhysicalLocation
		located = append(located, fmt.Sprintf("%s:%d %s %d %v", loc.ArtifactLocation.URI, loc.Region.StartLine, r.Properties.Layer, r.Properties.LayerNumber, r.Properties.Deleted))
	}
	want := []string{
		fmt.Sprintf("app/deploy.pem:1 %s 1 true", diffIDs[0]),
		fmt.Sprintf("root/.ssh/id_ed25519:3 %s 2 false", diffIDs[1]),
	}
	if !slices.Equal(located, want) {
		t.Errorf("sarif secret results at %q, want %q", located, want)
	}
}

// A secret in the image configuration has no file: SARIF gives it a logical location
// naming where it is, and only its redacted excerpt.
func TestScanSARIFConfigSecret(t *testing.T) {
	dbDir := scantest.GoDB(t)
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 36)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	token := "ghp_" + string(b)
	img, err := mutate.AppendLayers(empty.Image, scantest.FilesLayer(t, map[string]string{"app/main.py": "print('hello')\n"}))
	if err != nil {
		t.Fatal(err)
	}
	if img, err = mutate.Config(img, v1.Config{Env: []string{"GH_TOKEN=" + token}, User: "65532"}); err != nil {
		t.Fatal(err)
	}
	dir := imageLayout(t, img, "1.0.0")
	var out, errs bytes.Buffer
	if code := run([]string{"scan", "--db", dbDir, "--output", "sarif", "oci:" + dir + ":1.0.0"}, &out, &errs); code != 0 {
		t.Fatalf("exit %d\n%s", code, errs.String())
	}
	if strings.Contains(out.String(), token) {
		t.Fatal("the token appears in the SARIF output")
	}
	var doc struct {
		Runs []struct {
			Results []struct {
				RuleID    string `json:"ruleId"`
				Locations []struct {
					LogicalLocations []struct {
						FullyQualifiedName string `json:"fullyQualifiedName"`
					} `json:"logicalLocations"`
				} `json:"locations"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil || len(doc.Runs) != 1 {
		t.Fatalf("sarif: %v\n%s", err, out.String())
	}
	for _, r := range doc.Runs[0].Results {
		if r.RuleID == "secret/github-token" && len(r.Locations) == 1 && len(r.Locations[0].LogicalLocations) == 1 &&
			strings.Contains(r.Locations[0].LogicalLocations[0].FullyQualifiedName, "GH_TOKEN") {
			return
		}
	}
	t.Errorf("no secret/github-token result at a logical location naming GH_TOKEN:\n%s", out.String())
}
