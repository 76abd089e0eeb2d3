package harbor

import (
	"bytes"
	"context"
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

	"github.com/portcullis-dev/portcullis/scan/inventory"
	"github.com/portcullis-dev/portcullis/scan/match"
)

// Store keeps mapped adapter findings; the cache package's stores are ones.
type Store interface {
	Get(ctx context.Context, key string) (value []byte, ok bool, err error)
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
}

// Client drives one scanner adapter: it reads the adapter's metadata (kept metadataTTL),
// asks for a scan of one artifact, polls for the report honouring Refresh-After (never
// following a redirect's Location, submitting again when the adapter forgot the scan,
// within one total bound), asks for the 1.1 report where the adapter produces it and for
// 1.0 otherwise, and maps the report to the built-in scanner's findings. With a Store,
// mapped findings are kept under (digest, scanner name and version, database date).
type Client struct {
	base           string
	http           *http.Client
	authorization  string
	store          Store
	findingsTTL    time.Duration
	metadataTTL    time.Duration
	defaultRefresh time.Duration
	bound          time.Duration
	maxSubmits     int

	mu     sync.Mutex
	meta   Metadata
	metaAt time.Time
}

// ClientOption sets an optional setting of a Client.
type ClientOption func(*Client)

// WithHTTPClient sets the HTTP client (its CheckRedirect is replaced: redirects are never followed).
func WithHTTPClient(hc *http.Client) ClientOption {
	return func(c *Client) { cp := *hc; c.http = &cp }
}

// WithAdapterAuthorization sets the Authorization header sent to the adapter itself
// (the spec's Basic or Bearer security scheme).
func WithAdapterAuthorization(v string) ClientOption {
	return func(c *Client) { c.authorization = v }
}

// WithStore keeps mapped findings in s for ttl.
func WithStore(s Store, ttl time.Duration) ClientOption {
	return func(c *Client) { c.store, c.findingsTTL = s, ttl }
}

// WithMetadataTTL sets how long metadata is kept before it is asked again (default 1 h).
func WithMetadataTTL(d time.Duration) ClientOption { return func(c *Client) { c.metadataTTL = d } }

// WithDefaultRefresh sets the wait between polls when a 302 has no usable Refresh-After
// (default 5 s).
func WithDefaultRefresh(d time.Duration) ClientOption {
	return func(c *Client) { c.defaultRefresh = d }
}

// WithBound bounds one Scan, submissions and polls together (default 10 minutes).
func WithBound(d time.Duration) ClientOption { return func(c *Client) { c.bound = d } }

// NewClient drives the adapter whose API is at baseURL (the spec's base: the URL up to
// and without /api/v1).
func NewClient(baseURL string, opts ...ClientOption) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("adapter URL %q: want an http or https URL", baseURL)
	}
	c := &Client{base: strings.TrimSuffix(baseURL, "/"), http: &http.Client{}, metadataTTL: time.Hour,
		defaultRefresh: 5 * time.Second, bound: 10 * time.Minute, maxSubmits: 3, findingsTTL: 7 * 24 * time.Hour}
	for _, o := range opts {
		o(c)
	}
	c.http.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c, nil
}

// Evidence is what an adapter found in one artifact, as the built-in scanner's findings.
type Evidence struct {
	// Scanner is the adapter's scanner.
	Scanner Scanner `json:"scanner"`
	// DBUpdatedAt is the scanner's database date from its metadata; zero when it gives none.
	DBUpdatedAt time.Time `json:"dbUpdatedAt,omitzero"`
	// ReportType is the media type of the report the findings came from.
	ReportType string `json:"reportType"`
	// GeneratedAt is when the adapter made the report.
	GeneratedAt time.Time `json:"generatedAt,omitzero"`
	// Findings are the report's vulnerabilities.
	Findings []match.Finding `json:"findings"`
}

// Provenance names the findings' source: the scanner, its version and database date.
func (e Evidence) Provenance() string {
	s := strings.TrimSpace(e.Scanner.Name + " " + e.Scanner.Version)
	if e.DBUpdatedAt.IsZero() {
		return s + " (database date unknown)"
	}
	return s + " (database " + e.DBUpdatedAt.UTC().Format(time.RFC3339) + ")"
}

