package gate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/pullcred"
	"github.com/portcullis-dev/portcullis/scan/harbor"
)

// AdapterScanner asks an external scanner (a Harbor scanner adapter, harbor.Client) for
// the vulnerabilities of one artifact, pulled from the registry from gives.
type AdapterScanner interface {
	ScanFrom(ctx context.Context, from harbor.RegistryFor, a harbor.Artifact) (harbor.Evidence, error)
}

// WithAdapters sets the external scanners environments may choose by name (policy
// environments' scanner), and the registry they pull from: its URL as the adapters reach
// it and the Authorization they send (ignored with WithScanCredentials).
func WithAdapters(adapters map[string]AdapterScanner, reg harbor.Registry) Option {
	return func(g *Gate) { g.adapters, g.adapterRegistry = adapters, reg }
}

// ScanCredentialIssuer mints and revokes the short-lived credentials adapters pull one
// image through the gateway with (pullcred.Issuer).
type ScanCredentialIssuer interface {
	Mint(ctx context.Context, repo, digest string, ttl time.Duration) (pullcred.Credential, error)
	Revoke(ctx context.Context, c pullcred.Credential) error
}

// WithScanCredentials makes the gate send each adapter scan a credential of its own,
// minted by issuer, for pulling that one image (repository and digest) through the
// gateway, whose URL as the adapters reach it is WithAdapters' registry URL: valid for
// the scan's bound and revoked when the scan ends.
// With bearer, the credential is sent as a Bearer token (see
// pullcred.Credential.BearerAuthorization), else as Basic.
func WithScanCredentials(issuer ScanCredentialIssuer, bearer bool) Option {
	return func(g *Gate) { g.scanCreds, g.scanBearer = issuer, bearer }
}

// registryFor gives an adapter the registry to pull a from: with scan credentials, the
// gateway with a credential minted for this scan alone; else the configured registry.
func (g *Gate) registryFor(ctx context.Context, a harbor.Artifact, bound time.Duration) (harbor.Registry, func(), error) {
	if g.scanCreds == nil {
		return g.adapterRegistry, func() {}, nil
	}
	c, err := g.scanCreds.Mint(ctx, a.Repository, a.Digest, bound)
	if err != nil {
		return harbor.Registry{}, nil, err
	}
	revoke := func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := g.scanCreds.Revoke(ctx, c); err != nil {
			g.log.Warn("could not revoke a scanner adapter's pull credential; it expires by itself",
				slog.String("user", c.Username()), slog.Time("expires", c.Grant.Expires), slog.String("error", err.Error()))
		}
	}
	auth := c.Authorization()
	if g.scanBearer {
		auth = c.BearerAuthorization()
	}
	return harbor.Registry{URL: g.adapterRegistry.URL, Authorization: auth}, revoke, nil
}

// adapterFor resolves an environment's scanner choice to the adapter to ask (name ""
// when none) and whether the built-in scanner scans too.
func (g *Gate) adapterFor(choice string) (name string, a AdapterScanner, builtin bool, err error) {
	switch choice {
	case "", policy.ScannerBuiltin:
		return "", nil, true, nil
	case policy.ScannerBoth:
		if len(g.adapters) != 1 {
			return "", nil, false, &lastingError{msg: fmt.Sprintf("the environment asks for both scanners, but the gateway configures %d scanner adapters (want exactly one)", len(g.adapters))}
		}
		for n, a := range g.adapters {
			return n, a, true, nil
		}
	}
	a, ok := g.adapters[choice]
	if !ok {
		return "", nil, false, &lastingError{msg: fmt.Sprintf("the environment's scanner %q is not a scanner adapter of this gateway (configured: %s)", choice, adapterNames(g.adapters))}
	}
	return choice, a, false, nil
}

func adapterNames(m map[string]AdapterScanner) string {
	if len(m) == 0 {
		return "none"
	}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// scanReport scans repo@digest with the scanners choice names: the built-in one, an
// adapter, or both (findings united; an adapter's name their source). An adapter that
// does not answer is an error like any missing evidence: the fail mode decides.
func (g *Gate) scanReport(ctx context.Context, action policy.Action, choice, repo, digest string, manifest []byte) (Report, []string, error) {
	name, adapter, builtin, err := g.adapterFor(choice)
	if err != nil {
		return Report{}, nil, err
	}
	var rep Report
	if builtin {
		if g.scanner == nil {
			return Report{}, nil, errString("this gateway has no vulnerability scanner configured")
		}
		if rep, err = waitScan(ctx, action, func(ctx context.Context) (Report, error) { return g.scanner.Scan(ctx, repo, digest, manifest) }); err != nil {
			return Report{}, nil, err
		}
	}
	if adapter == nil {
		return rep, nil, nil
	}
	shape, err := ClassifyManifest(manifest, "")
	if err != nil {
		return Report{}, nil, err
	}
	if shape == ShapeIndex {
		return Report{Index: true}, nil, nil
	}
	var mt struct {
		MediaType string `json:"mediaType"`
	}
	_ = json.Unmarshal(manifest, &mt)
	ev, err := waitScan(ctx, action, func(ctx context.Context) (harbor.Evidence, error) {
		return adapter.ScanFrom(ctx, g.registryFor, harbor.Artifact{Repository: repo, Digest: digest, MimeType: mt.MediaType})
	})
	if err != nil {
		if errors.Is(err, errScanPending) {
			return Report{}, nil, err
		}
		return Report{}, nil, fmt.Errorf("scanner adapter %s: %w", name, err)
	}
	rev := "adapter " + name + ": " + ev.Provenance()
	if builtin {
		rep.DBRevision += "; " + rev
	} else {
		rep.DBRevision = rev
	}
	rep.Findings = append(rep.Findings, ev.Findings...)
	sources := make([]string, len(rep.Findings))
	for i := len(rep.Findings) - len(ev.Findings); i < len(rep.Findings); i++ {
		sources[i] = ev.Provenance()
	}
	return rep, sources, nil
}
