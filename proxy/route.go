package proxy

import (
	"net/http"
	"regexp"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Kind is which part of the /v2/ API a request addresses.
type Kind int

// The routes of the OCI distribution API.
const (
	KindBase        Kind = iota + 1 // /v2/
	KindCatalog                     // /v2/_catalog
	KindTags                        // /v2/<name>/tags/list
	KindManifest                    // /v2/<name>/manifests/<reference>
	KindBlob                        // /v2/<name>/blobs/<digest>
	KindUploadStart                 // /v2/<name>/blobs/uploads/
	KindUpload                      // /v2/<name>/blobs/uploads/<id>
	KindReferrers                   // /v2/<name>/referrers/<digest>
)

var kindNames = map[Kind]string{
	KindBase: "base", KindCatalog: "catalog", KindTags: "tags", KindManifest: "manifest",
	KindBlob: "blob", KindUploadStart: "upload_start", KindUpload: "upload", KindReferrers: "referrers",
}

// String names the route for logs and metrics.
func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return "unknown"
}

// Route is a parsed /v2/ request path.
type Route struct {
	Kind Kind
	// Name is the repository name (empty for base and catalog).
	Name string
	// Reference is the manifest tag or digest, or the blob/referrers digest.
	Reference string
	// UploadID is the upload session id of KindUpload.
	UploadID string
}

// IsDigest reports whether the route's reference is a digest rather than a tag.
func (r Route) IsDigest() bool { return strings.Contains(r.Reference, ":") }

// MaxNameLength is the longest repository name accepted, as distribution enforces.
const MaxNameLength = 255

var (
	nameComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$`)
	tagPattern    = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
)

// ParseRoute parses a URL path under /v2/ from its tail, since repository names contain
// '/'. It validates the name, tag and digest syntax and returns an *Error on failure.
func ParseRoute(path string) (Route, error) {
	if path == "/v2" || path == "/v2/" {
		return Route{Kind: KindBase}, nil
	}
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		return Route{}, errorf(http.StatusNotFound, CodeUnsupported, "%q is not part of the registry API (/v2/)", path)
	}
	if rest == "_catalog" {
		return Route{Kind: KindCatalog}, nil
	}
	segs := strings.Split(rest, "/")
	n := len(segs)
	tail := func(i int) string { return segs[n-i] }
	var r Route
	var nameSegs int // segments before the route's own suffix
	switch {
	case n >= 3 && tail(2) == "tags" && tail(1) == "list":
		r.Kind, nameSegs = KindTags, n-2
	case n >= 3 && tail(2) == "manifests":
		r.Kind, r.Reference, nameSegs = KindManifest, tail(1), n-2
	case n >= 4 && tail(3) == "blobs" && tail(2) == "uploads":
		r.Kind, r.UploadID, nameSegs = KindUpload, tail(1), n-3
		if r.UploadID == "" {
			r.Kind = KindUploadStart
		}
	case n >= 3 && tail(2) == "blobs" && tail(1) == "uploads":
		r.Kind, nameSegs = KindUploadStart, n-2
	case n >= 3 && tail(2) == "blobs":
		r.Kind, r.Reference, nameSegs = KindBlob, tail(1), n-2
	case n >= 3 && tail(2) == "referrers":
		r.Kind, r.Reference, nameSegs = KindReferrers, tail(1), n-2
	default:
		return Route{}, errorf(http.StatusNotFound, CodeUnsupported, "%q is not a registry API route", path)
	}
	r.Name = strings.Join(segs[:nameSegs], "/")
	if err := ValidateName(r.Name); err != nil {
		return Route{}, err
	}
	switch r.Kind {
	case KindManifest:
		if err := validateReference(r.Reference); err != nil {
			return Route{}, err
		}
	case KindBlob, KindReferrers:
		if err := validateDigest(r.Reference); err != nil {
			return Route{}, err
		}
	}
	return r, nil
}

// ValidateName checks a repository name against the OCI distribution grammar.
func ValidateName(name string) error {
	if name == "" {
		return errorf(http.StatusBadRequest, CodeNameInvalid, "repository name is empty")
	}
	if len(name) > MaxNameLength {
		return errorf(http.StatusBadRequest, CodeNameInvalid, "repository name is %d characters long; the limit is %d", len(name), MaxNameLength)
	}
	for _, c := range strings.Split(name, "/") {
		if !nameComponent.MatchString(c) {
			return errorf(http.StatusBadRequest, CodeNameInvalid,
				"invalid repository name %q: component %q must be lowercase letters and digits, separated by '.', '_', '__' or '-'", name, c)
		}
	}
	return nil
}

func validateReference(ref string) error {
	if strings.Contains(ref, ":") {
		return validateDigest(ref)
	}
	if !tagPattern.MatchString(ref) {
		return errorf(http.StatusBadRequest, CodeTagInvalid,
			"invalid tag %q: a tag is 1 to 128 characters of [A-Za-z0-9_.-], not starting with '.' or '-'", ref)
	}
	return nil
}

func validateDigest(s string) error {
	if _, err := digest.Parse(s); err != nil {
		return errorf(http.StatusBadRequest, CodeDigestInvalid, "invalid digest %q: %v", s, err)
	}
	return nil
}