// maxAnswerBytes caps a metadata or report body.
const maxAnswerBytes = 64 << 20

// evidenceVersion is the format version of stored Evidence.
const evidenceVersion = "1"

// Metadata returns the adapter's metadata, asking again once metadataTTL passed; when
// the adapter does not answer then, the metadata read before.
func (c *Client) Metadata(ctx context.Context) (Metadata, error) {
	c.mu.Lock()
	if !c.metaAt.IsZero() && time.Since(c.metaAt) < c.metadataTTL {
		m := c.meta
		c.mu.Unlock()
		return m, nil
	}
	c.mu.Unlock()
	resp, body, err := c.do(ctx, http.MethodGet, "/api/v1/metadata", MimeMetadata+", application/vnd.scanner.adapter.metadata+json; version=1.1", nil)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = answerError("metadata", resp, body)
	}
	if err != nil {
		// Metadata read before stays good enough to find kept findings: an adapter that
		// is down must not take the images it already scanned with it.
		c.mu.Lock()
		defer c.mu.Unlock()
		if !c.metaAt.IsZero() {
			return c.meta, nil
		}
		return Metadata{}, err
	}
	var m Metadata
	if err := json.Unmarshal(body, &m); err != nil {
		return Metadata{}, fmt.Errorf("adapter %s: metadata is not JSON: %w", c.base, err)
	}
	if m.Scanner.Name == "" {
		return Metadata{}, fmt.Errorf("adapter %s: metadata names no scanner (scanner.name)", c.base)
	}
	c.mu.Lock()
	c.meta, c.metaAt = m, time.Now()
	c.mu.Unlock()
	return m, nil
}

// CacheKey is where findings of digest by the scanner of m are kept.
func CacheKey(digest string, m Metadata) string {
	db := "unknown"
	if t := m.DBUpdatedAt(); !t.IsZero() {
		db = t.Format(time.RFC3339)
	}
	return "harbor/" + evidenceVersion + "/" + digest + "/" + url.PathEscape(m.Scanner.Name) + "@" + url.PathEscape(m.Scanner.Version) + "/" + db
}

// RegistryFor gives the registry an adapter pulls artifact a from, for one scan that
// lasts at most bound, and a function called when that scan ends (to revoke a credential
// made for it). It is called only when the adapter is really asked, not for kept findings.
type RegistryFor func(ctx context.Context, a Artifact, bound time.Duration) (reg Registry, done func(), err error)

// FixedRegistry is a RegistryFor that always gives reg.
func FixedRegistry(reg Registry) RegistryFor {
	return func(context.Context, Artifact, time.Duration) (Registry, func(), error) { return reg, func() {}, nil }
}

// Bound is how long one Scan may take, submissions and polls together (WithBound).
func (c *Client) Bound() time.Duration { return c.bound }

// Scan asks the adapter for the vulnerabilities of reg's artifact a (a.Digest required),
// or returns those kept for the same digest, scanner and database date. reg.URL is the
// registry the adapter pulls from, reg.Authorization its credential.
func (c *Client) Scan(ctx context.Context, reg Registry, a Artifact) (Evidence, error) {
	return c.ScanFrom(ctx, FixedRegistry(reg), a)
}

