package policy

import (
	"strconv"
	"strings"
	"time"
)

// Predicate types of signed CI vulnerability scans the gateway reads (CIScans.PredicateTypes).
const (
	// PredicateCosignVuln is cosign's vulnerability attestation (`cosign attest --type vuln`).
	PredicateCosignVuln = "https://cosign.sigstore.dev/attestation/vuln/v1"
	// PredicateCosignVulnBare is the same type spelt without its scheme.
	PredicateCosignVulnBare = "cosign.sigstore.dev/attestation/vuln/v1"
	// PredicateInTotoVulns is in-toto's vulnerabilities predicate, version 0.2.
	PredicateInTotoVulns = "https://in-toto.io/attestation/vulns/v0.2"
)

// DefaultCIScanMaxAge is how old a CI scan (its scanFinishedOn, and its database date
// when the result gives one) may be when the policy does not say.
const DefaultCIScanMaxAge = 7 * 24 * time.Hour

// maxCIScanMaxAge bounds maxAge: a scan older than this says little about today.
const maxCIScanMaxAge = 90 * 24 * time.Hour

// CIScans says when an environment takes a vulnerability scan made in CI, attached to the
// image as a signed attestation, as its scan evidence instead of scanning the image itself.
type CIScans struct {
	// Authorities name the policy authorities (keyed or keyless) that sign CI's scan
	// attestations; one must have signed it.
	Authorities []string `json:"authorities"`
	// PredicateTypes are the attestation predicate types taken; default: both spellings of
	// cosign's vuln predicate and in-toto's vulns v0.2.
	PredicateTypes []string `json:"predicateTypes"`
	// MaxAge is how old the scan (scanFinishedOn) and its vulnerability database (when the
	// result dates it) may be; default DefaultCIScanMaxAge.
	MaxAge time.Duration `json:"maxAge"`
	// Trusted are the authorities named, resolved.
	Trusted []Authority `json:"-"`
}

// CIScans returns the named environment's ciScans, nil when it takes no CI scan.
func (p *Policy) CIScans(env string) *CIScans {
	for i := range p.envs {
		if p.envs[i].Name == env && p.envs[i].CIScans != nil {
			c := *p.envs[i].CIScans
			c.Authorities = append([]string(nil), c.Authorities...)
			c.PredicateTypes = append([]string(nil), c.PredicateTypes...)
			c.Trusted = append([]Authority(nil), c.Trusted...)
			return &c
		}
	}
	return nil
}

// ciScanKeys are the fields of an environment's ciScans.
const ciScanKeys = "authorities, predicateTypes and maxAge"

// readCIScans reads an environment's ciScans; the authority names are resolved by
// validateReferences.
func (r *reader) readCIScans(e *environment, f field) {
	fields, ok := r.mapping(f.path, f.value)
	if !ok {
		return
	}
	c := &CIScans{MaxAge: DefaultCIScanMaxAge}
	authSeen := false
	for _, g := range fields {
		switch g.key {
		case "authorities":
			authSeen = true
			r.notEmpty(g)
			for _, it := range r.strList(g.path, g.value) {
				if oneOf(it.value, c.Authorities) {
					r.add(it.path, it.node, "%q is listed twice", it.value)
					continue
				}
				c.Authorities = append(c.Authorities, it.value)
				e.ciAuthItems = append(e.ciAuthItems, it)
			}
		case "predicateTypes":
			r.notEmpty(g)
			c.PredicateTypes = []string{}
			for _, it := range r.strList(g.path, g.value) {
				switch {
				case !oneOf(it.value, []string{PredicateCosignVuln, PredicateCosignVulnBare, PredicateInTotoVulns}):
					r.add(it.path, it.node, "predicate type %q is not a vulnerability scan predicate the gateway reads (want %s, %s or %s)", it.value, PredicateCosignVuln, PredicateCosignVulnBare, PredicateInTotoVulns)
				case oneOf(it.value, c.PredicateTypes):
					r.add(it.path, it.node, "%q is listed twice", it.value)
				default:
					c.PredicateTypes = append(c.PredicateTypes, it.value)
				}
			}
		case "maxAge":
			s, ok := r.str(g.path, g.value)
			if !ok {
				continue
			}
			d, err := parseAge(s)
			switch {
			case err != "":
				r.add(g.path, g.value, "%q is not a duration (%s)", s, err)
			case d <= 0 || d > maxCIScanMaxAge:
				r.add(g.path, g.value, "%s is out of range (want more than 0 and at most 90d)", s)
			default:
				c.MaxAge = d
			}
		default:
			r.add(g.path, g.keyN, "unknown field: ciScans takes %s (line %d)", ciScanKeys, g.keyN.Line)
		}
	}
	if !authSeen {
		r.add(f.path+".authorities", f.value, "required: the authorities that sign CI's scan attestations")
	}
	if c.PredicateTypes == nil {
		c.PredicateTypes = []string{PredicateCosignVuln, PredicateCosignVulnBare, PredicateInTotoVulns}
	}
	e.CIScans = c
}

// parseAge reads a duration as days ("7d") or as Go writes durations ("36h", "90m"); msg
// says what is wrong.
func parseAge(s string) (time.Duration, string) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, "want whole days such as 7d, or hours such as 36h"
		}
		if n > 3650 {
			return 0, "too long"
		}
		return time.Duration(n) * 24 * time.Hour, ""
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, "want whole days such as 7d, or hours such as 36h"
	}
	return d, ""
}
