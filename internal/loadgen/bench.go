package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// BenchOptions describe a run of interleaved rollouts over several paths.
type BenchOptions struct {
	// Paths are measured in this order in every round (a, b, c, a, b, c, ...).
	Paths []Path
	// Registry is the pid of the registry process every path ends at (0: not measured).
	Registry int
	// Rounds is how many times each path is measured.
	Rounds int
	// Rollout holds the nodes, image and download settings; its Targets are set per path.
	Rollout RolloutOptions
	// WarmupTimeout bounds waiting, per path before the first round, for an answer without
	// a Warning header (a gateway scans an image it has not seen on its first pull).
	WarmupTimeout time.Duration
	// Progress receives one line per rollout; nil discards them.
	Progress io.Writer
}

// RoundResult is one rollout through one path.
type RoundResult struct {
	Round            int     `json:"round"`
	Path             string  `json:"path"`
	RolloutSeconds   float64 `json:"rolloutSeconds"`
	ManifestP50Ms    float64 `json:"manifestP50Ms"`
	ManifestP99Ms    float64 `json:"manifestP99Ms"`
	ManifestRequests int     `json:"manifestRequests"`
	// Steps are the manifest latencies by request: HEAD tag, GET index, GET manifest.
	Steps               map[string]Latency `json:"manifestSteps"`
	BlobRequests        int                `json:"blobRequests"`
	BlobBytes           int64              `json:"blobBytes"`
	BlobMiBps           float64            `json:"blobMiBps"`
	ProxyCPUSeconds     float64            `json:"proxyCPUSeconds"`
	RegistryCPUSeconds  float64            `json:"registryCPUSeconds"`
	GeneratorCPUSeconds float64            `json:"generatorCPUSeconds"`
	ProxyPeakRSS        []int64            `json:"proxyPeakRSSBytes,omitempty"`
	RegistryPeakRSS     int64              `json:"registryPeakRSSBytes,omitempty"`
	FailedRequests      int                `json:"failedRequests"`
	FailedNodes         int                `json:"failedNodes"`
	Errors              []string           `json:"errors,omitempty"`

	manifest []time.Duration
	steps    map[string][]time.Duration
}

// Latency is the median and 99th percentile of some requests' latencies.
type Latency struct {
	N     int     `json:"n"`
	P50Ms float64 `json:"p50Ms"`
	P99Ms float64 `json:"p99Ms"`
}

func latency(sorted []time.Duration) Latency {
	return Latency{N: len(sorted), P50Ms: ms(Quantile(sorted, 0.50)), P99Ms: ms(Quantile(sorted, 0.99))}
}

// Bench warms every path up, then runs opts.Rounds interleaved rounds of rollouts.
func Bench(ctx context.Context, o BenchOptions) ([]RoundResult, error) {
	if len(o.Paths) == 0 {
		return nil, errors.New("bench: no path")
	}
	if o.Rounds < 1 {
		return nil, fmt.Errorf("bench: rounds must be at least 1, got %d", o.Rounds)
	}
	progress := o.Progress
	if progress == nil {
		progress = io.Discard
	}
	var registry *Instance
	if o.Registry != 0 {
		var err error
		if registry, err = NewInstance(o.Registry); err != nil {
			return nil, fmt.Errorf("bench: registry: %w", err)
		}
	}
	servers := make([][]*Instance, len(o.Paths))
	for i, p := range o.Paths {
		for _, pid := range p.Servers {
			in, err := NewInstance(pid)
			if err != nil {
				return nil, fmt.Errorf("bench: path %s: %w", p.Name, err)
			}
			servers[i] = append(servers[i], in)
		}
	}
	self, err := NewInstance(os.Getpid())
	if err != nil {
		return nil, err
	}
	self.pids = self.pids[:1] // the generator alone, not what it may have started

	for _, p := range o.Paths {
		fmt.Fprintf(progress, "warm-up %s: one verified pull per target\n", p.Name)
		if err := Warm(ctx, p, o.Rollout.Repository, o.Rollout.Tag, o.WarmupTimeout, progress); err != nil {
			return nil, fmt.Errorf("bench: warm-up of %s: %w", p.Name, err)
		}
	}

	var results []RoundResult
	for round := 1; round <= o.Rounds; round++ {
		for i, p := range o.Paths {
			r, err := measure(ctx, o.Rollout, p, servers[i], registry, self)
			if err != nil {
				return results, fmt.Errorf("bench: round %d, %s: %w", round, p.Name, err)
			}
			r.Round = round
			results = append(results, *r)
			fmt.Fprintf(progress, "round %d/%d %-14s rollout %7.2f s  manifest p50 %7.2f ms p99 %8.2f ms  %8.1f MiB/s  proxy %6.2f CPU-s  registry %6.2f CPU-s  failed %d\n",
				round, o.Rounds, p.Name, r.RolloutSeconds, r.ManifestP50Ms, r.ManifestP99Ms, r.BlobMiBps, r.ProxyCPUSeconds, r.RegistryCPUSeconds, r.FailedRequests)
		}
	}
	return results, nil
}