// ScanFrom is Scan with the registry given by from, asked only when the adapter scans.
func (c *Client) ScanFrom(ctx context.Context, from RegistryFor, a Artifact) (Evidence, error) {
	if a.Repository == "" || a.Digest == "" {
		return Evidence{}, errors.New("scanning with an adapter needs the artifact's repository and digest")
	}
	m, err := c.Metadata(ctx)
	if err != nil {
		return Evidence{}, err
	}
	var types []string
	if m.Produces(MimeReport11) {
		types = append(types, MimeReport11)
	}
	if m.Produces(MimeReport10) {
		types = append(types, MimeReport10)
	}
	if len(types) == 0 {
		return Evidence{}, fmt.Errorf("adapter %s (%s) produces neither vulnerability report (%s, %s)", c.base, m.Scanner.Name, MimeReport11, MimeReport10)
	}
	key := CacheKey(a.Digest, m)
	if c.store != nil {
		if raw, ok, err := c.store.Get(ctx, key); err == nil && ok {
			var ev Evidence
			if json.Unmarshal(raw, &ev) == nil {
				return ev, nil
			}
		}
	}
	reg, done, err := from(ctx, a, c.bound)
	if err != nil {
		return Evidence{}, fmt.Errorf("adapter %s: the registry to pull %s from: %w", c.base, a.Digest, err)
	}
	defer done()
	ctx, cancel := context.WithTimeout(ctx, c.bound)
	defer cancel()
	ev, err := c.scan(ctx, ScanRequest{Registry: reg, Artifact: a}, types)
	if err != nil {
		if ctx.Err() != nil && errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
			return Evidence{}, fmt.Errorf("adapter %s: no report of %s within %s: %w", c.base, a.Digest, c.bound, err)
		}
		return Evidence{}, err
	}
	ev.DBUpdatedAt = m.DBUpdatedAt()
	if c.store != nil {
		if raw, err := json.Marshal(ev); err == nil {
			_ = c.store.Set(ctx, key, raw, c.findingsTTL)
		}
	}
	return ev, nil
}

// scan submits req and polls its report, asking for types in order.
func (c *Client) scan(ctx context.Context, req ScanRequest, types []string) (Evidence, error) {
	id, err := c.submit(ctx, req)
	if err != nil {
		return Evidence{}, err
	}
	submits, ti := 1, 0
	for {
		resp, body, err := c.do(ctx, http.MethodGet, "/api/v1/scan/"+url.PathEscape(id)+"/report", types[ti], nil)
		if err != nil {
			return Evidence{}, err
		}
		switch {
		case resp.StatusCode == http.StatusOK:
			return c.evidence(req.Artifact, types[ti], resp, body)
		case resp.StatusCode == http.StatusFound:
			if err := sleep(ctx, c.refreshAfter(resp)); err != nil {
				return Evidence{}, err
			}
		case resp.StatusCode == http.StatusNotFound:
			if submits >= c.maxSubmits {
				return Evidence{}, fmt.Errorf("adapter %s forgot the scan of %s %d times", c.base, req.Artifact.Digest, submits)
			}
			if id, err = c.submit(ctx, req); err != nil {
				return Evidence{}, err
			}
			submits++
		case ti+1 < len(types) && (resp.StatusCode == http.StatusNotImplemented || resp.StatusCode == http.StatusNotAcceptable || resp.StatusCode == http.StatusBadRequest):
			ti++ // The adapter does not give this report after all: ask for the next.
		default:
			return Evidence{}, answerError("report of "+req.Artifact.Digest, resp, body)
		}
	}
}

// submit posts req and returns the scan's id.
func (c *Client) submit(ctx context.Context, req ScanRequest) (string, error) {
	payload, err := json.Marshal(req)
	if err != nil {
		return "", err
	}
	resp, body, err := c.do(ctx, http.MethodPost, "/api/v1/scan", MimeScanResponse, payload)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusAccepted {
		return "", answerError("scan of "+req.Artifact.Digest, resp, body)
	}
	var sr ScanResponse
	if err := json.Unmarshal(body, &sr); err != nil || sr.ID == "" {
		return "", fmt.Errorf("adapter %s: scan response without an id: %q", c.base, truncate(string(body), 200))
	}
	return sr.ID, nil
}

// refreshAfter reads a 302's Refresh-After (seconds), else the default.
func (c *Client) refreshAfter(resp *http.Response) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Refresh-After")))
	if err != nil || n < 1 {
		return c.defaultRefresh
	}
	return time.Duration(n) * time.Second
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// do sends one request to the adapter and reads the answer (capped).
func (c *Client) do(ctx context.Context, method, path, accept string, body []byte) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", accept)
	if body != nil {
		req.Header.Set("Content-Type", MimeScanRequest)
	}
	if c.authorization != "" {
		req.Header.Set("Authorization", c.authorization)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("adapter %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("adapter %s: reading %s %s: %w", c.base, method, path, err)
	}
	if len(b) > maxAnswerBytes {
		return nil, nil, fmt.Errorf("adapter %s: %s %s answered more than %d bytes", c.base, method, path, maxAnswerBytes)
	}
	return resp, b, nil
}

