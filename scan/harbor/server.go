package harbor

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/portcullis-dev/portcullis/scan/match"
)

// ImageScanner scans one pulled image; Builtin is one.
type ImageScanner interface {
	ScanImage(ctx context.Context, img v1.Image) (ImageResult, error)
	DatabaseUpdated() (time.Time, error)
}

// Server serves the adapter API (GET /api/v1/metadata, POST /api/v1/scan,
// GET /api/v1/scan/{id}/report) with an ImageScanner: a scan request is answered at once
// with an id, the artifact is pulled from the request's registry with the request's
// Authorization and scanned in the background, and the report is kept, in memory, for
// reportTTL after it is done.
type Server struct {
	scanner      ImageScanner
	info         Scanner
	refreshAfter time.Duration
	scanTimeout  time.Duration
	transport    http.RoundTripper
	maxJobs      int
	// registries, when set, are the only registries (scheme://host) scans may pull from.
	registries map[string]bool
	// auth is what callers must present (WithAuth); zero: nothing.
	auth ServerAuth

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu   sync.Mutex
	jobs map[string]*job
}

// job is one scan request and, once done, its report or error.
type job struct {
	req      ScanRequest
	done     bool
	finished time.Time
	report   Report
	err      string
}

// reportTTL is how long a finished scan's report is kept.
const reportTTL = time.Hour

// maxRequestBytes caps a scan request's body.
const maxRequestBytes = 1 << 20

// ServerOption sets an optional setting of a Server.
type ServerOption func(*Server)

// WithRefreshAfter sets the Refresh-After a running scan's report answers with (whole
// seconds, at least 1; default 5 s).
func WithRefreshAfter(d time.Duration) ServerOption { return func(s *Server) { s.refreshAfter = d } }

// WithScannerInfo sets the scanner's name, vendor and version in metadata and reports.
func WithScannerInfo(sc Scanner) ServerOption { return func(s *Server) { s.info = sc } }

// WithPullTransport sets the transport artifacts are pulled with.
func WithPullTransport(rt http.RoundTripper) ServerOption {
	return func(s *Server) { s.transport = rt }
}

// WithScanTimeout bounds one scan, pull included (default 10 minutes).
func WithScanTimeout(d time.Duration) ServerOption { return func(s *Server) { s.scanTimeout = d } }

// WithMaxScans bounds the scans kept at once, running or finished (default 1000).
func WithMaxScans(n int) ServerOption { return func(s *Server) { s.maxJobs = n } }

// WithAllowedRegistries restricts scans to registries at these base URLs (scheme and
// host:port compared; a path is ignored): a request naming another is refused with 422,
// so that the adapter cannot be made to fetch from anywhere its caller likes.
func WithAllowedRegistries(urls ...string) ServerOption {
	return func(s *Server) {
		s.registries = map[string]bool{}
		for _, u := range urls {
			if pu, err := url.Parse(u); err == nil {
				s.registries[pu.Scheme+"://"+strings.ToLower(pu.Host)] = true
			}
		}
	}
}

// NewServer serves scanner as an adapter.
func NewServer(scanner ImageScanner, opts ...ServerOption) *Server {
	s := &Server{scanner: scanner, info: Scanner{Name: "portcullis", Vendor: "portcullis", Version: "1"},
		refreshAfter: 5 * time.Second, scanTimeout: 10 * time.Minute, transport: http.DefaultTransport,
		maxJobs: 1000, jobs: map[string]*job{}}
	for _, o := range opts {
		o(s)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// Close stops the scans under way and waits for them.
func (s *Server) Close() {
	s.cancel()
	s.wg.Wait()
}

// ServeHTTP routes the adapter API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		s.unauthorized(w)
		return
	}
	p := r.URL.Path
	switch {
	case p == "/api/v1/metadata":
		if r.Method != http.MethodGet {
			writeError(w, http.StatusMethodNotAllowed, "GET only")
			return
		}
		s.metadata(w)
	case p == "/api/v1/scan":
		if r.Method != http.MethodPost {
			writeError(w, http.StatusMethodNotAllowed, "POST only")
			return
		}
		s.accept(w, r)
	case strings.HasPrefix(p, "/api/v1/scan/") && strings.HasSuffix(p, "/report"):
		if r.Method != http.MethodGet {
			writeError(w, http.StatusMethodNotAllowed, "GET only")
			return
		}
		id := strings.TrimSuffix(strings.TrimPrefix(p, "/api/v1/scan/"), "/report")
		s.report(w, r, id)
	default:
		writeError(w, http.StatusNotFound, "no such operation: "+r.Method+" "+p)
	}
}

