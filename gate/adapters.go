package gate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
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

// namedAdapter is one adapter an environment chose, with its configured name.
type namedAdapter struct {
	name    string
	scanner AdapterScanner
}

// scannersFor resolves an environment's scanner choice (see policy.Environment.Scanner)
// to the adapters to ask, in the choice's order, and whether the built-in scanner scans
// too. A name the gateway does not configure is a lasting error.
func (g *Gate) scannersFor(choice string) (adapters []namedAdapter, builtin bool, err error) {
	switch choice {
	case "", policy.ScannerBuiltin:
		return nil, true, nil
	case policy.ScannerBoth:
		if len(g.adapters) != 1 {
			return nil, false, &lastingError{msg: fmt.Sprintf("the environment asks for both scanners, but the gateway configures %d scanner adapters (want exactly one; or list the scanners: [builtin, ...])", len(g.adapters))}
		}
		for n, a := range g.adapters {
			return []namedAdapter{{n, a}}, true, nil
		}
	}
	var unknown []string
	for _, n := range strings.Split(choice, ",") {
		if n == policy.ScannerBuiltin {
			builtin = true
			continue
		}
		a, ok := g.adapters[n]
		if !ok {
			unknown = append(unknown, fmt.Sprintf("%q", n))
			continue
		}
		adapters = append(adapters, namedAdapter{n, a})
	}
	if len(unknown) > 0 {
		what := "scanner " + unknown[0] + " is not a scanner adapter"
		if len(unknown) > 1 {
			what = "scanners " + strings.Join(unknown, ", ") + " are not scanner adapters"
		}
		return nil, false, &lastingError{msg: fmt.Sprintf("the environment's %s of this gateway (configured: %s)", what, adapterNames(g.adapters))}
	}
	return adapters, builtin, nil
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

// scanReport scans repo@digest with the scanners choice names: the built-in one, one or
// more adapters, or both (findings united, each adapter's naming its source; the
// adapters asked at once). An adapter that does not answer is an error like any missing
// evidence: the fail mode decides. With two scanners or more, the report lists where
// they disagree (see disagreements).
func (g *Gate) scanReport(ctx context.Context, action policy.Action, choice, repo, digest string, manifest []byte) (Report, []string, error) {
	adapters, builtin, err := g.scannersFor(choice)
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
	if len(adapters) == 0 {
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
	art := harbor.Artifact{Repository: repo, Digest: digest, MimeType: mt.MediaType}
	evs := make([]harbor.Evidence, len(adapters))
	errs := make([]error, len(adapters))
	var wg sync.WaitGroup
	for i, a := range adapters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			evs[i], errs[i] = waitScan(ctx, action, func(ctx context.Context) (harbor.Evidence, error) {
				return a.scanner.ScanFrom(ctx, g.registryFor, art)
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err == nil {
			continue
		}
		if errors.Is(err, errScanPending) {
			return Report{}, nil, err
		}
		return Report{}, nil, fmt.Errorf("scanner adapter %s: %w", adapters[i].name, err)
	}
	var revs, sources []string
	var sets []scannerFindings
	if builtin {
		revs = append(revs, rep.DBRevision)
		sources = make([]string, len(rep.Findings))
		sets = append(sets, scannerFindings{name: policy.ScannerBuiltin, findings: rep.Findings})
	}
	for i, ev := range evs {
		revs = append(revs, "adapter "+adapters[i].name+": "+ev.Provenance())
		rep.Findings = append(rep.Findings, ev.Findings...)
		for range ev.Findings {
			sources = append(sources, ev.Provenance())
		}
		sets = append(sets, scannerFindings{name: adapters[i].name, findings: ev.Findings})
	}
	rep.DBRevision = strings.Join(revs, "; ")
	rep.Disagreements = disagreements(sets)
	return rep, sources, nil
}
