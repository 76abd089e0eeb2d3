package main

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/config"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/mirror"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/proxy"
	"github.com/portcullis-dev/portcullis/pullthrough"
)

// mirrorJudge is the gate's decision on the digest a moved public tag now points at: a
// query (audited as such), since nothing is served yet.
type mirrorJudge struct{ g *gate.Gate }

func (j mirrorJudge) Judge(ctx context.Context, repo, digest, host string, manifest []byte) pullthrough.Verdict {
	res := j.g.Query(ctx, gate.Request{Action: policy.ActionPull, Host: host, Repository: repo, Reference: digest, Digest: digest, Manifest: manifest})
	return pullthrough.Verdict{Allowed: res.Verdict != policy.VerdictDeny, Pending: res.Unavailable, Message: res.Message}
}

// gateAudit writes the fetcher's events to the gate's audit sink.
type gateAudit struct{ g *gate.Gate }

func (a gateAudit) Record(ctx context.Context, e audit.Event) error { return a.g.AuditEvent(ctx, e) }

// newPullThrough builds the pull-through fetcher of cfg.Mirrors (nil when there are none).
// moved is called when a mirrored tag moved on-prem (the proxy forgets its tag memos).
func newPullThrough(cfg config.Config, upstreamURL string, upstreamRT http.RoundTripper, sa proxy.ServiceAccount, locker cache.Locker, g *gate.Gate, moved func(ctx context.Context, repo, tag string), log *slog.Logger) (*pullthrough.Fetcher, error) {
	if len(cfg.Mirrors) == 0 {
		return nil, nil
	}
	authorities := map[string]bool{}
	for _, a := range g.Policy().Authorities() {
		authorities[a.Name] = true
	}
	// An authority a mirror names but no signature rule requires would protect nothing:
	// the gateway refuses to start rather than let it look enforced.
	required := map[string]bool{}
	for _, r := range g.Policy().Rules() {
		if r.Type == policy.TypeSignature {
			for _, a := range r.Authorities {
				required[a] = true
			}
		}
	}
	var srcs []pullthrough.Source
	for i, m := range cfg.Mirrors {
		for j, a := range m.Authorities {
			if !authorities[a] {
				return nil, fmt.Errorf("mirrors[%d].authorities[%d]: the policy has no authority %q (policy authorities: %s)", i, j, a, strings.Join(slices.Sorted(maps.Keys(authorities)), ", "))
			}
			if !required[a] {
				return nil, fmt.Errorf("mirrors[%d].authorities[%d]: no signature rule of the policy names authority %q, so nothing would require it; add a signature rule on %s/** naming it (docs/PULLTHROUGH.md)", i, j, a,
					(&mirror.File{Target: mirror.Target{Prefix: m.Prefix}}).MappedRegistry(mirror.Source{Registry: m.Registry}))
			}
		}
		auth, err := mirrorAuth(m.Credentials, fmt.Sprintf("mirrors[%d].credentials", i))
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, pullthrough.Source{
			Registry: m.Registry, Endpoint: m.SourceURL(), Prefix: m.Prefix, Auth: auth,
			Repositories: m.Repositories, RequestsPerMinute: m.RateLimit.RequestsPerMinute,
			MinRemainingPulls: m.RateLimit.MinRemainingPulls, Freshness: m.Freshness(),
		})
	}
	sources, err := proxy.NewTransport(proxy.TransportOptions{Timeout: cfg.Upstream.Timeout.Std(), MaxIdleConnsPerHost: 16})
	if err != nil {
		return nil, err
	}
	f, err := pullthrough.New(upstreamURL, upstreamRT, locker, srcs,
		pullthrough.WithUpstreamAuth(sa.Username, sa.Password),
		pullthrough.WithSourceTransport(sources),
		pullthrough.WithJudge(mirrorJudge{g}),
		pullthrough.WithRecorder(gateAudit{g}),
		pullthrough.WithPullWait(g.PullWait),
		pullthrough.WithTagMoved(moved),
		pullthrough.WithLogger(log))
	if err != nil {
		return nil, err
	}
	for _, m := range cfg.Mirrors {
		log.Info("pull-through mirror", slog.String("registry", m.Registry), slog.String("endpoint", m.SourceURL()),
			slog.Any("repositories", m.Repositories), slog.Int("requests_per_minute_per_replica", m.RateLimit.RequestsPerMinute))
	}
	return f, nil
}

// mirrorAuth reads a source's credentials from the environment or a file.
func mirrorAuth(c config.MirrorCredentials, path string) (authn.Authenticator, error) {
	user := c.Username
	if c.UsernameEnv != "" {
		if user = os.Getenv(c.UsernameEnv); user == "" {
			return nil, fmt.Errorf("%s.usernameEnv: %s is not set", path, c.UsernameEnv)
		}
	}
	var pass string
	switch {
	case c.PasswordEnv != "":
		if pass = os.Getenv(c.PasswordEnv); pass == "" {
			return nil, fmt.Errorf("%s.passwordEnv: %s is not set", path, c.PasswordEnv)
		}
	case c.PasswordFile != "":
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("%s.passwordFile: %w", path, err)
		}
		pass = strings.TrimRight(string(b), "\r\n")
	}
	if user == "" {
		return nil, nil
	}
	return &authn.Basic{Username: user, Password: pass}, nil
}
