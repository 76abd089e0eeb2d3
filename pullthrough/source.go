package pullthrough

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/portcullis-dev/portcullis/mirror"
	"github.com/portcullis-dev/portcullis/policy"
)

// Source is one registry mirrored on demand.
type Source struct {
	// Registry is the source's name as clients know it (docker.io) and as containerd sends
	// it in the ns query parameter.
	Registry string
	// Endpoint is the source's base URL, http(s)://host[:port].
	Endpoint string
	// Prefix is the first part of on-prem names ("" means mirror, "-" none), as in the
	// mirror file (mirror.Target.Prefix).
	Prefix string
	// Auth is the gateway's identity at the source; nil means anonymous.
	Auth authn.Authenticator
	// Repositories are globs of the source repositories that may be fetched.
	Repositories []string
	// RequestsPerMinute bounds the requests this replica sends to the source; 0 means none.
	RequestsPerMinute int
	// MinRemainingPulls stops fetching while the source's ratelimit-remaining header
	// reports fewer pulls left; 0 means no floor.
	MinRemainingPulls int
	// Freshness is how long a tag is served before the source is asked whether it moved.
	Freshness time.Duration
}

// source is a Source ready for use.
type source struct {
	Source
	// namespace is the on-prem namespace the source maps under (mirror/docker.io).
	namespace string
	// host is the endpoint's host[:port], insecure when it speaks plain HTTP.
	host     string
	insecure bool
	budget   *budget
	// allowed memoises allows per path (the globs are matched once per repository), for
	// at most maxAllowedMemo paths: clients choose the names.
	allowed  sync.Map
	memoised atomic.Int64
}

// maxAllowedMemo bounds the paths a source remembers the globs' answer for.
const maxAllowedMemo = 10000

func newSource(s Source) (*source, error) {
	u, err := url.Parse(s.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("source %s: endpoint %q: want http(s)://host[:port]", s.Registry, s.Endpoint)
	}
	reg := strings.ToLower(s.Registry)
	if mirror.IsDockerHub(reg) {
		reg = "docker.io"
	}
	s.Registry = reg
	if s.Freshness <= 0 {
		s.Freshness = 10 * time.Minute
	}
	f := mirror.File{Target: mirror.Target{Prefix: s.Prefix}}
	return &source{
		Source:    s,
		namespace: f.MappedRegistry(mirror.Source{Registry: reg}),
		host:      u.Host,
		insecure:  u.Scheme == "http",
		budget:    newBudget(s.RequestsPerMinute, s.MinRemainingPulls),
	}, nil
}

// allows reports whether path (library/nginx) may be fetched from the source.
func (s *source) allows(path string) bool {
	if v, ok := s.allowed.Load(path); ok {
		return v.(bool)
	}
	ok := false
	for _, g := range s.Repositories {
		if policy.MatchGlob(g, path) {
			ok = true
			break
		}
	}
	if s.memoised.Add(1) <= maxAllowedMemo {
		s.allowed.Store(path, ok)
	}
	return ok
}

// sourcePath is the source's repository path for a name a client sent with ns: Docker
// Hub's single-component names are under library/, as the mirror file maps them.
func (s *source) sourcePath(name string) string {
	return mirror.SourcePath(mirror.Source{Registry: s.Registry}, mirror.Repository{Name: name})
}

// sources finds the source of an on-prem name or an ns value.
type sources struct {
	// byNamespace is sorted longest namespace first, so a nested one wins.
	byNamespace []*source
	byRegistry  map[string]*source
}

func newSources(list []Source) (*sources, error) {
	out := &sources{byRegistry: map[string]*source{}}
	for _, s := range list {
		src, err := newSource(s)
		if err != nil {
			return nil, err
		}
		if _, dup := out.byRegistry[src.Registry]; dup {
			return nil, fmt.Errorf("source %s given twice", src.Registry)
		}
		out.byRegistry[src.Registry] = src
		out.byNamespace = append(out.byNamespace, src)
	}
	sort.SliceStable(out.byNamespace, func(i, j int) bool {
		return len(out.byNamespace[i].namespace) > len(out.byNamespace[j].namespace)
	})
	return out, nil
}

// resolve splits an on-prem repository name into its source and the source's path.
func (ss *sources) resolve(repo string) (*source, string, bool) {
	for _, s := range ss.byNamespace {
		if rest, ok := strings.CutPrefix(repo, s.namespace+"/"); ok && rest != "" {
			return s, rest, true
		}
	}
	return nil, "", false
}

// forNS is the source containerd names in ?ns=, or nil.
func (ss *sources) forNS(ns string) *source {
	ns = strings.ToLower(ns)
	if mirror.IsDockerHub(ns) {
		ns = "docker.io"
	}
	return ss.byRegistry[ns]
}
