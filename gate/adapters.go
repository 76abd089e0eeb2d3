package gate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/scan/harbor"
)

// AdapterScanner asks an external scanner (a Harbor scanner adapter, harbor.Client) for
// the vulnerabilities of one artifact, pulled from reg.
type AdapterScanner interface {
	Scan(ctx context.Context, reg harbor.Registry, a harbor.Artifact) (harbor.Evidence, error)
}

// WithAdapters sets the external scanners environments may choose by name (policy
// environments' scanner), and the registry they pull from: its URL as the adapters reach
// it and the Authorization they send.
func WithAdapters(adapters map[string]AdapterScanner, reg harbor.Registry) Option {
	return func(g *Gate) { g.adapters, g.adapterRegistry = adapters, reg }
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
		return adapter.Scan(ctx, g.adapterRegistry, harbor.Artifact{Repository: repo, Digest: digest, MimeType: mt.MediaType})
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
