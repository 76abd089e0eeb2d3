package gate

import (
	"slices"
	"strings"

	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/scan/match"
)

// scannerFindings are one scanner's findings ("builtin" or the adapter's name).
type scannerFindings struct {
	name     string
	findings []match.Finding
}

// vulnGroup is one vulnerability of one package as the scanners report it: findings
// are the same vulnerability when they name the same package (case aside) and share an
// id or alias (Trivy names a CVE, the built-in scanner the ecosystem's advisory with the
// CVE among its aliases).
type vulnGroup struct {
	pkg string
	ids map[string]bool
	by  map[string]match.Finding // first finding of each scanner
	id  string                   // the first reporter's id
}

// disagreements compares the findings of two scanners or more: a vulnerability one of
// them misses, or reports with another fixed version or severity, is a disagreement.
func disagreements(sets []scannerFindings) []policy.Disagreement {
	if len(sets) < 2 {
		return nil
	}
	var groups []*vulnGroup
	for _, set := range sets {
		for _, f := range set.findings {
			ids := append([]string{f.ID}, f.Aliases...)
			pkg := strings.ToLower(f.Package.Name)
			var g *vulnGroup
			for _, c := range groups {
				if c.pkg == pkg && slices.ContainsFunc(ids, func(id string) bool { return c.ids[strings.ToUpper(id)] }) {
					g = c
					break
				}
			}
			if g == nil {
				g = &vulnGroup{pkg: pkg, ids: map[string]bool{}, by: map[string]match.Finding{}, id: f.ID}
				groups = append(groups, g)
			}
			for _, id := range ids {
				g.ids[strings.ToUpper(id)] = true
			}
			if _, ok := g.by[set.name]; !ok {
				g.by[set.name] = f
			}
		}
	}
	var out []policy.Disagreement
	for _, g := range groups {
		d := policy.Disagreement{ID: sharedID(g, sets), Package: g.by[firstReporter(g, sets)].Package.Name}
		fixed, severity := map[string]bool{}, map[string]bool{}
		for _, set := range sets {
			f, ok := g.by[set.name]
			if !ok {
				d.MissingFrom = append(d.MissingFrom, set.name)
				continue
			}
			sev := strings.ToLower(f.Severity.String())
			d.Reports = append(d.Reports, policy.ScannerReport{Scanner: set.name, ID: f.ID, Version: f.Package.Version, Fixed: f.Fixed, Severity: sev})
			fixed[f.Fixed], severity[sev] = true, true
		}
		if len(d.MissingFrom) > 0 {
			d.On = append(d.On, "missing")
		}
		if len(fixed) > 1 {
			d.On = append(d.On, "fixed")
		}
		if len(severity) > 1 {
			d.On = append(d.On, "severity")
		}
		if len(d.On) > 0 {
			out = append(out, d)
		}
	}
	return out
}

// firstReporter is the first scanner of sets that reports g.
func firstReporter(g *vulnGroup, sets []scannerFindings) string {
	for _, s := range sets {
		if _, ok := g.by[s.name]; ok {
			return s.name
		}
	}
	return ""
}

// sharedID is an id every reporter of g gives (as its id or an alias), preferring a CVE,
// else the first reporter's id.
func sharedID(g *vulnGroup, sets []scannerFindings) string {
	var shared []string
	for id := range g.ids {
		all := true
		for _, s := range sets {
			f, ok := g.by[s.name]
			if ok && !slices.ContainsFunc(append([]string{f.ID}, f.Aliases...), func(x string) bool { return strings.EqualFold(x, id) }) {
				all = false
				break
			}
		}
		if all {
			shared = append(shared, id)
		}
	}
	slices.Sort(shared)
	for _, id := range shared {
		if strings.HasPrefix(id, "CVE-") {
			return id
		}
	}
	if len(shared) > 0 {
		return shared[0]
	}
	return g.id
}
