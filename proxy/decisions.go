package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/policy"
)

// DecisionsPath is where the decisions API is served on every door, outside /v2/.
const DecisionsPath = "/portcullis/v1/decisions/"

// Querier answers what the gate would decide on a request without acting on it. The gate
// given with WithGate provides the decisions API when it is also a Querier.
type Querier interface {
	Query(ctx context.Context, req gate.Request) gate.Result
}

// recordKeeper is a gate that also answers which decisions it recorded about an image
// (found by type assertion, like Querier).
type recordKeeper interface {
	Recorded(ctx context.Context, repo, digest string, limit int) ([]gate.RecordedDecision, error)
}

// recordedShown is how many recorded decisions a report lists.
const recordedShown = 20

// manifestAccept is every manifest media type a decision may be asked about.
var manifestAccept = strings.Join([]string{
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
}, ", ")

// Decisions returns the handler of the decisions API: GET DecisionsPath<repo>@<digest> or
// <repo>:<tag>, with optional ?action=pull|push (default pull), answers with the decision
// the gate would make for that image on the door the request came through, as a
// DecisionReport. The manifest is read from the upstream with the client's own
// Authorization, as a pull reads it: a client the upstream refuses gets the upstream's
// challenge and learns nothing else, not even whether the image exists.
func (p *Proxy) Decisions() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rid := requestID(r)
		w.Header().Set("X-Request-Id", rid)
		rep, err := p.decide(r, rid)
		status, verdict := http.StatusOK, ""
		if err != nil {
			var e *Error
			if errors.As(err, &e) {
				status = e.Status
			} else {
				status = http.StatusInternalServerError
			}
			writeError(w, r, err)
		} else {
			verdict = rep.Verdict
			writeJSON(w, http.StatusOK, rep)
		}
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelWarn
		}
		p.log.LogAttrs(r.Context(), level, "request",
			slog.String("request_id", rid),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.String("route", "decisions"),
			slog.Int("status", status),
			slog.String("verdict", verdict),
			slog.Duration("duration", time.Since(start)),
			slog.String("client", r.RemoteAddr),
		)
	})
}

// decide answers one decisions API request.
func (p *Proxy) decide(r *http.Request, rid string) (*DecisionReport, error) {
	if r.Method != http.MethodGet {
		e := errorf(http.StatusMethodNotAllowed, CodeUnsupported, "the decisions API answers GET only, not %s", r.Method)
		e.Header = http.Header{"Allow": {http.MethodGet}}
		return nil, e
	}
	q, ok := p.gate.(Querier)
	if !ok {
		return nil, errorf(http.StatusNotFound, CodeUnsupported, "this gateway applies no policy, so it has no decisions to report")
	}
	route, action, err := parseDecisionRequest(r)
	if err != nil {
		return nil, err
	}
	ctx := withRequest(r.Context(), requestInfo{id: rid, route: route, host: r.Host, method: http.MethodGet})
	body, dgst, err := p.readManifest(r.WithContext(ctx), route)
	if err != nil {
		return nil, err
	}
	res := q.Query(ctx, gateRequest(r, action, route, dgst, body, rid))
	if res.Challenge != nil {
		return nil, challengeError(res.Challenge, res.Message)
	}
	rep := newDecisionReport(rid, route, action, dgst, res)
	if rk, ok := p.gate.(recordKeeper); ok {
		// Only a client the upstream let read the manifest gets here.
		rows, err := rk.Recorded(ctx, route.Name, dgst, recordedShown)
		if err != nil {
			rep.RecordedError = err.Error()
		}
		rep.Recorded = rows
	}
	return rep, nil
}

