package ciresult

import (
	"encoding/json"
	"fmt"

	"github.com/portcullis-dev/portcullis/scan/inventory"
	"github.com/portcullis-dev/portcullis/scan/match"
)

// sysdigReport is the part of `sysdig-cli-scanner --output=json` read here.
type sysdigReport struct {
	Scanner struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"scanner"`
	Result struct {
		Metadata struct {
			BaseOS string `json:"baseOs"`
		} `json:"metadata"`
		Packages []struct {
			Type        string `json:"type"`
			Name        string `json:"name"`
			Version     string `json:"version"`
			LayerDigest string `json:"layerDigest"`
			Vulns       []struct {
				Name     string `json:"name"`
				Severity struct {
					Value string `json:"value"`
				} `json:"severity"`
				CVSSScore struct {
					Value struct {
						Score  float64 `json:"score"`
						Vector string  `json:"vector"`
					} `json:"value"`
				} `json:"cvssScore"`
				FixedInVersion string `json:"fixedInVersion"`
			} `json:"vulns"`
		} `json:"packages"`
	} `json:"result"`
}

// sysdigEcosystems maps sysdig's package types to OSV ecosystems (its "os" packages take
// the base OS's).
var sysdigEcosystems = map[string]string{
	"golang": inventory.EcosystemGo, "javascript": inventory.EcosystemNPM, "python": inventory.EcosystemPyPI,
	"java": inventory.EcosystemMaven, "rust": "crates.io",
}

// parseSysdig reads a sysdig-cli-scanner JSON report: every package's vulns, severity
// words as the built-in scanner reads them (Negligible is low), the fixed-in version.
func parseSysdig(data []byte) (report, error) {
	var s sysdigReport
	if err := json.Unmarshal(data, &s); err != nil {
		return report{}, fmt.Errorf("sysdig-cli-scanner report: %w", err)
	}
	rep := report{tool: ToolSysdig, version: s.Scanner.Version}
	osEco := distroEcosystem(s.Result.Metadata.BaseOS)
	for i, p := range s.Result.Packages {
		eco := sysdigEcosystems[p.Type]
		if p.Type == "os" {
			eco = osEco
		}
		for j, v := range p.Vulns {
			if v.Name == "" || p.Name == "" {
				return report{}, fmt.Errorf("sysdig-cli-scanner report: result.packages[%d].vulns[%d]: the package's name and the vuln's name are required", i, j)
			}
			f := match.Finding{
				ID:         v.Name,
				Package:    inventory.Package{Name: p.Name, Version: p.Version, Ecosystem: eco, Layer: p.LayerDigest},
				Severity:   match.ParseSeverity(v.Severity.Value),
				CVSS:       v.CVSSScore.Value.Score,
				CVSSVector: v.CVSSScore.Value.Vector,
				Fixed:      v.FixedInVersion,
			}
			rep.findings = append(rep.findings, finish(f))
		}
	}
	return rep, nil
}
