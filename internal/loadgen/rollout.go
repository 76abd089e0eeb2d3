package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"
)

// RolloutOptions describe one simulated rollout.
type RolloutOptions struct {
	// Nodes is how many nodes pull at once.
	Nodes int
	// Targets are the base URLs the nodes pull from; node i uses Targets[i % len(Targets)]
	// for all its requests, as a load balancer that spreads connections would.
	Targets []string
	// Repository and Tag name the image.
	Repository, Tag string
	// MaxConcurrentDownloads bounds each node's parallel layer downloads (default 3).
	MaxConcurrentDownloads int
	// VerifyNodes is how many nodes (the first ones) also check every layer's digest.
	VerifyNodes int
}

// RolloutResult is what one rollout measured.
type RolloutResult struct {
	// Duration runs from the moment every node is released until the last one is done.
	Duration time.Duration
	// Manifest holds the latency of every manifest request (HEAD by tag, GET index, GET
	// platform manifest), sorted.
	Manifest []time.Duration
	// Steps holds the same latencies by request (StepHeadTag, ...), each sorted.
	Steps map[string][]time.Duration
	// ManifestRequests and BlobRequests count requests, failed or not.
	ManifestRequests, BlobRequests int
	// BlobBytes counts the blob bytes received by all nodes.
	BlobBytes int64
	// FailedRequests counts requests that failed (status, transport, size or digest).
	FailedRequests int
	// FailedNodes counts nodes whose pull did not complete.
	FailedNodes int
	// Errors holds the first few failures, for the report.
	Errors []string
}

// maxErrors bounds RolloutResult.Errors.
const maxErrors = 5

// Rollout releases o.Nodes simulated nodes at once, each with its own HTTP client, and
// waits until every one has pulled the image or failed.
func Rollout(ctx context.Context, o RolloutOptions) (*RolloutResult, error) {
	if o.Nodes < 1 {
		return nil, fmt.Errorf("rollout: nodes must be at least 1, got %d", o.Nodes)
	}
	if len(o.Targets) == 0 {
		return nil, errors.New("rollout: no target")
	}
	if o.MaxConcurrentDownloads < 1 {
		o.MaxConcurrentDownloads = DefaultMaxConcurrentDownloads
	}
	res := &RolloutResult{Manifest: make([]time.Duration, 0, 3*o.Nodes), Steps: map[string][]time.Duration{}}
	var mu sync.Mutex
	record := func(s Sample) {
		mu.Lock()
		defer mu.Unlock()
		switch s.Kind {
		case KindManifest:
			res.ManifestRequests++
			res.Manifest = append(res.Manifest, s.Duration)
			res.Steps[s.Step] = append(res.Steps[s.Step], s.Duration)
		case KindBlob:
			res.BlobRequests++
			res.BlobBytes += s.Bytes
		}
		if s.Err != nil {
			res.FailedRequests++
			if len(res.Errors) < maxErrors {
				res.Errors = append(res.Errors, s.Err.Error())
			}
		}
	}
	clients := make([]*http.Client, o.Nodes)
	for i := range clients {
		clients[i] = NewNodeClient(o.MaxConcurrentDownloads)
	}
	defer func() {
		for _, c := range clients {
			c.CloseIdleConnections()
		}
	}()
	release := make(chan struct{})
	var wg sync.WaitGroup
	var failedNodes int
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-release
			err := Pull(ctx, c, o.Targets[i%len(o.Targets)], o.Repository, o.Tag, PullOptions{
				MaxConcurrentDownloads: o.MaxConcurrentDownloads,
				VerifyLayers:           i < o.VerifyNodes,
			}, record)
			if err != nil {
				mu.Lock()
				failedNodes++
				if res.FailedRequests == 0 && len(res.Errors) < maxErrors {
					res.Errors = append(res.Errors, err.Error()) // failed without a request failing: the context
				}
				mu.Unlock()
			}
		}()
	}
	start := time.Now()
	close(release)
	wg.Wait()
	res.Duration = time.Since(start)
	res.FailedNodes = failedNodes
	slices.Sort(res.Manifest)
	for _, d := range res.Steps {
		slices.Sort(d)
	}
	return res, ctx.Err()
}

// Quantile returns the q-quantile (0 ≤ q ≤ 1) of sorted durations by the nearest-rank
// method, or 0 for none.
func Quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(q*float64(len(sorted))+0.999999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}