// answerError describes an unexpected answer, with the ErrorResponse's message if any.
func answerError(what string, resp *http.Response, body []byte) error {
	var e ErrorResponse
	msg := truncate(strings.TrimSpace(string(body)), 300)
	if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
		msg = e.Error.Message
	}
	return fmt.Errorf("adapter %s: %s: HTTP %d: %s", resp.Request.URL.Host, what, resp.StatusCode, msg)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// evidence reads a report answer for artifact a.
func (c *Client) evidence(a Artifact, asked string, resp *http.Response, body []byte) (Evidence, error) {
	rep, err := ParseReport(body)
	if err != nil {
		return Evidence{}, fmt.Errorf("adapter %s: report of %s: %w", c.base, a.Digest, err)
	}
	if rep.Artifact.Digest != "" && rep.Artifact.Digest != a.Digest {
		return Evidence{}, fmt.Errorf("adapter %s: asked for a report of %s, answered one of %s", c.base, a.Digest, rep.Artifact.Digest)
	}
	mt := resp.Header.Get("Content-Type")
	if mt == "" {
		mt = asked
	}
	return Evidence{Scanner: rep.Scanner, ReportType: mt, GeneratedAt: rep.GeneratedAt, Findings: Findings(rep)}, nil
}

// ParseReport reads a 1.0 or 1.1 vulnerability report.
func ParseReport(body []byte) (Report, error) {
	var rep Report
	if err := json.Unmarshal(body, &rep); err != nil {
		return Report{}, fmt.Errorf("not a vulnerability report: %w", err)
	}
	for i, v := range rep.Vulnerabilities {
		if v.ID == "" {
			return Report{}, fmt.Errorf("vulnerabilities[%d].id: required", i)
		}
		if v.Package == "" {
			return Report{}, fmt.Errorf("vulnerabilities[%d].package: required", i)
		}
	}
	return rep, nil
}

// Findings maps a report's vulnerabilities to the built-in scanner's findings: severity
// words as the built-in scanner reads them (Negligible is Low; an Unknown with a CVSS 3
// score takes the score's), CVSS 3 from preferred_cvss (or cvss), computed from the
// vector when the score is missing; an empty fix_version is no fix.
func Findings(rep Report) []match.Finding {
	out := make([]match.Finding, 0, len(rep.Vulnerabilities))
	for _, v := range rep.Vulnerabilities {
		f := match.Finding{
			Package:  inventory.Package{Name: v.Package, Version: v.Version},
			ID:       v.ID,
			Severity: match.ParseSeverity(v.Severity),
			Fixed:    v.FixVersion,
			Fixable:  v.FixVersion != "",
			Summary:  summary(v.Description),
		}
		if eco, ok := attribute(v.VendorAttributes, "ecosystem"); ok {
			f.Ecosystem = eco
			f.Package.Ecosystem = eco
		}
		cv := v.PreferredCVSS
		if cv == nil {
			cv = v.CVSS
		}
		if cv != nil {
			f.CVSSVector = cv.VectorV3
			if cv.ScoreV3 != nil {
				f.CVSS = *cv.ScoreV3
			} else if cv.VectorV3 != "" {
				if s, err := match.CVSS3BaseScore(cv.VectorV3); err == nil {
					f.CVSS = s
				}
			}
		}
		if f.Severity == match.SeverityUnknown && f.CVSS > 0 {
			f.Severity = match.SeverityFromScore(f.CVSS)
		}
		out = append(out, f)
	}
	return out
}

// summary is the first line of a description, at most 300 bytes.
func summary(desc string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(desc), "\n")
	return truncate(line, 300)
}

// attribute reads a string vendor attribute, given as an object or a key/value list.
func attribute(attrs any, key string) (string, bool) {
	switch a := attrs.(type) {
	case map[string]any:
		s, ok := a[key].(string)
		return s, ok
	case []any:
		for _, kv := range a {
			if m, ok := kv.(map[string]any); ok && m["key"] == key {
				s, ok := m["value"].(string)
				return s, ok
			}
		}
	}
	return "", false
}
