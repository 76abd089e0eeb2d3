package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/uuid"
	"github.com/package-url/packageurl-go"

	"github.com/portcullis-dev/portcullis/scan/inventory"
	"github.com/portcullis-dev/portcullis/scan/layer"
	"github.com/portcullis-dev/portcullis/scan/match"
)

// sbomSpecVersion is the CycloneDX version `portcullis scan --output cyclonedx` writes.
const (
	sbomSpecVersion = cdx.SpecVersion1_6
	sbomSchema      = "http://cyclonedx.org/schema/bom-1.6.schema.json"
)

// Property names in the SBOM. CycloneDX reserves the "cdx:" prefix; ours are "portcullis:".
const (
	propLayer         = "portcullis:layer:diffID"   // the layer that introduced the package
	propPath          = "portcullis:path"           // the file the package was read from
	propEcosystem     = "portcullis:ecosystem"      // the OSV ecosystem of a package or match
	propSourceName    = "portcullis:source:name"    // an OS package's source package
	propSourceVersion = "portcullis:source:version" // ... and its version when it differs
	propPlatform      = "portcullis:platform"       // os/architecture of a platform manifest
	propIncomplete    = "portcullis:incomplete"     // why the inventory may lack packages
	propDBRevision    = "portcullis:vulndb:revision"
	propReference     = "portcullis:reference" // IMAGE as given on the command line
	propFixedVersion  = "portcullis:fixedVersion"
)

// writeCycloneDX writes the scan as a CycloneDX JSON SBOM (see cycloneDXOf). The BOM is
// built with 1.6 fields only and encoded as it is: the library's EncodeVersion
// conversion would turn a rating without a scoring method into method "other".
func writeCycloneDX(w io.Writer, ref, digest string, targets []scanTarget) error {
	bom := cycloneDXOf(ref, digest, targets, time.Now(), uuid.New())
	return cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON).SetPretty(true).Encode(bom)
}

// cycloneDXOf describes the scanned image as a CycloneDX BOM: the image is
// metadata.component (type container, version its digest), each package found is a
// library component (purl, the layer diffID and file path as properties and evidence),
// and each finding is a vulnerability affecting that component.
//
// An image index gives one BOM for all its platforms: metadata.component is the index,
// each platform manifest is a container component (version its digest, the platform as
// a property) whose nested components are the packages found in it, and the
// dependencies say index → platforms → packages. A package present in several
// platforms appears once under each, with bom-refs prefixed by the platform's digest,
// and each vulnerability names the platform's component it affects.
func cycloneDXOf(ref, digest string, targets []scanTarget, now time.Time, serial uuid.UUID) *cdx.BOM {
	imgName, imgPURL := imageIdentity(ref, digest)
	bom := cdx.NewBOM()
	bom.SpecVersion, bom.JSONSchema = sbomSpecVersion, sbomSchema
	bom.SerialNumber = "urn:uuid:" + serial.String()
	root := cdx.Component{BOMRef: digest, Type: cdx.ComponentTypeContainer, Name: imgName, Version: digest, PackageURL: imgPURL}
	rootProps := []cdx.Property{{Name: propReference, Value: ref}}
	if len(targets) > 0 && targets[0].Report.DBRevision != "" {
		rootProps = append(rootProps, cdx.Property{Name: propDBRevision, Value: targets[0].Report.DBRevision})
	}
	bom.Metadata = &cdx.Metadata{
		Timestamp: now.UTC().Format(time.RFC3339),
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{
			Type: cdx.ComponentTypeApplication, Name: "portcullis", Version: version,
		}}},
	}

	var components []cdx.Component
	var vulns []cdx.Vulnerability
	deps := []cdx.Dependency{}
	single := len(targets) == 1 && targets[0].Platform == "" && targets[0].Digest == digest
	var platformRefs []string
	seenPlatform := map[string]bool{}
	for _, t := range targets {
		prefix := ""
		if !single {
			if seenPlatform[t.Digest] {
				continue // an index listing one manifest twice
			}
			seenPlatform[t.Digest] = true
			prefix = t.Digest + "/"
		}
		pkgs, refs := packageComponents(t, prefix)
		vulns = append(vulns, vulnerabilities(t, prefix, refs)...)
		var pkgRefs []string
		for _, c := range pkgs {
			pkgRefs = append(pkgRefs, c.BOMRef)
		}
		if single {
			components = pkgs
			rootProps = append(rootProps, incompleteProps(t)...)
			deps = append(deps, cdx.Dependency{Ref: root.BOMRef, Dependencies: &pkgRefs})
			continue
		}
		platform := cdx.Component{BOMRef: t.Digest, Type: cdx.ComponentTypeContainer, Name: imgName, Version: t.Digest}
		props := incompleteProps(t)
		if t.Platform != "" {
			props = append([]cdx.Property{{Name: propPlatform, Value: t.Platform}}, props...)
		}
		if len(props) > 0 {
			platform.Properties = &props
		}
		if len(pkgs) > 0 {
			platform.Components = &pkgs
		}
		components = append(components, platform)
		platformRefs = append(platformRefs, t.Digest)
		deps = append(deps, cdx.Dependency{Ref: t.Digest, Dependencies: &pkgRefs})
	}
	if !single {
		deps = append([]cdx.Dependency{{Ref: root.BOMRef, Dependencies: &platformRefs}}, deps...)
	}
	root.Properties = &rootProps
	bom.Metadata.Component = &root
	bom.Components = &components
	bom.Dependencies = &deps
	bom.Vulnerabilities = &vulns
	return bom
}

