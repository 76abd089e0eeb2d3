package ciresult

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/portcullis-dev/portcullis/scan/inventory"
	"github.com/portcullis-dev/portcullis/scan/match"
)

// inTotoVuln is one entry of the in-toto vulns v0.2 result list.
type inTotoVuln struct {
	ID       string `json:"id"`
	Severity []struct {
		Method string `json:"method"`
		Score  string `json:"score"`
	} `json:"severity"`
	Annotations []map[string]any `json:"annotations"`
}

// parseInToto reads the generic result list of in-toto's vulns predicate: an id and
// severities per vulnerability. A score that is a number is a CVSS score, a word a
// severity; the package, its version and the fixed version come from the annotations
// "package", "version" and "fixedVersion" when a scanner writes them.
func parseInToto(data []byte) (report, error) {
	var list []inTotoVuln
	if err := json.Unmarshal(data, &list); err != nil {
		return report{}, fmt.Errorf("in-toto vulns result: %w", err)
	}
	rep := report{tool: ToolInToto}
	for i, v := range list {
		if v.ID == "" {
			return report{}, fmt.Errorf("in-toto vulns result[%d].id: required", i)
		}
		f := match.Finding{ID: v.ID}
		for _, s := range v.Severity {
			if n, err := strconv.ParseFloat(strings.TrimSpace(s.Score), 64); err == nil {
				if n >= 0 && n <= 10 && n > f.CVSS {
					f.CVSS = n
				}
				continue
			}
			if sv := match.ParseSeverity(s.Score); sv > f.Severity {
				f.Severity = sv
			}
		}
		f.Package = inventory.Package{Name: annotation(v.Annotations, "package"), Version: annotation(v.Annotations, "version")}
		f.Fixed = annotation(v.Annotations, "fixedVersion")
		rep.findings = append(rep.findings, finish(f))
	}
	return rep, nil
}

// annotation reads a string annotation from an in-toto annotations list.
func annotation(list []map[string]any, key string) string {
	for _, m := range list {
		if s, ok := m[key].(string); ok {
			return s
		}
	}
	return ""
}
