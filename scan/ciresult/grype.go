package ciresult

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/portcullis-dev/portcullis/scan/inventory"
	"github.com/portcullis-dev/portcullis/scan/match"
)

// grypeReport is the part of `grype -o json` read here.
type grypeReport struct {
	Matches []struct {
		Vulnerability struct {
			ID          string `json:"id"`
			Severity    string `json:"severity"`
			Description string `json:"description"`
			CVSS        []struct {
				Version string `json:"version"`
				Vector  string `json:"vector"`
				Metrics struct {
					BaseScore float64 `json:"baseScore"`
				} `json:"metrics"`
			} `json:"cvss"`
			Fix struct {
				Versions []string `json:"versions"`
				State    string   `json:"state"`
			} `json:"fix"`
		} `json:"vulnerability"`
		RelatedVulnerabilities []struct {
			ID string `json:"id"`
		} `json:"relatedVulnerabilities"`
		Artifact struct {
			Name    string `json:"name"`
			Version string `json:"version"`
			Type    string `json:"type"`
		} `json:"artifact"`
	} `json:"matches"`
	Descriptor struct {
		Name    string          `json:"name"`
		Version string          `json:"version"`
		DB      json.RawMessage `json:"db"`
	} `json:"descriptor"`
}

// grypeEcosystems maps Grype's package types to OSV ecosystems.
var grypeEcosystems = map[string]string{
	"apk": inventory.EcosystemAlpine, "deb": inventory.EcosystemDebian, "go-module": inventory.EcosystemGo,
	"npm": inventory.EcosystemNPM, "python": inventory.EcosystemPyPI, "java-archive": inventory.EcosystemMaven,
	"rust-crate": "crates.io",
}

// parseGrype reads a Grype JSON report: each match's vulnerability, its related
// vulnerabilities as aliases, the highest CVSS 3 or 4 base score, the fix versions Grype
// lists (none when its fix state is not "fixed"), and the database's build date from the
// descriptor (db.built, or db.status.built in Grype's newer output).
func parseGrype(data []byte) (report, error) {
	var g grypeReport
	if err := json.Unmarshal(data, &g); err != nil {
		return report{}, fmt.Errorf("grype report: %w", err)
	}
	rep := report{tool: ToolGrype, version: g.Descriptor.Version}
	if rep.version == "[not provided]" {
		rep.version = ""
	}
	if len(g.Descriptor.DB) > 0 && g.Descriptor.DB[0] == '{' {
		var db struct {
			Built  string `json:"built"`
			Status struct {
				Built string `json:"built"`
			} `json:"status"`
		}
		if json.Unmarshal(g.Descriptor.DB, &db) == nil {
			b, err := parseTime(firstNonEmpty(db.Status.Built, db.Built))
			if err != nil {
				return report{}, fmt.Errorf("grype report: descriptor.db built: %w", err)
			}
			rep.dbUpdated = b
		}
	}
	for i, m := range g.Matches {
		v := m.Vulnerability
		if v.ID == "" || m.Artifact.Name == "" {
			return report{}, fmt.Errorf("grype report: matches[%d]: vulnerability.id and artifact.name are required", i)
		}
		f := match.Finding{
			ID:       v.ID,
			Package:  inventory.Package{Name: m.Artifact.Name, Version: m.Artifact.Version, Ecosystem: grypeEcosystems[m.Artifact.Type]},
			Severity: match.ParseSeverity(v.Severity),
			Summary:  summary(v.Description),
		}
		for _, r := range m.RelatedVulnerabilities {
			if r.ID != "" && r.ID != v.ID {
				f.Aliases = append(f.Aliases, r.ID)
			}
		}
		for _, c := range v.CVSS {
			score := c.Metrics.BaseScore
			if score == 0 {
				score = vectorScore(c.Vector)
			}
			if score > f.CVSS {
				f.CVSS, f.CVSSVector = score, c.Vector
			}
		}
		if strings.EqualFold(v.Fix.State, "fixed") {
			f.Fixed = strings.Join(v.Fix.Versions, ", ")
		}
		rep.findings = append(rep.findings, finish(f))
	}
	return rep, nil
}