// measure runs one rollout through p and reads the processes around it.
func measure(ctx context.Context, ro RolloutOptions, p Path, servers []*Instance, registry, self *Instance) (*RoundResult, error) {
	all := append([]*Instance{self}, servers...)
	if registry != nil {
		all = append(all, registry)
	}
	for _, in := range all[1:] {
		if err := in.ResetPeak(); err != nil {
			return nil, err
		}
	}
	before := make([]ProcSample, len(all))
	for i, in := range all {
		s, err := in.Sample()
		if err != nil {
			return nil, err
		}
		before[i] = s
	}
	ro.Targets = p.Targets
	res, err := Rollout(ctx, ro)
	if err != nil {
		return nil, err
	}
	r := &RoundResult{
		Path:             p.Name,
		RolloutSeconds:   res.Duration.Seconds(),
		ManifestP50Ms:    ms(Quantile(res.Manifest, 0.50)),
		ManifestP99Ms:    ms(Quantile(res.Manifest, 0.99)),
		ManifestRequests: res.ManifestRequests,
		BlobRequests:     res.BlobRequests,
		BlobBytes:        res.BlobBytes,
		BlobMiBps:        float64(res.BlobBytes) / (1 << 20) / res.Duration.Seconds(),
		FailedRequests:   res.FailedRequests,
		FailedNodes:      res.FailedNodes,
		Errors:           res.Errors,
		manifest:         res.Manifest,
		steps:            res.Steps,
		Steps:            map[string]Latency{},
	}
	for step, d := range res.Steps {
		r.Steps[step] = latency(d)
	}
	for i, in := range all {
		s, err := in.Sample()
		if err != nil {
			return nil, err
		}
		cpu := (s.CPU - before[i].CPU).Seconds()
		switch {
		case i == 0:
			r.GeneratorCPUSeconds = cpu
		case registry != nil && i == len(all)-1:
			r.RegistryCPUSeconds = cpu
			r.RegistryPeakRSS = s.PeakRSS
		default:
			r.ProxyCPUSeconds += cpu
			r.ProxyPeakRSS = append(r.ProxyPeakRSS, s.PeakRSS)
		}
	}
	return r, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Warm pulls the image once through every target of p, checking every digest, then waits
// (up to timeout) until a HEAD by tag answers without a Warning header: a gateway scans
// an image it has not seen when it is first pulled and may answer with a warning until
// the scan is done. A warning that outlasts timeout is reported to progress, not fatal.
func Warm(ctx context.Context, p Path, repo, tag string, timeout time.Duration, progress io.Writer) error {
	for _, target := range p.Targets {
		c := NewNodeClient(DefaultMaxConcurrentDownloads)
		err := Pull(ctx, c, target, repo, tag, PullOptions{VerifyLayers: true}, func(Sample) {})
		if err != nil {
			c.CloseIdleConnections()
			return err
		}
		deadline := time.Now().Add(timeout)
		for {
			warning, err := headWarning(ctx, c, target, repo, tag)
			if err != nil {
				c.CloseIdleConnections()
				return err
			}
			if warning == "" {
				break
			}
			if time.Now().After(deadline) {
				fmt.Fprintf(progress, "warm-up %s: %s still answers with a warning after %s: %s\n", p.Name, target, timeout, warning)
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
		}
		c.CloseIdleConnections()
	}
	return nil
}

// headWarning HEADs the manifest by tag and returns its Warning header.
func headWarning(ctx context.Context, c *http.Client, base, repo, tag string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, base+"/v2/"+repo+"/manifests/"+tag, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", ManifestAccept)
	req.Header.Set("User-Agent", UserAgent)
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return "", statusError(req, resp)
	}
	return resp.Header.Get("Warning"), nil
}
