package policy

import (
	"fmt"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// Tiers a service may declare: how critical it is to the business.
const (
	TierCritical = "critical"
	TierHigh     = "high"
	TierMedium   = "medium"
	TierLow      = "low"
)

var tierNames = []string{TierCritical, TierHigh, TierMedium, TierLow}

// maxContactLen bounds a service's contact text.
const maxContactLen = 200

// maxRepositoryLen bounds a service's repository glob: the longest
// repository name the OCI distribution implementations accept.
const maxRepositoryLen = 255

// Service maps repositories to the team that owns them, as written in the
// policy's services section. No repository belongs to two services: the
// policy refuses services whose repository globs overlap.
type Service struct {
	// Name identifies the service in messages, events and metrics.
	Name string `json:"name"`
	// Repositories are the globs of the service's repositories.
	Repositories []string `json:"repositories"`
	// Team is the owning team.
	Team string `json:"team"`
	// Tier is TierCritical, TierHigh, TierMedium or TierLow; "" when not given.
	Tier string `json:"tier,omitempty"`
	// Contact says whom to contact: a chat channel, an e-mail address, a
	// URL; "" when not given.
	Contact string `json:"contact,omitempty"`
}

// ServiceRef names the service that owns a decision's repository.
type ServiceRef struct {
	// Name is the service's name.
	Name string `json:"name"`
	// Team is the owning team.
	Team string `json:"team"`
	// Tier is the service's tier, "" when not given.
	Tier string `json:"tier,omitempty"`
	// Contact is whom to contact, "" when not given.
	Contact string `json:"contact,omitempty"`
}

// Owned is the sentence that says who owns the service and whom to
// contact: "Owned by team payments (service payments-api, tier critical);
// contact #payments-oncall".
func (s ServiceRef) Owned() string {
	what := "service " + s.Name
	if s.Tier != "" {
		what += ", tier " + s.Tier
	}
	msg := fmt.Sprintf("Owned by team %s (%s)", s.Team, what)
	if s.Contact != "" {
		msg += "; contact " + s.Contact
	}
	return msg
}

// service is a compiled Service.
type service struct {
	Service
	repos []glob
	// set while parsing, for messages
	path      string
	nameNode  *yaml.Node
	repoItems []item
}

// ref is the ServiceRef of s.
func (s *service) ref() *ServiceRef {
	return &ServiceRef{Name: s.Name, Team: s.Team, Tier: s.Tier, Contact: s.Contact}
}

// copy returns s with its slices copied.
func (s *service) copy() Service {
	c := s.Service
	c.Repositories = append([]string(nil), s.Repositories...)
	return c
}

// Services returns a copy of the services, in policy order.
func (p *Policy) Services() []Service {
	out := make([]Service, len(p.services))
	for i := range p.services {
		out[i] = p.services[i].copy()
	}
	return out
}

// ServiceFor returns the service one of whose repository globs matches
// repo (a repository path such as "payments/api"), nil when none does. At
// most one can: the policy refuses overlapping services.
func (p *Policy) ServiceFor(repo string) *Service {
	if s := p.service(repo); s != nil {
		c := s.copy()
		return &c
	}
	return nil
}

// ServiceRefFor is ServiceFor as a ServiceRef, nil when no service owns repo.
func (p *Policy) ServiceRefFor(repo string) *ServiceRef {
	if s := p.service(repo); s != nil {
		return s.ref()
	}
	return nil
}

// service returns the service owning repo or nil.
func (p *Policy) service(repo string) *service {
	for i := range p.services {
		if anyGlob(p.services[i].repos, repo) {
			return &p.services[i]
		}
	}
	return nil
}

// ServicesFor returns the services owning repositories that pattern (a
// repository path, or a glob such as an exception's scope "team-a/**") can
// match, in policy order: at most one for a repository path, possibly
// several for a glob. An invalid pattern matches none.
func (p *Policy) ServicesFor(pattern string) []Service {
	if ValidGlob(pattern) != nil {
		return nil
	}
	var out []Service
	for i := range p.services {
		for _, r := range p.services[i].Repositories {
			if globsOverlap(r, pattern) {
				out = append(out, p.services[i].copy())
				break
			}
		}
	}
	return out
}

// readService reads services[i]. ok is false when n is not a mapping.
func (r *reader) readService(path string, n *yaml.Node) (s service, ok bool) {
	fields, ok := r.mapping(path, n)
	if !ok {
		return s, false
	}
	s.path = path
	byKey := map[string]field{}
	for _, f := range fields {
		byKey[f.key] = f
		switch f.key {
		case "name":
			if v, ok := r.text(f); ok {
				s.Name, s.nameNode = v, f.value
				r.checkName(f.path, f.value, v)
			}
		case "team":
			if v, ok := r.text(f); ok {
				s.Team = v
				r.checkName(f.path, f.value, v)
			}
		case "repositories":
			r.notEmpty(f)
			for _, it := range r.strList(f.path, f.value) {
				if err := ValidGlob(it.value); err != nil {
					r.add(it.path, it.node, "%v", err)
					continue
				}
				if len(it.value) > maxRepositoryLen {
					r.add(it.path, it.node, "longer than %d characters, the longest repository name", maxRepositoryLen)
					continue
				}
				if oneOf(it.value, s.Repositories) {
					r.add(it.path, it.node, "%q is listed twice", it.value)
					continue
				}
				s.Repositories = append(s.Repositories, it.value)
				s.repos = append(s.repos, compileGlob(it.value))
				s.repoItems = append(s.repoItems, it)
			}
		case "tier":
			if v, ok := r.str(f.path, f.value); ok {
				if !oneOf(v, tierNames) {
					r.add(f.path, f.value, "unknown tier %q (want %s)", v, strings.Join(tierNames, ", "))
					continue
				}
				s.Tier = v
			}
		case "contact":
			v, ok := r.text(f)
			switch {
			case !ok:
				r.add(f.path, f.value, "empty: say whom to contact (a chat channel, an e-mail address or a URL), or remove the field")
			case len(v) > maxContactLen || strings.IndexFunc(v, unicode.IsControl) >= 0:
				r.add(f.path, f.value, "want one line of at most %d characters", maxContactLen)
			default:
				s.Contact = v
			}
		default:
			r.add(f.path, f.keyN, "unknown field: services take name, repositories, team, tier and contact (line %d)", f.keyN.Line)
		}
	}
	for _, key := range []string{"name", "repositories", "team"} {
		f, ok := byKey[key]
		switch {
		case !ok:
			r.add(path+"."+key, n, "required")
		case key != "repositories":
			// text fields: null or blank is missing
			if v := r.resolve(f.value); isNull(v) || (v.Kind == yaml.ScalarNode && strings.TrimSpace(v.Value) == "") {
				r.add(f.path, f.value, "required")
			}
		}
	}
	return s, true
}

// validateServices reports duplicate service names and repositories that
// two services claim (overlapping globs), drops the parse-time bookkeeping
// and sets the Services of every exception.
func validateServices(r *reader, p *Policy) {
	names := map[string]string{}
	for i := range p.services {
		s := &p.services[i]
		if s.Name == "" {
			continue
		}
		if first, dup := names[s.Name]; dup {
			r.add(s.path+".name", s.nameNode, "duplicate of %s.name", first)
			continue
		}
		names[s.Name] = s.path
	}
	for j := range p.services {
		b := &p.services[j]
		for _, it := range b.repoItems {
			if a, other := p.overlapping(j, it.value); a != nil {
				r.add(it.path, it.node, "%q overlaps %q of service %s (%s): a repository belongs to one service; make the patterns disjoint",
					it.value, other, a.Name, a.path)
			}
		}
	}
	for i := range p.services {
		p.services[i].nameNode, p.services[i].repoItems = nil, nil
	}
	for i := range p.exceptions {
		e := &p.exceptions[i]
		if e.Scope.Repository == "" {
			continue
		}
		for _, s := range p.ServicesFor(e.Scope.Repository) {
			e.Services = append(e.Services, ServiceRef{Name: s.Name, Team: s.Team, Tier: s.Tier, Contact: s.Contact})
		}
	}
}

// overlapping returns the first service before services[j] with a
// repository glob that overlaps pattern, and that glob; nil when none.
func (p *Policy) overlapping(j int, pattern string) (*service, string) {
	for i := 0; i < j; i++ {
		a := &p.services[i]
		for _, other := range a.Repositories {
			if globsOverlap(other, pattern) {
				return a, other
			}
		}
	}
	return nil, ""
}

// globsOverlap reports whether some repository path matches both valid
// globs a and b (see MatchGlob).
func globsOverlap(a, b string) bool {
	as, bs := strings.Split(a, "/"), strings.Split(b, "/")
	// A repository's first segment is a literal more often than not:
	// different literals cannot overlap.
	if !hasWildcard(as[0]) && !hasWildcard(bs[0]) && as[0] != bs[0] {
		return false
	}
	type state struct{ i, j int }
	seen := map[state]bool{}
	var walk func(i, j int) bool
	walk = func(i, j int) bool {
		st := state{i, j}
		if seen[st] {
			return false
		}
		seen[st] = true
		if i == len(as) && j == len(bs) {
			return true
		}
		// "**" matches no segment ...
		if i < len(as) && as[i] == "**" && walk(i+1, j) {
			return true
		}
		if j < len(bs) && bs[j] == "**" && walk(i, j+1) {
			return true
		}
		if i == len(as) || j == len(bs) {
			return false
		}
		// ... or one more segment, which the other side's segment must match too.
		switch aa, bb := as[i] == "**", bs[j] == "**"; {
		case aa && bb:
			return false // both absorb the segment: nothing new, the skips above cover it
		case aa:
			return walk(i, j+1)
		case bb:
			return walk(i+1, j)
		default:
			return segmentsOverlap(as[i], bs[j]) && walk(i+1, j+1)
		}
	}
	return walk(0, 0)
}

// hasWildcard reports whether a glob segment has '*' or '?'.
func hasWildcard(seg string) bool { return strings.ContainsAny(seg, "*?") }

// segmentsOverlap reports whether some non-empty path segment matches both
// segment patterns a and b ('*' any run of characters, '?' one character,
// anything else itself).
func segmentsOverlap(a, b string) bool {
	ar, br := []rune(a), []rune(b)
	// consumed: at least one character has been read, so the segment is
	// not empty.
	type state struct {
		i, j     int
		consumed bool
	}
	seen := map[state]bool{}
	var walk func(st state) bool
	walk = func(st state) bool {
		if seen[st] {
			return false
		}
		seen[st] = true
		i, j := st.i, st.j
		if i == len(ar) && j == len(br) {
			return st.consumed
		}
		// '*' matches nothing.
		if i < len(ar) && ar[i] == '*' && walk(state{i + 1, j, st.consumed}) {
			return true
		}
		if j < len(br) && br[j] == '*' && walk(state{i, j + 1, st.consumed}) {
			return true
		}
		if i == len(ar) || j == len(br) {
			return false
		}
		// Both read one character.
		ca, cb := ar[i], br[j]
		if ca != '*' && ca != '?' && cb != '*' && cb != '?' && ca != cb {
			return false
		}
		next := state{i + 1, j + 1, true}
		if ca == '*' {
			next.i = i
		}
		if cb == '*' {
			next.j = j
		}
		return walk(next)
	}
	return walk(state{})
}
