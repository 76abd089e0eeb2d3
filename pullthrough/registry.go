package pullthrough

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Registry reads and writes go through go-containerregistry: it keeps manifests byte for
// byte (RawManifest), streams blobs, skips the blobs the upstream has, and writes the
// referrers fallback tag when the upstream has no referrers API.

// noRetry makes a source's refusal (429) or outage answer at once: the judged copy is
// served instead of waiting.
var noRetry = []remote.Option{remote.WithRetryStatusCodes(), remote.WithRetryBackoff(remote.Backoff{Steps: 1})}

func (f *Fetcher) upstreamOptions(ctx context.Context) []remote.Option {
	return []remote.Option{remote.WithContext(ctx), remote.WithTransport(f.upRT), remote.WithAuth(f.upAuth)}
}

func (f *Fetcher) sourceOptions(ctx context.Context, src *source) []remote.Option {
	opts := append([]remote.Option{remote.WithContext(ctx), remote.WithTransport(budgetTransport{b: src.budget, next: f.srcRT})}, noRetry...)
	if src.Auth != nil {
		opts = append(opts, remote.WithAuth(src.Auth))
	}
	return opts
}

func (f *Fetcher) upstreamRepo(repo string) (name.Repository, error) {
	return name.NewRepository(f.upHost+"/"+repo, f.upOpts...)
}

func (s *source) repo(path string) (name.Repository, error) {
	var opts []name.Option
	if s.insecure {
		opts = append(opts, name.Insecure)
	}
	return name.NewRepository(s.host+"/"+path, opts...)
}

// upstreamTag returns the digest repo:tag points at in the upstream, "" when none.
func (f *Fetcher) upstreamTag(ctx context.Context, repo, tag string) (string, error) {
	r, err := f.upstreamRepo(repo)
	if err != nil {
		return "", err
	}
	d, err := remote.Head(r.Tag(tag), f.upstreamOptions(ctx)...)
	if isNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return d.Digest.String(), nil
}

