package gate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/scan/inventory"
)

// VulnerabilityScanner scans an image for the vulnerability rules.
type VulnerabilityScanner interface {
	Scan(ctx context.Context, repo, digest string, manifest []byte) (Report, error)
}

// WithScanner sets how the gate scans images for vulnerability rules; without it those
// rules find no evidence and the environment's fail mode applies.
func WithScanner(s VulnerabilityScanner) Option { return func(g *Gate) { g.scanner = s } }

// WithPullScanWait sets how long a pull of an image that has not been scanned yet (it did
// not come through the gateway) waits for the scan. Past it the scan goes on in the
// background and the environment's fail mode answers: closed refuses with "scanning, retry"
// and Retry-After, open allows with a warning. Default 20s.
func WithPullScanWait(d time.Duration) Option { return func(g *Gate) { g.pullScanWait = d } }

// pullWaitKey carries in a request's context how long a pull waits for its scan (see
// waitScan): the environment's unscanned.wait, else the gate's pull scan wait.
type pullWaitKey struct{}

// withPullWait sets how long a pull waits for its scan; a negative wait does not bound it.
func withPullWait(ctx context.Context, wait time.Duration) context.Context {
	return context.WithValue(ctx, pullWaitKey{}, wait)
}

// waitScan runs scan and returns its result. A pull waits for it at most the wait
// withPullWait set (none set, or negative: no bound); past it the scan goes on in the
// background, so its result lands in the cache for the next request, and the error is
// errScanPending. A push waits for its scan.
func waitScan[T any](ctx context.Context, action policy.Action, scan func(context.Context) (T, error)) (T, error) {
	wait, ok := ctx.Value(pullWaitKey{}).(time.Duration)
	if action != policy.ActionPull || !ok || wait < 0 {
		return scan(ctx)
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := scan(context.WithoutCancel(ctx))
		done <- result{v, err}
	}()
	// A wait of 0 still lets a scan already done answer from the cache: without a floor,
	// the timer would win the race against even a cache hit, and an image scanned long
	// ago would be answered as "being scanned" on every pull.
	timer := time.NewTimer(max(wait, minScanWait))
	defer timer.Stop()
	var zero T
	select {
	case r := <-done:
		return r.v, r.err
	case <-timer.C:
		return zero, errScanPending
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// minScanWait is the least a pull waits for its scan: enough for an answer from the
// cache (memory or a Redis round trip), never for a scan.
const minScanWait = 200 * time.Millisecond

// errScanPending means a pull's scan outlasted the pull scan wait; it goes on.
var errScanPending = errors.New("scan still running")

// retryScan is the Retry-After given while an image is being scanned.
const retryScan = 30 * time.Second

// vulnerabilityEvidence scans repo@digest, whose manifest is manifest, records when each
// finding was first seen in repo (see recordFirstSeen) and, when compare is true (a rule
// judges new findings), compares them with the image's baseline (see compareWithBaseline;
// img is the image evidence when the gate read it, for the base image labels). A pull
// waits for the scan at most the pull scan wait. scanner is the environment's choice of
// scanner (policy.Policy.Scanner): the built-in one, an adapter, or both. When the
// environment takes CI scans (ci, see ciScanReport), a valid signed CI scan stands for the
// scan, which then does not run.
func (g *Gate) vulnerabilityEvidence(ctx context.Context, action policy.Action, scanner string, ci *policy.CIScans, repo, digest string, manifest []byte, img *policy.ImageEvidence, compare bool) (ev *policy.VulnerabilityEvidence, baseManifest []byte, err error) {
	rep, sources, ciScan, ciNote := g.ciScanReport(ctx, ci, repo, digest, manifest)
	if ciScan == nil {
		if rep, sources, err = g.scanReport(ctx, action, scanner, repo, digest, manifest); err != nil {
			if ciNote != "" {
				err = fmt.Errorf("%w (CI scan evidence not used: %s)", err, ciNote)
			}
			return nil, nil, err
		}
	}
	ev = &policy.VulnerabilityEvidence{Index: rep.Index, DBRevision: rep.DBRevision, Incomplete: rep.Incomplete,
		IncompleteReason: strings.Join(rep.Reasons, "; "), Unchecked: rep.Unchecked,
		OSUnknown: rep.OSUnknown, OSUnknownReason: rep.OSUnknownReason, Mismatched: rep.Mismatched, Disagreements: rep.Disagreements,
		CIScan: ciScan, CIScanNote: ciNote}
	for i, f := range rep.Findings {
		var source string
		if i < len(sources) {
			source = sources[i]
		}
		ev.Findings = append(ev.Findings, policy.VulnerabilityFinding{Source: source,
			ID: f.ID, Aliases: f.Aliases, Package: f.Package.Name, Ecosystem: f.Ecosystem, Version: f.Package.Version,
			Fixed: f.Fixed, Fixable: f.Fixable, Severity: strings.ToLower(f.Severity.String()), CVSS: f.CVSS,
			Layer: f.Package.Layer, OS: isOSEcosystem(f.Package.Ecosystem), Summary: f.Summary,
		})
	}
	if !ev.Index {
		if compare {
			baseManifest = g.compareWithBaseline(ctx, action, repo, digest, manifest, img, ev)
		}
		if err := g.recordFirstSeen(ctx, repo, ev.Findings); err != nil {
			return ev, baseManifest, fmt.Errorf("could not date the findings (first sightings): %w", err)
		}
	}
	return ev, baseManifest, nil
}

// isOSEcosystem reports whether packages of ecosystem come with the operating system.
func isOSEcosystem(ecosystem string) bool {
	switch ecosystem {
	case inventory.EcosystemDebian, inventory.EcosystemUbuntu, inventory.EcosystemAlpine:
		return true
	}
	return false
}