// Metadata is what GET /api/v1/metadata answers.
func (s *Server) Metadata() Metadata {
	m := Metadata{
		Scanner: s.info,
		Capabilities: []Capability{{Type: "vulnerability",
			ConsumesMimeTypes: []string{MimeOCIManifest, MimeDockerManifest},
			ProducesMimeTypes: []string{MimeReport10, MimeReport11}}},
		Properties: map[string]string{"harbor.scanner-adapter/scanner-type": "os-package-vulnerability"},
	}
	if t, err := s.scanner.DatabaseUpdated(); err == nil {
		m.Properties[PropertyDBUpdatedAt] = t.UTC().Format(time.RFC3339)
	}
	return m
}

func (s *Server) metadata(w http.ResponseWriter) {
	writeJSON(w, http.StatusOK, MimeMetadata, s.Metadata())
}

// validate checks a scan request's fields, naming the first one wrong.
func validate(req ScanRequest) error {
	if req.Registry.URL == "" {
		return errors.New("missing registry.url")
	}
	u, err := url.Parse(req.Registry.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("invalid registry.url %q: want an http or https base URL", req.Registry.URL)
	}
	if req.Artifact.Repository == "" {
		return errors.New("missing artifact.repository")
	}
	if _, err := name.NewRepository(u.Host+"/"+req.Artifact.Repository, name.StrictValidation); err != nil {
		return fmt.Errorf("invalid artifact.repository %q: %v", req.Artifact.Repository, err)
	}
	if req.Artifact.Digest == "" {
		return errors.New("missing artifact.digest")
	}
	if _, err := v1.NewHash(req.Artifact.Digest); err != nil {
		return fmt.Errorf("invalid artifact.digest %q: %v", req.Artifact.Digest, err)
	}
	if _, err := authenticator(req.Registry.Authorization); err != nil {
		return err
	}
	return nil
}

// consumable reports whether the artifact's media type (when given) is one the server scans.
func consumable(mt string) bool {
	return mt == "" || SameMediaType(mt, MimeOCIManifest) || SameMediaType(mt, MimeDockerManifest)
}

func (s *Server) accept(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBytes+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "reading scan request: "+err.Error())
		return
	}
	if len(body) > maxRequestBytes {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("scan request larger than %d bytes", maxRequestBytes))
		return
	}
	var req ScanRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "unmarshalling scan request: "+err.Error())
		return
	}
	if err := validate(req); err != nil {
		writeError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	if s.registries != nil {
		u, _ := url.Parse(req.Registry.URL)
		if !s.registries[u.Scheme+"://"+strings.ToLower(u.Host)] {
			writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("invalid registry.url %q: not a registry this adapter pulls from", req.Registry.URL))
			return
		}
	}
	if !consumable(req.Artifact.MimeType) {
		writeError(w, http.StatusNotImplemented, fmt.Sprintf("artifact.mime_type %q is not scanned: this scanner consumes %s and %s", req.Artifact.MimeType, MimeOCIManifest, MimeDockerManifest))
		return
	}
	id, err := newID()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "making a scan id: "+err.Error())
		return
	}
	j := &job{req: req}
	s.mu.Lock()
	s.evict(time.Now())
	if len(s.jobs) >= s.maxJobs {
		s.mu.Unlock()
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("%d scans are kept already: retry later", s.maxJobs))
		return
	}
	s.jobs[id] = j
	s.mu.Unlock()
	s.wg.Add(1)
	go s.run(id, j)
	writeJSON(w, http.StatusAccepted, MimeScanResponse, ScanResponse{ID: id})
}

// evict drops finished scans older than reportTTL; s.mu is held.
func (s *Server) evict(now time.Time) {
	for id, j := range s.jobs {
		if j.done && now.Sub(j.finished) > reportTTL {
			delete(s.jobs, id)
		}
	}
}

