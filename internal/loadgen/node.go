package loadgen

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// ManifestAccept is the Accept header containerd's resolver sends when it asks for a
// manifest by tag (remotes/docker/resolver.go).
var ManifestAccept = strings.Join([]string{
	"application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
	MediaTypeManifest,
	MediaTypeIndex,
	"*/*",
}, ", ")

// UserAgent is what the simulated nodes send.
const UserAgent = "portcullis-bench/1 (containerd-like pull)"

// DefaultMaxConcurrentDownloads is containerd's default bound on the layers one pull
// downloads at once (the CRI plugin's max_concurrent_downloads).
const DefaultMaxConcurrentDownloads = 3

// NewNodeClient returns the HTTP client of one simulated node: its own connection pool,
// no compression, no overall timeout (layers take as long as they take), a bound on
// waiting for response headers.
func NewNodeClient(maxConns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          2 * maxConns,
		MaxIdleConnsPerHost:   2 * maxConns,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
	}}
}

// Kind classifies the requests of a pull.
type Kind int

// The kinds of requests a node makes.
const (
	KindManifest Kind = iota // HEAD by tag, GET index, GET platform manifest
	KindBlob                 // GET config and layers
)

// The manifest requests of a pull, in order (Sample.Step).
const (
	StepHeadTag     = "HEAD tag"
	StepGetIndex    = "GET index"
	StepGetManifest = "GET manifest"
)

// Sample is one request a node made.
type Sample struct {
	Kind Kind
	// Step names a manifest request (StepHeadTag, StepGetIndex, StepGetManifest).
	Step     string
	Duration time.Duration
	Bytes    int64
	Err      error
}

// PullOptions tune one node's pull.
type PullOptions struct {
	// MaxConcurrentDownloads bounds the layers fetched at once; default 3 (containerd's).
	MaxConcurrentDownloads int
	// VerifyLayers hashes every layer and compares its digest (containerd does; it costs
	// the generator about as much CPU as the transfer itself, so by default only some
	// nodes do it). Sizes, manifests and the config are always checked.
	VerifyLayers bool
	// Platform selects the index entry; default linux/amd64.
	Platform Platform
}

