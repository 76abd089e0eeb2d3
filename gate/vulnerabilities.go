package gate

import (
	"context"
	"strings"

	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/scan/inventory"
)

// VulnerabilityScanner scans an image for the vulnerability rules.
type VulnerabilityScanner interface {
	Scan(ctx context.Context, repo, digest string, manifest []byte) (Report, error)
}

// WithScanner sets how the gate scans images for vulnerability rules; without it those
// rules find no evidence and the environment's fail mode applies.
func WithScanner(s VulnerabilityScanner) Option { return func(g *Gate) { g.scanner = s } }

// vulnerabilityEvidence scans repo@digest (reading the manifest for a HEAD).
func (g *Gate) vulnerabilityEvidence(ctx context.Context, repo, digest string, manifest []byte) (*policy.VulnerabilityEvidence, error) {
	if g.scanner == nil {
		return nil, errString("this gateway has no vulnerability scanner configured")
	}
	if len(manifest) == 0 {
		if g.blobs == nil {
			return nil, errString("this gateway reads no manifests (no image reader configured)")
		}
		var err error
		if manifest, _, err = g.blobs.Manifest(ctx, repo, digest); err != nil {
			return nil, err
		}
	}
	rep, err := g.scanner.Scan(ctx, repo, digest, manifest)
	if err != nil {
		return nil, err
	}
	ev := &policy.VulnerabilityEvidence{Index: rep.Index, DBRevision: rep.DBRevision, Incomplete: rep.Incomplete,
		IncompleteReason: strings.Join(rep.Reasons, "; "), Unchecked: rep.Unchecked}
	for _, f := range rep.Findings {
		ev.Findings = append(ev.Findings, policy.VulnerabilityFinding{
			ID: f.ID, Aliases: f.Aliases, Package: f.Package.Name, Ecosystem: f.Ecosystem, Version: f.Package.Version,
			Fixed: f.Fixed, Fixable: f.Fixable, Severity: strings.ToLower(f.Severity.String()), CVSS: f.CVSS,
			Layer: f.Package.Layer, OS: isOSEcosystem(f.Package.Ecosystem), Summary: f.Summary,
		})
	}
	return ev, nil
}

// isOSEcosystem reports whether packages of ecosystem come with the operating system.
func isOSEcosystem(ecosystem string) bool {
	switch ecosystem {
	case inventory.EcosystemDebian, inventory.EcosystemUbuntu, inventory.EcosystemAlpine:
		return true
	}
	return false
}