// run pulls and scans one artifact and keeps its report or error.
func (s *Server) run(id string, j *job) {
	defer s.wg.Done()
	ctx, cancel := context.WithTimeout(s.ctx, s.scanTimeout)
	defer cancel()
	rep, err := s.scan(ctx, j.req)
	s.mu.Lock()
	defer s.mu.Unlock()
	j.done, j.finished = true, time.Now()
	if err != nil {
		j.err = err.Error()
		return
	}
	j.report = rep
}

// scan pulls the artifact of req and scans it into a report.
func (s *Server) scan(ctx context.Context, req ScanRequest) (Report, error) {
	img, err := pull(ctx, req, s.transport)
	if err != nil {
		return Report{}, err
	}
	res, err := s.scanner.ScanImage(ctx, img)
	if err != nil {
		return Report{}, err
	}
	if res.Incomplete {
		return Report{}, fmt.Errorf("the scan of %s is incomplete: %s", req.Artifact.Digest, strings.Join(res.Reasons, "; "))
	}
	return buildReport(req.Artifact, s.info, res.Findings, time.Now()), nil
}

// authenticator turns an Authorization header value into credentials.
func authenticator(header string) (authn.Authenticator, error) {
	if header == "" {
		return authn.Anonymous, nil
	}
	scheme, value, _ := strings.Cut(header, " ")
	value = strings.TrimSpace(value)
	switch strings.ToLower(scheme) {
	case "basic":
		raw, err := base64.StdEncoding.DecodeString(value)
		if err != nil {
			return nil, fmt.Errorf("invalid registry.authorization: Basic credentials are not base64: %v", err)
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return nil, errors.New("invalid registry.authorization: Basic credentials are not user:password")
		}
		return &authn.Basic{Username: user, Password: pass}, nil
	case "bearer":
		if value == "" {
			return nil, errors.New("invalid registry.authorization: empty Bearer token")
		}
		return &authn.Bearer{Token: value}, nil
	}
	return nil, fmt.Errorf("invalid registry.authorization: scheme %q is neither Basic nor Bearer", scheme)
}