// imageIdentity returns the name the SBOM gives the image and, for a registry
// reference, its purl (pkg:oci/NAME@DIGEST?repository_url=...&tag=...).
func imageIdentity(ref, digest string) (string, string) {
	if rest, ok := strings.CutPrefix(ref, "oci:"); ok {
		dir := rest
		if i := strings.LastIndex(rest, ":"); i > 0 {
			dir = rest[:i]
		}
		return filepath.Base(filepath.Clean(dir)), ""
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return ref, ""
	}
	repo := r.Context()
	quals := packageurl.Qualifiers{{Key: "repository_url", Value: repo.Name()}}
	if tag, ok := r.(name.Tag); ok {
		quals = append(quals, packageurl.Qualifier{Key: "tag", Value: tag.TagStr()})
	}
	last := repo.RepositoryStr()
	if i := strings.LastIndex(last, "/"); i >= 0 {
		last = last[i+1:]
	}
	return repo.Name(), packageurl.NewPackageURL("oci", "", last, digest, quals, "").ToString()
}

func incompleteProps(t scanTarget) []cdx.Property {
	var out []cdx.Property
	for _, r := range t.Report.Reasons {
		out = append(out, cdx.Property{Name: propIncomplete, Value: r})
	}
	return out
}

// pkgKey identifies one package of one scanned manifest.
type pkgKey struct{ ecosystem, name, version, path string }

func keyOfPackage(p inventory.Package) pkgKey {
	return pkgKey{p.Ecosystem, p.Name, p.Version, p.Path}
}

// packageComponents returns the components for the packages found in t (an
// operating-system component first when the distro is known) and the bom-ref of each
// package.
func packageComponents(t scanTarget, prefix string) ([]cdx.Component, map[pkgKey]string) {
	refs := map[pkgKey]string{}
	var out []cdx.Component
	if t.distro.ID != "" {
		c := cdx.Component{BOMRef: prefix + "os:" + t.distro.ID + "@" + t.distro.VersionID, Type: cdx.ComponentTypeOS,
			Name: t.distro.ID, Version: t.distro.VersionID, Description: t.distro.PrettyName}
		out = append(out, c)
	}
	for _, p := range t.packages {
		k := keyOfPackage(p)
		if _, dup := refs[k]; dup {
			continue
		}
		c := packageComponent(p, t.distro, prefix)
		refs[k] = c.BOMRef
		out = append(out, c)
	}
	return out, refs
}

