package ciresult

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/portcullis-dev/portcullis/scan/inventory"
	"github.com/portcullis-dev/portcullis/scan/match"
)

// twistcliReport is the part of `twistcli images scan --details --output-file` JSON (Prisma
// Cloud Compute, formerly Twistlock) read here.
type twistcliReport struct {
	Results []struct {
		Distro          string `json:"distro"`
		Vulnerabilities []struct {
			ID             string  `json:"id"`
			Status         string  `json:"status"`
			CVSS           float64 `json:"cvss"`
			Vector         string  `json:"vector"`
			Description    string  `json:"description"`
			Severity       string  `json:"severity"`
			PackageName    string  `json:"packageName"`
			PackageVersion string  `json:"packageVersion"`
		} `json:"vulnerabilities"`
	} `json:"results"`
	Version string `json:"version"`
}

// TwistcliSeverity maps a Prisma Cloud severity word to a severity: its vendor words
// "important" and "moderate" are high and medium.
func TwistcliSeverity(word string) match.Severity {
	switch strings.ToLower(strings.TrimSpace(word)) {
	case "important":
		return match.SeverityHigh
	case "moderate":
		return match.SeverityMedium
	}
	return match.ParseSeverity(word)
}

// parseTwistcli reads a twistcli images scan --details JSON report: the status "fixed in
// X" (or "fixed in X, Y" for several branches) gives the fix, any other status none; a
// package named "glibc (used in libc6, ...)" is the source package glibc.
func parseTwistcli(data []byte) (report, error) {
	var t twistcliReport
	if err := json.Unmarshal(data, &t); err != nil {
		return report{}, fmt.Errorf("twistcli report: %w", err)
	}
	rep := report{tool: ToolPrisma, version: t.Version}
	for i, r := range t.Results {
		eco := distroEcosystem(r.Distro)
		for j, v := range r.Vulnerabilities {
			if v.ID == "" || v.PackageName == "" {
				return report{}, fmt.Errorf("twistcli report: results[%d].vulnerabilities[%d]: id and packageName are required", i, j)
			}
			name, _, _ := strings.Cut(v.PackageName, " (used in ")
			f := match.Finding{
				ID:         v.ID,
				Package:    inventory.Package{Name: strings.TrimSpace(name), Version: v.PackageVersion, Ecosystem: eco},
				Severity:   TwistcliSeverity(v.Severity),
				CVSS:       v.CVSS,
				CVSSVector: v.Vector,
				Summary:    summary(v.Description),
			}
			if f.CVSS == 0 {
				f.CVSS = vectorScore(v.Vector)
			}
			if fix, ok := strings.CutPrefix(strings.TrimSpace(v.Status), "fixed in "); ok {
				f.Fixed = fix
			}
			rep.findings = append(rep.findings, finish(f))
		}
	}
	return rep, nil
}

// distroEcosystem maps an os-release PRETTY_NAME or "name version" to the OS ecosystem of
// its packages, "" for one the built-in scanner has no ecosystem for.
func distroEcosystem(distro string) string {
	d := strings.ToLower(distro)
	switch {
	case strings.HasPrefix(d, "debian"):
		return inventory.EcosystemDebian
	case strings.HasPrefix(d, "ubuntu"):
		return inventory.EcosystemUbuntu
	case strings.HasPrefix(d, "alpine"):
		return inventory.EcosystemAlpine
	}
	return ""
}