// pull reads the image req names from its registry with its Authorization.
func pull(ctx context.Context, req ScanRequest, rt http.RoundTripper) (v1.Image, error) {
	u, err := url.Parse(req.Registry.URL)
	if err != nil {
		return nil, err
	}
	var opts []name.Option
	if u.Scheme == "http" {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.NewDigest(u.Host+"/"+req.Artifact.Repository+"@"+req.Artifact.Digest, opts...)
	if err != nil {
		return nil, fmt.Errorf("artifact reference: %w", err)
	}
	auth, err := authenticator(req.Registry.Authorization)
	if err != nil {
		return nil, err
	}
	desc, err := remote.Get(ref, remote.WithContext(ctx), remote.WithAuth(auth), remote.WithTransport(rt))
	if err != nil {
		return nil, fmt.Errorf("pulling %s: %w", ref, err)
	}
	if desc.MediaType.IsIndex() {
		return nil, fmt.Errorf("%s is an image index: scan its platform manifests", ref)
	}
	img, err := desc.Image()
	if err != nil {
		return nil, fmt.Errorf("reading %s as an image: %w", ref, err)
	}
	return img, nil
}

// harborSeverity names a built-in severity in the spec's words.
func harborSeverity(s match.Severity) string {
	switch s {
	case match.SeverityNone:
		return "Negligible"
	case match.SeverityLow, match.SeverityMedium, match.SeverityHigh, match.SeverityCritical:
		return s.String()
	}
	return "Unknown"
}

// buildReport turns built-in findings into a report (1.1 fields included).
func buildReport(a Artifact, sc Scanner, findings []match.Finding, now time.Time) Report {
	rep := Report{GeneratedAt: now.UTC(), Artifact: Artifact{Repository: a.Repository, Digest: a.Digest, Tag: a.Tag, MimeType: a.MimeType},
		Scanner: sc, Severity: "Unknown", Vulnerabilities: []Vulnerability{}}
	highest := match.SeverityUnknown
	for _, f := range findings {
		attrs := map[string]any{"ecosystem": f.Ecosystem, "path": f.Package.Path}
		if len(f.Aliases) > 0 {
			attrs["aliases"] = f.Aliases
		}
		v := Vulnerability{ID: f.ID, Package: f.Package.Name, Version: f.Package.Version, FixVersion: f.Fixed,
			Severity: harborSeverity(f.Severity), Description: f.Summary,
			Links:            []string{"https://osv.dev/vulnerability/" + f.ID},
			VendorAttributes: attrs}
		if f.CVSSVector != "" && strings.HasPrefix(f.CVSSVector, "CVSS:3") {
			score := f.CVSS
			v.PreferredCVSS = &CVSS{ScoreV3: &score, VectorV3: f.CVSSVector}
		}
		if f.Severity > highest {
			highest = f.Severity
		}
		rep.Vulnerabilities = append(rep.Vulnerabilities, v)
	}
	if len(findings) > 0 {
		rep.Severity = harborSeverity(highest)
	}
	return rep
}

// as10 is the report as version 1.0 has it: without the 1.1 fields.
func as10(r Report) Report {
	out := r
	out.Vulnerabilities = make([]Vulnerability, len(r.Vulnerabilities))
	for i, v := range r.Vulnerabilities {
		v.PreferredCVSS, v.CVSS, v.CweIDs, v.VendorAttributes = nil, nil, nil, nil
		out.Vulnerabilities[i] = v
	}
	return out
}

// reportMediaType picks the report media type an Accept header asks for: 1.0 when it
// names none (as Harbor's first clients did), "" when it names only others.
func reportMediaType(accept string) string {
	accept = strings.TrimSpace(accept)
	if accept == "" || accept == "*/*" {
		return MimeReport10
	}
	for _, part := range splitAccept(accept) {
		switch {
		case SameMediaType(part, MimeReport11):
			return MimeReport11
		case SameMediaType(part, MimeReport10):
			return MimeReport10
		case strings.TrimSpace(part) == "*/*":
			return MimeReport10
		}
	}
	return ""
}

// splitAccept splits an Accept header into its media ranges (a comma inside a quoted
// parameter is not expected in these types).
func splitAccept(accept string) []string {
	parts := strings.Split(accept, ",")
	for i, p := range parts {
		// Drop a quality parameter: the first type the server knows wins.
		if k := strings.Index(p, ";q="); k >= 0 {
			p = p[:k]
		}
		parts[i] = strings.TrimSpace(p)
	}
	return parts
}

func (s *Server) report(w http.ResponseWriter, r *http.Request, id string) {
	mt := reportMediaType(r.Header.Get("Accept"))
	if mt == "" {
		writeError(w, http.StatusNotImplemented, fmt.Sprintf("no report of media type %q: this scanner produces %s and %s", r.Header.Get("Accept"), MimeReport11, MimeReport10))
		return
	}
	s.mu.Lock()
	j, ok := s.jobs[id]
	var done bool
	var rep Report
	var errMsg string
	if ok {
		done, rep, errMsg = j.done, j.report, j.err
	}
	s.mu.Unlock()
	switch {
	case !ok:
		writeError(w, http.StatusNotFound, "cannot find scan request: "+id)
	case !done:
		secs := int(s.refreshAfter.Round(time.Second) / time.Second)
		w.Header().Set("Refresh-After", strconv.Itoa(max(secs, 1)))
		w.WriteHeader(http.StatusFound)
	case errMsg != "":
		writeError(w, http.StatusInternalServerError, errMsg)
	case mt == MimeReport10:
		writeJSON(w, http.StatusOK, MimeReport10, as10(rep))
	default:
		writeJSON(w, http.StatusOK, MimeReport11, rep)
	}
}

// newID returns a random scan id.
func newID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// writeJSON answers with v as JSON of media type mt.
func writeJSON(w http.ResponseWriter, status int, mt string, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encoding the answer: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", mt)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeError answers with the spec's ErrorResponse.
func writeError(w http.ResponseWriter, status int, msg string) {
	var e ErrorResponse
	e.Error.Message = msg
	body, _ := json.Marshal(e)
	w.Header().Set("Content-Type", MimeError)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