// parseDecisionRequest reads the image and action of a decisions API request. The query
// string takes action only: the environment is the door's, never the client's to choose.
func parseDecisionRequest(r *http.Request) (Route, policy.Action, error) {
	rest, _ := strings.CutPrefix(r.URL.Path, DecisionsPath)
	var name, ref string
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		name, ref = rest[:i], rest[i+1:]
	} else if i := strings.LastIndexByte(rest, ':'); i > strings.LastIndexByte(rest, '/') {
		name, ref = rest[:i], rest[i+1:]
	} else {
		return Route{}, "", errorf(http.StatusBadRequest, CodeUnsupported,
			"%q names no tag or digest: ask about %s<repository>:<tag> or %s<repository>@<digest>", rest, DecisionsPath, DecisionsPath)
	}
	if strings.Contains(ref, "@") || strings.Contains(name, "@") {
		return Route{}, "", errorf(http.StatusBadRequest, CodeUnsupported, "%q: name either a tag or a digest, not both", rest)
	}
	if err := ValidateName(name); err != nil {
		return Route{}, "", err
	}
	if err := validateReference(ref); err != nil {
		return Route{}, "", err
	}
	action := policy.ActionPull
	for k, vs := range r.URL.Query() {
		if k != "action" {
			return Route{}, "", errorf(http.StatusBadRequest, CodeUnsupported,
				"unknown query parameter %q: the decisions API takes only action=pull|push (the environment is the door's)", k)
		}
		if len(vs) != 1 {
			return Route{}, "", errorf(http.StatusBadRequest, CodeUnsupported, "action is given %d times; give it once", len(vs))
		}
		switch vs[0] {
		case string(policy.ActionPull), string(policy.ActionPush):
			action = policy.Action(vs[0])
		default:
			return Route{}, "", errorf(http.StatusBadRequest, CodeUnsupported, "action %q: want pull or push", vs[0])
		}
	}
	return Route{Kind: KindManifest, Name: name, Reference: ref}, action, nil
}

// readManifest reads the manifest of route from the upstream with the client's own
// Authorization, the way a pull reads it, and checks its digest. Refusals keep the
// upstream's status and challenge; a missing manifest is MANIFEST_UNKNOWN.
func (p *Proxy) readManifest(r *http.Request, route Route) ([]byte, string, error) {
	u := *p.upstream
	u.Path = p.upstream.Path + "/v2/" + route.Name + "/manifests/" + route.Reference
	u.RawPath, u.RawQuery = "", ""
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Accept", manifestAccept)
	if a := r.Header.Get("Authorization"); a != "" {
		req.Header.Set("Authorization", a)
	}
	if ua := r.Header.Get("User-Agent"); ua != "" {
		req.Header.Set("User-Agent", ua)
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		req.Header.Set("X-Forwarded-For", host)
	}
	req.Header.Set("X-Request-Id", requestIDFrom(r.Context()))
	resp, err := p.rp.Transport.RoundTrip(req)
	if err != nil {
		if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
			return nil, "", err
		}
		return nil, "", upstreamError(p.upstream.Host, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, "", challengeError(&gate.Challenge{Status: resp.StatusCode, WWWAuthenticate: resp.Header.Get("WWW-Authenticate")},
			"the upstream registry refused these credentials for "+route.Name)
	case resp.StatusCode == http.StatusNotFound:
		return nil, "", errorf(http.StatusNotFound, CodeManifestUnknown, "%s:%s is not in the upstream registry", route.Name, route.Reference)
	case resp.StatusCode != http.StatusOK:
		return nil, "", errorf(http.StatusBadGateway, CodeUnavailable, "upstream registry %s answered %d for the manifest", p.upstream.Host, resp.StatusCode)
	}
	tooBig := func() *Error {
		return errorf(http.StatusBadGateway, CodeManifestInvalid,
			"upstream manifest for %s:%s is larger than this gateway's limit of %d bytes", route.Name, route.Reference, p.maxManifest)
	}
	if resp.ContentLength > p.maxManifest {
		return nil, "", tooBig()
	}
	body, err := readCapped(resp.Body, p.maxManifest, tooBig)
	if err != nil {
		return nil, "", err
	}
	got, err := checkManifestDigest(body, route, resp.Header.Get("Docker-Content-Digest"))
	if err != nil {
		return nil, "", err
	}
	return body, got.String(), nil
}

// challengeError relays an upstream authentication challenge as an OCI UNAUTHORIZED (or
// DENIED, for 403) error with the upstream's status and WWW-Authenticate.
func challengeError(c *gate.Challenge, msg string) *Error {
	code := CodeUnauthorized
	if c.Status == http.StatusForbidden {
		code = CodeDenied
	}
	e := errorf(c.Status, code, "%s", msg)
	if c.WWWAuthenticate != "" {
		e.Header = http.Header{"WWW-Authenticate": {c.WWWAuthenticate}}
	}
	return e
}
