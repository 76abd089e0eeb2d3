package ciresult

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/portcullis-dev/portcullis/scan/inventory"
	"github.com/portcullis-dev/portcullis/scan/match"
)

// trivyReport is the part of `trivy image --format json` read here.
type trivyReport struct {
	Trivy struct {
		Version string `json:"Version"`
	} `json:"Trivy"`
	Results []struct {
		Target          string `json:"Target"`
		Class           string `json:"Class"`
		Type            string `json:"Type"`
		Vulnerabilities []struct {
			VulnerabilityID  string `json:"VulnerabilityID"`
			PkgName          string `json:"PkgName"`
			InstalledVersion string `json:"InstalledVersion"`
			FixedVersion     string `json:"FixedVersion"`
			Layer            struct {
				DiffID string `json:"DiffID"`
			} `json:"Layer"`
			SeveritySource string `json:"SeveritySource"`
			Title          string `json:"Title"`
			Description    string `json:"Description"`
			Severity       string `json:"Severity"`
			CVSS           map[string]struct {
				V3Vector  string  `json:"V3Vector"`
				V3Score   float64 `json:"V3Score"`
				V40Vector string  `json:"V40Vector"`
				V40Score  float64 `json:"V40Score"`
			} `json:"CVSS"`
		} `json:"Vulnerabilities"`
	} `json:"Results"`
}

// trivyEcosystems maps Trivy's result types to OSV ecosystems.
var trivyEcosystems = map[string]string{
	"alpine": inventory.EcosystemAlpine, "debian": inventory.EcosystemDebian, "ubuntu": inventory.EcosystemUbuntu,
	"gobinary": inventory.EcosystemGo, "gomod": inventory.EcosystemGo,
	"npm": inventory.EcosystemNPM, "node-pkg": inventory.EcosystemNPM, "yarn": inventory.EcosystemNPM, "pnpm": inventory.EcosystemNPM,
	"pip": inventory.EcosystemPyPI, "pipenv": inventory.EcosystemPyPI, "poetry": inventory.EcosystemPyPI, "python-pkg": inventory.EcosystemPyPI,
	"jar": inventory.EcosystemMaven, "pom": inventory.EcosystemMaven, "gradle": inventory.EcosystemMaven,
	"cargo": "crates.io", "rust-binary": "crates.io",
}

// parseTrivy reads a Trivy JSON report: each result's vulnerabilities, the CVSS score of
// the severity's source (else NVD's, else the highest), the fixed version as Trivy gives it.
func parseTrivy(data []byte) (report, error) {
	var t trivyReport
	if err := json.Unmarshal(data, &t); err != nil {
		return report{}, fmt.Errorf("trivy report: %w", err)
	}
	rep := report{tool: ToolTrivy, version: t.Trivy.Version}
	for i, r := range t.Results {
		eco := trivyEcosystems[strings.ToLower(r.Type)]
		for j, v := range r.Vulnerabilities {
			if v.VulnerabilityID == "" || v.PkgName == "" {
				return report{}, fmt.Errorf("trivy report: Results[%d].Vulnerabilities[%d]: VulnerabilityID and PkgName are required", i, j)
			}
			f := match.Finding{
				ID:       v.VulnerabilityID,
				Package:  inventory.Package{Name: v.PkgName, Version: v.InstalledVersion, Ecosystem: eco, Layer: v.Layer.DiffID},
				Severity: match.ParseSeverity(v.Severity),
				Fixed:    v.FixedVersion,
				Summary:  summary(firstNonEmpty(v.Title, v.Description)),
			}
			sources := make([]string, 0, len(v.CVSS))
			for s := range v.CVSS {
				sources = append(sources, s)
			}
			slices.Sort(sources)
			pick := func(src string) bool {
				c, ok := v.CVSS[src]
				if !ok {
					return false
				}
				switch {
				case c.V3Score > 0:
					f.CVSS, f.CVSSVector = c.V3Score, c.V3Vector
				case c.V40Score > 0:
					f.CVSS, f.CVSSVector = c.V40Score, c.V40Vector
				case c.V3Vector != "":
					f.CVSS, f.CVSSVector = vectorScore(c.V3Vector), c.V3Vector
				default:
					return false
				}
				return true
			}
			if !pick(v.SeveritySource) && !pick("nvd") {
				for _, s := range sources {
					if c := v.CVSS[s]; max(c.V3Score, c.V40Score) > f.CVSS {
						pick(s)
					}
				}
			}
			rep.findings = append(rep.findings, finish(f))
		}
	}
	return rep, nil
}

// firstNonEmpty returns the first of ss that is not "".
func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if strings.TrimSpace(s) != "" {
			return s
		}
	}
	return ""
}
