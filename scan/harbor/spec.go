package harbor

import (
	"mime"
	"strings"
	"time"
)

// Media types of the adapter API (spec v1.2).
const (
	// MimeOCIManifest and MimeDockerManifest are the artifacts an adapter consumes.
	MimeOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	MimeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	// MimeReport10 is Harbor's vulnerability report, version 1.0.
	MimeReport10 = "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0"
	// MimeReport11 is the vulnerability report, version 1.1 (same schema, CVSS and vendor attributes).
	MimeReport11 = "application/vnd.security.vulnerability.report; version=1.1"
	// MimeMetadata is the metadata response.
	MimeMetadata = "application/vnd.scanner.adapter.metadata+json; version=1.0"
	// MimeScanRequest is the scan request body.
	MimeScanRequest = "application/vnd.scanner.adapter.scan.request+json; version=1.0"
	// MimeScanResponse is the scan response body.
	MimeScanResponse = "application/vnd.scanner.adapter.scan.response+json; version=1.0"
	// MimeError is an ErrorResponse body.
	MimeError = "application/vnd.scanner.adapter.error+json; version=1.0"
)

// PropertyDBUpdatedAt is the metadata property giving the scanner's database date (RFC 3339).
const PropertyDBUpdatedAt = "harbor.scanner-adapter/vulnerability-database-updated-at"

// Scanner names a scanner: name, vendor and version.
type Scanner struct {
	// Name is the scanner's name, e.g. "Trivy".
	Name string `json:"name"`
	// Vendor is the scanner's provider.
	Vendor string `json:"vendor"`
	// Version is the scanner's version.
	Version string `json:"version"`
}

// Capability is a set of artifact types a scanner consumes and the reports it produces.
type Capability struct {
	// Type is "vulnerability" or "sbom"; empty means vulnerability.
	Type string `json:"type,omitempty"`
	// ConsumesMimeTypes are the artifact media types scanned.
	ConsumesMimeTypes []string `json:"consumes_mime_types"`
	// ProducesMimeTypes are the report media types produced.
	ProducesMimeTypes []string `json:"produces_mime_types"`
}

// Metadata is ScannerAdapterMetadata: the answer to GET /metadata.
type Metadata struct {
	// Scanner names the scanner.
	Scanner Scanner `json:"scanner"`
	// Capabilities are what it scans and produces.
	Capabilities []Capability `json:"capabilities"`
	// Properties are free-form; see PropertyDBUpdatedAt.
	Properties map[string]string `json:"properties,omitempty"`
}

// DBUpdatedAt reads the database date property; zero when absent or unreadable.
func (m Metadata) DBUpdatedAt() time.Time {
	t, err := time.Parse(time.RFC3339Nano, m.Properties[PropertyDBUpdatedAt])
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

// Produces reports whether a vulnerability capability produces the report media type mt.
func (m Metadata) Produces(mt string) bool {
	for _, c := range m.Capabilities {
		if c.Type != "" && c.Type != "vulnerability" {
			continue
		}
		for _, p := range c.ProducesMimeTypes {
			if SameMediaType(p, mt) {
				return true
			}
		}
	}
	return false
}

// Registry is where the adapter pulls the artifact from.
type Registry struct {
	// URL is the registry's base URL, e.g. https://core.harbor.domain.
	URL string `json:"url"`
	// Authorization is the Authorization header value to send ("Basic ...", "Bearer ...").
	Authorization string `json:"authorization,omitempty"`
}

// Artifact is the artifact to scan.
type Artifact struct {
	// Repository is the repository name, e.g. library/mongo.
	Repository string `json:"repository"`
	// Digest is the manifest digest.
	Digest string `json:"digest"`
	// Tag is the artifact's tag, informational.
	Tag string `json:"tag,omitempty"`
	// MimeType is the manifest's media type.
	MimeType string `json:"mime_type,omitempty"`
}

// ScanRequest is the body of POST /scan.
type ScanRequest struct {
	// Registry is where to pull from.
	Registry Registry `json:"registry"`
	// Artifact is what to scan.
	Artifact Artifact `json:"artifact"`
}

// ScanResponse is the answer to POST /scan.
type ScanResponse struct {
	// ID identifies the scan for GET /scan/{id}/report.
	ID string `json:"id"`
}

// CVSS is CVSSDetails.
type CVSS struct {
	// ScoreV3 is the CVSS 3 base score.
	ScoreV3 *float64 `json:"score_v3,omitempty"`
	// ScoreV2 is the CVSS 2 score.
	ScoreV2 *float64 `json:"score_v2,omitempty"`
	// VectorV3 is the CVSS 3 vector.
	VectorV3 string `json:"vector_v3,omitempty"`
	// VectorV2 is the CVSS 2 vector.
	VectorV2 string `json:"vector_v2,omitempty"`
}

// Vulnerability is VulnerabilityItem: one vulnerability of one package.
type Vulnerability struct {
	// ID is the vulnerability's identifier, e.g. CVE-2017-8283.
	ID string `json:"id"`
	// Package is the affected package's name.
	Package string `json:"package"`
	// Version is the installed version.
	Version string `json:"version"`
	// FixVersion is the version with the fix; empty when there is none.
	FixVersion string `json:"fix_version,omitempty"`
	// Severity is Unknown, Negligible, Low, Medium, High or Critical.
	Severity string `json:"severity"`
	// Description describes the vulnerability.
	Description string `json:"description,omitempty"`
	// Links point to fuller descriptions.
	Links []string `json:"links,omitempty"`
	// PreferredCVSS is the scanner's preferred CVSS (report 1.1).
	PreferredCVSS *CVSS `json:"preferred_cvss,omitempty"`
	// CweIDs are the weakness identifiers (report 1.1).
	CweIDs []string `json:"cwe_ids,omitempty"`
	// CVSS is the spelling of PreferredCVSS in reports of older adapters (Trivy adapter
	// 0.9 era); read when PreferredCVSS is absent.
	CVSS *CVSS `json:"cvss,omitempty"`
	// VendorAttributes are the scanner's own fields (report 1.1): an object in the spec,
	// a list of key/value objects in some adapters' reports.
	VendorAttributes any `json:"vendor_attributes,omitempty"`
}

// Report is HarborVulnerabilityReport, versions 1.0 and 1.1.
type Report struct {
	// GeneratedAt is when the report was made.
	GeneratedAt time.Time `json:"generated_at"`
	// Artifact is what was scanned.
	Artifact Artifact `json:"artifact"`
	// Scanner is who scanned it.
	Scanner Scanner `json:"scanner"`
	// Severity is the highest severity found.
	Severity string `json:"severity"`
	// Vulnerabilities are the findings.
	Vulnerabilities []Vulnerability `json:"vulnerabilities"`
}

// ErrorResponse is the spec's error body.
type ErrorResponse struct {
	// Error holds the message.
	Error struct {
		// Message says what went wrong.
		Message string `json:"message"`
	} `json:"error"`
}

// SameMediaType compares media types by type and version parameter, ignoring spacing and case.
func SameMediaType(a, b string) bool {
	ta, pa, errA := mime.ParseMediaType(a)
	tb, pb, errB := mime.ParseMediaType(b)
	if errA != nil || errB != nil {
		return strings.EqualFold(strings.TrimSpace(a), strings.TrimSpace(b))
	}
	return ta == tb && pa["version"] == pb["version"]
}
