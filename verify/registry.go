package verify

import (
	"context"
	"errors"
)

// Registry is what verify reads. Implementations are expected to authenticate as the
// gateway's service account, cap sizes and check digests.
//
// Errors: an error matching ErrNotFound, ErrUnsupported or ErrTooLarge (through errors.Is,
// or through a method NotFound, Unsupported or TooLarge returning true, so that a registry
// client need not import this package) is an answer; any other error means the registry
// could not be read and Verify returns it.
type Registry interface {
	// Manifest returns the manifest repo:ref (ref a tag or a digest) and its media type.
	// A missing manifest is ErrNotFound; one over the reader's size cap is ErrTooLarge.
	Manifest(ctx context.Context, repo, ref string) (body []byte, mediaType string, err error)
	// Blob returns the blob repo@digest, read up to max bytes (ErrTooLarge beyond that),
	// with its digest verified. A missing blob is ErrNotFound.
	Blob(ctx context.Context, repo, digest string, max int64) ([]byte, error)
	// Referrers returns the OCI image index the referrers API lists for repo@digest.
	// ErrNotFound or ErrUnsupported when the registry has no such API (or no such
	// repository); both send verify to the referrers tag scheme alone.
	Referrers(ctx context.Context, repo, digest string) (index []byte, err error)
}

var (
	// ErrNotFound is a Registry's answer for a missing manifest, blob or repository.
	ErrNotFound = errors.New("not found")
	// ErrUnsupported is a Registry's answer when the referrers API is not implemented.
	ErrUnsupported = errors.New("referrers API not supported")
	// ErrTooLarge is a Registry's answer when content is over the size cap.
	ErrTooLarge = errors.New("over the size limit")
)

// isNotFound reports whether err is a Registry's "not found" answer.
func isNotFound(err error) bool {
	var b interface{ NotFound() bool }
	return errors.Is(err, ErrNotFound) || errors.As(err, &b) && b.NotFound()
}

// isUnsupported reports whether err is a Registry's "no referrers API" answer.
func isUnsupported(err error) bool {
	var b interface{ Unsupported() bool }
	return errors.Is(err, ErrUnsupported) || errors.As(err, &b) && b.Unsupported()
}

// isTooLarge reports whether err is a Registry's "over the size cap" answer.
func isTooLarge(err error) bool {
	var b interface{ TooLarge() bool }
	return errors.Is(err, ErrTooLarge) || errors.As(err, &b) && b.TooLarge()
}