// packageComponent describes one package: a library with its purl, the layer that
// introduced it and the file it was read from.
func packageComponent(p inventory.Package, d layer.Distro, prefix string) cdx.Component {
	purl := purlOf(p, d)
	c := cdx.Component{
		BOMRef:     prefix + p.Path + ":" + purl,
		Type:       cdx.ComponentTypeLibrary,
		Name:       p.Name,
		Version:    p.Version,
		PackageURL: purl,
	}
	props := []cdx.Property{{Name: propEcosystem, Value: p.Ecosystem}}
	if p.Layer != "" {
		props = append(props, cdx.Property{Name: propLayer, Value: p.Layer})
	}
	if p.Path != "" {
		props = append(props, cdx.Property{Name: propPath, Value: p.Path})
		c.Evidence = &cdx.Evidence{Occurrences: &[]cdx.EvidenceOccurrence{{Location: p.Path}}}
	}
	if p.SourceName != "" && p.SourceName != p.Name {
		props = append(props, cdx.Property{Name: propSourceName, Value: p.SourceName})
	}
	if p.SourceVersion != "" && p.SourceVersion != p.Version {
		props = append(props, cdx.Property{Name: propSourceVersion, Value: p.SourceVersion})
	}
	c.Properties = &props
	return c
}

// purlOf returns the package URL of p: pkg:deb/debian/NAME@V?distro=debian-12,
// pkg:apk/alpine/NAME@V?distro=alpine-3.20.3, pkg:golang/MODULE@V (the standard library
// as pkg:golang/stdlib@vX.Y.Z), pkg:npm/%40scope/NAME@V, pkg:pypi/NAME@V (lower case,
// "_" as "-"), pkg:maven/GROUP/ARTIFACT@V, pkg:generic/NAME@V otherwise. Go module paths
// keep their case (they are case-sensitive); a Go main module built without a version,
// "(devel)", has none in its purl. Debian and Alpine purls carry the package's
// architecture as recorded by its database (arch=amd64, arch=all, arch=x86_64).
func purlOf(p inventory.Package, d layer.Distro) string {
	typ, ns, nm, ver := packageurl.TypeGeneric, "", p.Name, p.Version
	var quals packageurl.Qualifiers
	distro := func(id string) {
		if d.ID != "" && d.VersionID != "" {
			quals = append(quals, packageurl.Qualifier{Key: "distro", Value: strings.ToLower(d.ID) + "-" + d.VersionID})
		}
		ns = strings.ToLower(id)
	}
	switch p.Ecosystem {
	case inventory.EcosystemDebian, inventory.EcosystemUbuntu:
		typ = packageurl.TypeDebian
		distro(firstNonEmpty(d.ID, p.Ecosystem))
		if p.Arch != "" {
			quals = append(quals, packageurl.Qualifier{Key: "arch", Value: p.Arch})
		}
	case inventory.EcosystemAlpine:
		typ = packageurl.TypeApk
		distro(firstNonEmpty(d.ID, p.Ecosystem))
		if p.Arch != "" {
			quals = append(quals, packageurl.Qualifier{Key: "arch", Value: p.Arch})
		}
	case inventory.EcosystemGo:
		typ = packageurl.TypeGolang
		switch {
		case p.Name == "stdlib":
			if ver != "" && !strings.HasPrefix(ver, "v") {
				ver = "v" + strings.TrimPrefix(ver, "go")
			}
		case ver == "(devel)":
			ver = ""
		}
		if i := strings.LastIndex(p.Name, "/"); i >= 0 {
			ns, nm = p.Name[:i], p.Name[i+1:]
		}
	case inventory.EcosystemNPM:
		typ = packageurl.TypeNPM
		if strings.HasPrefix(p.Name, "@") {
			if i := strings.Index(p.Name, "/"); i > 0 {
				ns, nm = p.Name[:i], p.Name[i+1:]
			}
		}
	case inventory.EcosystemPyPI:
		typ = packageurl.TypePyPi
		nm = strings.ReplaceAll(strings.ToLower(p.Name), "_", "-")
	case inventory.EcosystemMaven:
		typ = packageurl.TypeMaven
		if g, a, ok := strings.Cut(p.Name, ":"); ok {
			ns, nm = g, a
		}
	}
	return packageurl.NewPackageURL(typ, ns, nm, ver, quals, "").ToString()
}

