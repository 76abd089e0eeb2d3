package pullthrough

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// errBudget is a source request the replica's rate budget did not allow.
var errBudget = errors.New("the request budget for the source (rateLimit.requestsPerMinute) is spent")

// Error is a pull the fetcher answers itself: the image cannot be fetched now or at all.
// The proxy turns it into an OCI error (see OCIError).
type Error struct {
	// Status is the HTTP status: 404, 403 or 503.
	Status int
	// Code is the OCI error code: NAME_UNKNOWN, MANIFEST_UNKNOWN, DENIED, UNAVAILABLE.
	Code string
	// Message says what happened and what to do.
	Message string
	// RetryAfter, when set, is when a retry may succeed.
	RetryAfter time.Duration
}

// Error returns the message.
func (e *Error) Error() string { return e.Message }

// OCIError returns the parts of the OCI error answer.
func (e *Error) OCIError() (status int, code, message string, retryAfter time.Duration) {
	return e.Status, e.Code, e.Message, e.RetryAfter
}

// retryFetch is the Retry-After of a pull that waited for its fetch as long as it may.
const retryFetch = 10 * time.Second

func notMirrored(src *source, path string) *Error {
	return &Error{Status: http.StatusNotFound, Code: "NAME_UNKNOWN",
		Message: fmt.Sprintf("%s/%s is not mirrored: no glob of the gateway's mirrors entry for %s (repositories) matches %s; ask the platform team to add it",
			src.Registry, path, src.Registry, path)}
}

func stillFetching(src *source, path, ref string, waited time.Duration) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: "UNAVAILABLE", RetryAfter: retryFetch,
		Message: fmt.Sprintf("%s/%s%s is still being fetched from %s and checked (waited %s); retry in %s, nothing needs to change",
			src.Registry, path, refSuffix(ref), src.Registry, waited.Round(time.Millisecond), retryFetch)}
}

func sourceUnavailable(src *source, path, ref string, err error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: "UNAVAILABLE", RetryAfter: time.Minute,
		Message: fmt.Sprintf("%s/%s%s is not on-prem yet and cannot be fetched from %s now: %v; retry later",
			src.Registry, path, refSuffix(ref), src.Registry, err)}
}

func unknownAtSource(src *source, path, ref string) *Error {
	return &Error{Status: http.StatusNotFound, Code: "MANIFEST_UNKNOWN",
		Message: fmt.Sprintf("%s/%s%s does not exist at %s", src.Registry, path, refSuffix(ref), src.Registry)}
}

func refSuffix(ref string) string {
	if len(ref) > 7 && ref[:7] == "sha256:" {
		return "@" + ref
	}
	return ":" + ref
}