// upstreamHas reports whether the upstream holds the manifest repo@dgst.
func (f *Fetcher) upstreamHas(ctx context.Context, repo, dgst string) (bool, error) {
	r, err := f.upstreamRepo(repo)
	if err != nil {
		return false, err
	}
	_, err = remote.Head(r.Digest(dgst), f.upstreamOptions(ctx)...)
	if isNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// sourceHead asks the source which digest path:tag points at (HEAD: Docker Hub does not
// count it as a pull). It does not wait for the budget: a spent budget serves the copy.
func (f *Fetcher) sourceHead(ctx context.Context, src *source, path, tag string) (string, error) {
	r, err := src.repo(path)
	if err != nil {
		return "", err
	}
	d, err := remote.Head(r.Tag(tag), f.sourceOptions(context.WithValue(ctx, noWaitKey{}, true), src)...)
	if err != nil {
		return "", sourceError(err)
	}
	return d.Digest.String(), nil
}

// fetch copies path@dgst (with its children, blobs, signatures and referrers) from the
// source into repo, unless the upstream has it, and returns the manifest.
func (f *Fetcher) fetch(ctx context.Context, src *source, path, repo, dgst string) ([]byte, error) {
	if has, err := f.upstreamHas(ctx, repo, dgst); err == nil && has {
		r, _ := f.upstreamRepo(repo)
		d, err := remote.Get(r.Digest(dgst), f.upstreamOptions(ctx)...)
		if err == nil {
			return d.Manifest, nil
		}
	}
	return f.copy(ctx, src, path, repo, dgst)
}

// copy writes path@dgst from the source into repo, then the cosign tags
// (sha256-<hex>.sig/.att/.sbom) and the referrers of dgst.
func (f *Fetcher) copy(ctx context.Context, src *source, path, repo, dgst string) ([]byte, error) {
	start := time.Now()
	from, err := src.repo(path)
	if err != nil {
		return nil, err
	}
	to, err := f.upstreamRepo(repo)
	if err != nil {
		return nil, err
	}
	// A HEAD that does not wait for the budget first: a digest the source may not have (any
	// a client makes up) must not queue behind the budget. What follows it may wait.
	if _, err := remote.Head(from.Digest(dgst), f.sourceOptions(context.WithValue(ctx, noWaitKey{}, true), src)...); err != nil {
		return nil, sourceError(err)
	}
	desc, err := remote.Get(from.Digest(dgst), f.sourceOptions(ctx, src)...)
	if err != nil {
		return nil, sourceError(err)
	}
	if err := f.put(ctx, desc, to.Digest(dgst)); err != nil {
		return nil, err
	}
	// Signatures, attestations and SBOMs, as cosign tags them.
	for _, suffix := range []string{".sig", ".att", ".sbom"} {
		tag := strings.Replace(dgst, ":", "-", 1) + suffix
		d, err := remote.Get(from.Tag(tag), f.sourceOptions(ctx, src)...)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s:%s at the source: %w", path, tag, sourceError(err))
		}
		if err := f.put(ctx, d, to.Tag(tag)); err != nil {
			return nil, err
		}
	}
	// OCI referrers (sigstore bundles, attestations).
	idx, err := remote.Referrers(from.Digest(dgst), f.sourceOptions(ctx, src)...)
	if err != nil && !isNotFound(err) {
		return nil, fmt.Errorf("listing the referrers of %s@%s at the source: %w", path, dgst, sourceError(err))
	}
	if idx != nil {
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, err
		}
		for _, m := range im.Manifests {
			d, err := remote.Get(from.Digest(m.Digest.String()), f.sourceOptions(ctx, src)...)
			if err != nil {
				return nil, fmt.Errorf("reading referrer %s at the source: %w", m.Digest, sourceError(err))
			}
			if err := f.put(ctx, d, to.Digest(m.Digest.String())); err != nil {
				return nil, err
			}
		}
	}
	f.log.LogAttrs(ctx, slog.LevelInfo, "pull-through: fetched", slog.String("source", src.Registry+"/"+path),
		slog.String("repository", repo), slog.String("digest", dgst), slog.Duration("took", time.Since(start)))
	return desc.Manifest, nil
}

// put writes one manifest with what it references, byte for byte.
func (f *Fetcher) put(ctx context.Context, d *remote.Descriptor, to name.Reference) error {
	var err error
	switch {
	case d.MediaType.IsIndex():
		idx, ierr := d.ImageIndex()
		if ierr != nil {
			return ierr
		}
		err = remote.WriteIndex(to, idx, f.upstreamOptions(ctx)...)
	case d.MediaType.IsImage():
		img, ierr := d.Image()
		if ierr != nil {
			return ierr
		}
		err = remote.Write(to, img, f.upstreamOptions(ctx)...)
	default:
		return fmt.Errorf("%s has media type %q, which pull-through does not copy", d.Digest, d.MediaType)
	}
	if err != nil {
		return fmt.Errorf("writing %s to the upstream: %w", to, err)
	}
	return nil
}

// tag points repo:tag at dgst in the upstream.
func (f *Fetcher) tag(ctx context.Context, repo, tag, dgst string) error {
	r, err := f.upstreamRepo(repo)
	if err != nil {
		return err
	}
	d, err := remote.Get(r.Digest(dgst), f.upstreamOptions(ctx)...)
	if err != nil {
		return err
	}
	return remote.Tag(r.Tag(tag), d, f.upstreamOptions(ctx)...)
}

func isNotFound(err error) bool {
	var t *transport.Error
	return errors.As(err, &t) && t.StatusCode == http.StatusNotFound
}

// sourceError names a source's refusal plainly.
func sourceError(err error) error {
	var t *transport.Error
	if errors.As(err, &t) && t.StatusCode == http.StatusTooManyRequests {
		return fmt.Errorf("rate limited by the source (429 Too Many Requests): %w", err)
	}
	return err
}