// vulnerabilities returns one CycloneDX vulnerability per finding of t, affecting the
// component of the finding's package.
func vulnerabilities(t scanTarget, prefix string, refs map[pkgKey]string) []cdx.Vulnerability {
	out := make([]cdx.Vulnerability, 0, len(t.Report.Findings))
	for _, f := range t.Report.Findings {
		ref, ok := refs[keyOfPackage(f.Package)]
		if !ok {
			// Every finding's package is in the inventory; should one not be, name it
			// as its component would be named rather than leave a dangling reference.
			ref = packageComponent(f.Package, t.distro, prefix).BOMRef
		}
		src := vulnSource(f.ID)
		v := cdx.Vulnerability{ID: f.ID, Source: src, Description: f.Summary}
		rating := cdx.VulnerabilityRating{Source: src, Severity: cdxSeverity(f.Severity), Vector: f.CVSSVector, Method: scoringMethod(f.CVSSVector)}
		if f.CVSS > 0 {
			score := f.CVSS
			rating.Score = &score
		}
		v.Ratings = &[]cdx.VulnerabilityRating{rating}
		if len(f.Aliases) > 0 {
			var rs []cdx.VulnerabilityReference
			for _, a := range f.Aliases {
				rs = append(rs, cdx.VulnerabilityReference{ID: a, Source: vulnSource(a)})
			}
			v.References = &rs
		}
		versions := []cdx.AffectedVersions{{Version: f.Package.Version, Status: cdx.VulnerabilityStatusAffected}}
		props := []cdx.Property{{Name: propEcosystem, Value: f.Ecosystem}}
		if f.Fixed != "" {
			fixed := f.Fixed
			if f.Package.Ecosystem == inventory.EcosystemGo && strings.HasPrefix(f.Package.Version, "v") && !strings.HasPrefix(fixed, "v") {
				fixed = "v" + fixed // Go advisories write versions without the "v" module versions have
			}
			v.Recommendation = fmt.Sprintf("Upgrade %s from %s to %s or later.", f.Package.Name, f.Package.Version, fixed)
			versions = append(versions, cdx.AffectedVersions{Version: fixed, Status: cdx.VulnerabilityStatusNotAffected})
			props = append(props, cdx.Property{Name: propFixedVersion, Value: f.Fixed})
		} else {
			v.Recommendation = fmt.Sprintf("No fixed version of %s is known.", f.Package.Name)
		}
		v.Affects = &[]cdx.Affects{{Ref: ref, Range: &versions}}
		v.Properties = &props
		out = append(out, v)
	}
	return out
}

// vulnSource names the database an identifier comes from; every one of them is
// published through OSV, whose page for it is the URL.
func vulnSource(id string) *cdx.Source {
	var n string
	switch {
	case strings.HasPrefix(id, "GO-"):
		n = "Go Vulnerability Database"
	case strings.HasPrefix(id, "GHSA-"):
		n = "GitHub Advisory Database"
	case strings.HasPrefix(id, "CVE-"):
		n = "NVD"
	case strings.HasPrefix(id, "DSA-"), strings.HasPrefix(id, "DLA-"), strings.HasPrefix(id, "DTSA-"), strings.HasPrefix(id, "DEBIAN-"):
		n = "Debian Security Tracker"
	case strings.HasPrefix(id, "ALPINE-"):
		n = "Alpine Security Database"
	case strings.HasPrefix(id, "USN-"), strings.HasPrefix(id, "UBUNTU-"):
		n = "Ubuntu Security Notices"
	case strings.HasPrefix(id, "PYSEC-"):
		n = "PyPI Advisory Database"
	default:
		n = "OSV"
	}
	return &cdx.Source{Name: n, URL: "https://osv.dev/vulnerability/" + id}
}

func cdxSeverity(s match.Severity) cdx.Severity {
	switch s {
	case match.SeverityCritical:
		return cdx.SeverityCritical
	case match.SeverityHigh:
		return cdx.SeverityHigh
	case match.SeverityMedium:
		return cdx.SeverityMedium
	case match.SeverityLow:
		return cdx.SeverityLow
	case match.SeverityNone:
		return cdx.SeverityNone
	}
	return cdx.SeverityUnknown
}

func scoringMethod(vector string) cdx.ScoringMethod {
	switch {
	case strings.HasPrefix(vector, "CVSS:3.1/"):
		return cdx.ScoringMethodCVSSv31
	case strings.HasPrefix(vector, "CVSS:3.0/"):
		return cdx.ScoringMethodCVSSv3
	case strings.HasPrefix(vector, "CVSS:4.0/"):
		return cdx.ScoringMethodCVSSv4
	case vector != "":
		return cdx.ScoringMethodOther
	}
	return ""
}
