package policy

import (
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// readEnvironment reads environments[i]. ok is false when n is not a
// mapping.
func (r *reader) readEnvironment(path string, n *yaml.Node) (e environment, ok bool) {
	fields, ok := r.mapping(path, n)
	if !ok {
		return e, false
	}
	e.path = path
	e.FailMode = FailClosed
	var nameSeen bool
	selectors := 0
	for _, f := range fields {
		switch f.key {
		case "name":
			e.Name, nameSeen = r.str(f.path, f.value)
			e.nameNode = f.value
			if nameSeen {
				r.checkName(f.path, f.value, e.Name)
				if e.Name == DefaultEnvironment {
					r.add(f.path, f.value, "%q is reserved for images that match no environment", DefaultEnvironment)
				}
			}
		case "repositories":
			for _, it := range r.strList(f.path, f.value) {
				if err := ValidGlob(it.value); err != nil {
					r.add(it.path, it.node, "%v", err)
					continue
				}
				e.Repositories = append(e.Repositories, it.value)
				e.repos = append(e.repos, compileGlob(it.value))
			}
			selectors++
			r.notEmpty(f)
		case "hosts":
			for _, it := range r.strList(f.path, f.value) {
				h, err := hostPattern(it.value)
				if err != "" {
					r.add(it.path, it.node, "invalid host %q: %s", it.value, err)
					continue
				}
				e.Hosts = append(e.Hosts, it.value)
				e.hosts = append(e.hosts, h)
			}
			selectors++
			r.notEmpty(f)
		case "failMode":
			if s, ok := r.str(f.path, f.value); ok {
				if s != FailClosed && s != FailOpen {
					r.add(f.path, f.value, "unknown fail mode %q (want closed or open)", s)
				}
				e.FailMode = s
			}
		case "platforms":
			r.readPlatforms(&e, f)
		case "unscanned":
			e.Unscanned = r.readUnscanned(f)
		case "ciScans":
			r.readCIScans(&e, f)
		case "scanner":
			if v := r.resolve(f.value); v != nil && v.Kind == yaml.SequenceNode {
				e.Scanner = r.readScannerList(f)
			} else if s, ok := r.str(f.path, f.value); ok {
				if !validScannerName(s) {
					r.add(f.path, f.value, "invalid scanner %q (want builtin, both, or an adapter name: lower-case letters, digits and -)", s)
				}
				e.Scanner = s
			}
		default:
			r.unknown(f)
		}
	}
	if !nameSeen {
		r.add(path+".name", n, "required")
	}
	if selectors == 0 {
		r.add(path, n, "needs repositories or hosts (or both) to select images")
	}
	return e, true
}

// hostPattern validates a host pattern and returns it normalised (lower
// case, without IPv6 brackets); msg is non-empty when it is invalid.
func hostPattern(s string) (pattern, msg string) {
	if s == "" {
		return "", "empty"
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		s = s[1 : len(s)-1]
	} else if strings.Contains(s, ":") {
		return "", "hosts are matched without a port; remove the port"
	}
	if strings.Contains(s, "**") {
		return "", `"**" is not allowed in a host (use "*")`
	}
	for _, c := range s {
		if c == '/' || c <= ' ' || c == 0x7f {
			return "", "want a host name such as registry.example or *.example"
		}
	}
	return strings.ToLower(strings.TrimSuffix(s, ".")), ""
}

// maxUnscannedWait bounds how long a pull may be held waiting for a scan.
const maxUnscannedWait = 5 * time.Minute

// readUnscanned reads an environment's unscanned: {wait: 20s, then: retry|allow}.
func (r *reader) readUnscanned(f field) *Unscanned {
	fields, ok := r.mapping(f.path, f.value)
	if !ok {
		return nil
	}
	u := &Unscanned{}
	waitSeen := false
	for _, g := range fields {
		switch g.key {
		case "wait":
			s, ok := r.str(g.path, g.value)
			if !ok {
				continue
			}
			d, err := time.ParseDuration(s)
			switch {
			case err != nil:
				r.add(g.path, g.value, "%q is not a duration (want e.g. 20s, 1m or 0s)", s)
			case d < 0 || d > maxUnscannedWait:
				r.add(g.path, g.value, "%s is out of range (want 0s to %s)", s, maxUnscannedWait)
			default:
				u.Wait, waitSeen = d, true
			}
		case "then":
			if s, ok := r.str(g.path, g.value); ok {
				if s != UnscannedRetry && s != UnscannedAllow {
					r.add(g.path, g.value, "unknown value %q (want retry or allow)", s)
				}
				u.Then = s
			}
		default:
			r.unknown(g)
		}
	}
	if !waitSeen {
		r.add(f.path+".wait", f.value, "required: how long a pull waits for the scan (0s answers at once)")
	}
	return u
}

// validScannerName reports whether s can name an environment's scanner: builtin, both, or
// an adapter name of lower-case letters, digits and '-', starting with a letter.
func validScannerName(s string) bool {
	if s == "" || len(s) > 63 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// readScannerList reads a list of scanners (builtin and adapter names, each once; "both"
// is for the string form) into the canonical choice: the names joined by commas.
func (r *reader) readScannerList(f field) string {
	items := r.strList(f.path, f.value)
	if len(items) == 0 {
		r.add(f.path, f.value, "name at least one scanner")
		return ""
	}
	seen := map[string]bool{}
	names := make([]string, 0, len(items))
	for _, it := range items {
		switch {
		case it.value == ScannerBoth:
			r.add(it.path, it.node, `"both" is the string form; list builtin and the adapters instead`)
		case !validScannerName(it.value):
			r.add(it.path, it.node, "invalid scanner %q (want builtin or an adapter name: lower-case letters, digits and -)", it.value)
		case seen[it.value]:
			r.add(it.path, it.node, "scanner %q listed twice", it.value)
		}
		seen[it.value] = true
		names = append(names, it.value)
	}
	return strings.Join(names, ",")
}
