package policy

import (
	"strings"

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