// Pull pulls repo:tag from base the way containerd does: HEAD the manifest by tag, GET the
// index by digest, GET the platform's manifest by digest, GET the config, then the layers
// with at most MaxConcurrentDownloads at once. Every request is reported to record (which
// must be safe for concurrent use). It returns the first failure.
func Pull(ctx context.Context, client *http.Client, base, repo, tag string, o PullOptions, record func(Sample)) error {
	if o.MaxConcurrentDownloads < 1 {
		o.MaxConcurrentDownloads = DefaultMaxConcurrentDownloads
	}
	if o.Platform == (Platform{}) {
		o.Platform = Platform{Architecture: "amd64", OS: "linux"}
	}
	n := &node{ctx: ctx, client: client, base: strings.TrimSuffix(base, "/") + "/v2/" + repo, record: record}
	top, err := n.resolve(tag)
	if err != nil {
		return err
	}
	body, err := n.manifest(top, StepGetIndex)
	if err != nil {
		return err
	}
	desc := top
	if top.MediaType == MediaTypeIndex || top.MediaType == "application/vnd.docker.distribution.manifest.list.v2+json" {
		var idx Index
		if err := json.Unmarshal(body, &idx); err != nil {
			return fmt.Errorf("index %s: %w", top.Digest, err)
		}
		desc = Descriptor{}
		for _, m := range idx.Manifests {
			if m.Platform != nil && *m.Platform == o.Platform {
				desc = m
				break
			}
		}
		if desc.Digest == "" {
			return fmt.Errorf("index %s has no manifest for %s/%s", top.Digest, o.Platform.OS, o.Platform.Architecture)
		}
		if body, err = n.manifest(desc, StepGetManifest); err != nil {
			return err
		}
	}
	var m Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	if err := n.blob(m.Config, true); err != nil {
		return err
	}
	// Layers in parallel with a bounded pool, as containerd's fetch handler does.
	sem := make(chan struct{}, o.MaxConcurrentDownloads)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for _, l := range m.Layers {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := n.blob(l, o.VerifyLayers); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

type node struct {
	ctx    context.Context
	client *http.Client
	base   string // .../v2/<repo>
	record func(Sample)
}

// resolve HEADs the manifest by tag and returns its descriptor from the answer's headers.
func (n *node) resolve(tag string) (Descriptor, error) {
	start := time.Now()
	d, err := n.head(tag)
	n.record(Sample{Kind: KindManifest, Step: StepHeadTag, Duration: time.Since(start), Err: err})
	return d, err
}

func (n *node) head(tag string) (Descriptor, error) {
	req, err := http.NewRequestWithContext(n.ctx, http.MethodHead, n.base+"/manifests/"+tag, nil)
	if err != nil {
		return Descriptor{}, err
	}
	req.Header.Set("Accept", ManifestAccept)
	req.Header.Set("User-Agent", UserAgent)
	resp, err := n.client.Do(req)
	if err != nil {
		return Descriptor{}, err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return Descriptor{}, statusError(req, resp)
	}
	d := Descriptor{
		MediaType: resp.Header.Get("Content-Type"),
		Digest:    resp.Header.Get("Docker-Content-Digest"),
		Size:      resp.ContentLength,
	}
	if !strings.HasPrefix(d.Digest, "sha256:") || d.Size <= 0 || d.MediaType == "" {
		return Descriptor{}, fmt.Errorf("HEAD %s: answer lacks Docker-Content-Digest, Content-Type or Content-Length: %q %q %d", req.URL.Path, d.Digest, d.MediaType, d.Size)
	}
	return d, nil
}

// manifest GETs a manifest by digest and checks its digest and size.
func (n *node) manifest(d Descriptor, step string) ([]byte, error) {
	start := time.Now()
	body, err := n.getManifest(d)
	n.record(Sample{Kind: KindManifest, Step: step, Duration: time.Since(start), Bytes: int64(len(body)), Err: err})
	return body, err
}

func (n *node) getManifest(d Descriptor) ([]byte, error) {
	req, err := http.NewRequestWithContext(n.ctx, http.MethodGet, n.base+"/manifests/"+d.Digest, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", d.MediaType+", */*")
	req.Header.Set("User-Agent", UserAgent)
	resp, err := n.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(req, resp)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", req.URL.Path, err)
	}
	if got := digestOf(body); got != d.Digest || int64(len(body)) != d.Size {
		return nil, fmt.Errorf("GET %s: got %d bytes with digest %s, want %d bytes", req.URL.Path, len(body), got, d.Size)
	}
	return body, nil
}

// copyBuffers are the nodes' read buffers (containerd copies with 1 MiB buffers; 256 KiB
// keeps the generator's own memory small with hundreds of streams).
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// blob GETs a blob, checks its size and, when verify is set, its digest.
func (n *node) blob(d Descriptor, verify bool) error {
	start := time.Now()
	got, err := n.getBlob(d, verify)
	n.record(Sample{Kind: KindBlob, Duration: time.Since(start), Bytes: got, Err: err})
	return err
}

func (n *node) getBlob(d Descriptor, verify bool) (int64, error) {
	req, err := http.NewRequestWithContext(n.ctx, http.MethodGet, n.base+"/blobs/"+d.Digest, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", d.MediaType+", */*")
	req.Header.Set("User-Agent", UserAgent)
	resp, err := n.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, statusError(req, resp)
	}
	var h hash.Hash
	var w io.Writer = io.Discard
	if verify {
		h = sha256.New()
		w = h
	}
	buf := copyBuffers.Get().(*[]byte)
	// writerOnly hides io.Discard's ReadFrom, which would read in 8 KiB pieces.
	got, err := io.CopyBuffer(writerOnly{w}, io.LimitReader(resp.Body, d.Size+1), *buf)
	copyBuffers.Put(buf)
	if err != nil {
		return got, fmt.Errorf("GET %s: after %d of %d bytes: %w", req.URL.Path, got, d.Size, err)
	}
	if got != d.Size {
		return got, fmt.Errorf("GET %s: got %d bytes, want %d", req.URL.Path, got, d.Size)
	}
	if h != nil {
		if sum := "sha256:" + hex.EncodeToString(h.Sum(nil)); sum != d.Digest {
			return got, fmt.Errorf("GET %s: content has digest %s", req.URL.Path, sum)
		}
	}
	return got, nil
}

// writerOnly is an io.Writer and nothing else.
type writerOnly struct{ io.Writer }
