package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"unicode"

	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/policy"
)

// Gate decides whether a manifest may be stored or served.
type Gate interface {
	Admit(ctx context.Context, req gate.Request) gate.Result
	// TagsImmutable reports whether the gateway forbids moving tags of repo, so that a
	// tag's digest may be remembered.
	TagsImmutable(repo, host string) bool
	// TagStored tells the gate that the upstream stored digest under tag of repo.
	TagStored(ctx context.Context, repo, tag, digest string)
}

// WithGate sets the admission gate every manifest push and pull goes through. Without
// one, the proxy is a plain pass-through.
func WithGate(g Gate) Option { return func(s *settings) { s.gate = g } }

// admit asks the gate about one manifest and turns a refusal into an *Error. Warnings are
// added to h.
func (p *Proxy) admit(r *http.Request, action policy.Action, route Route, dgst string, body []byte, h http.Header) error {
	if p.gate == nil {
		return nil
	}
	info, _ := requestFrom(r.Context())
	res := p.gate.Admit(r.Context(), gateRequest(r, action, route, dgst, body, info.id))
	if res.Challenge != nil {
		e := errorf(res.Challenge.Status, CodeUnauthorized, "%s", res.Message)
		e.Header = http.Header{}
		if res.Challenge.WWWAuthenticate != "" {
			e.Header.Set("WWW-Authenticate", res.Challenge.WWWAuthenticate)
		}
		return e
	}
	// The decision's id is its audit event's requestId: a person with only a status line
	// (containerd) can find the record.
	h.Set(DecisionIDHeader, info.id)
	refusalHeader := func(e *Error) {
		if e.Header == nil {
			e.Header = http.Header{}
		}
		e.Header.Set(DecisionIDHeader, info.id)
		e.Reason = refusalReason(res)
	}
	switch {
	case res.Unavailable:
		// Could not decide, for a reason that clears by itself: retry.
		p.log.LogAttrs(r.Context(), slog.LevelWarn, "could not decide; refused until the check can run",
			slog.String("request_id", info.id), slog.String("repository", route.Name), slog.String("reference", route.Reference),
			slog.String("undecided", res.Undecided))
		e := errorf(http.StatusServiceUnavailable, CodeUnavailable, "%s", res.Message)
		if res.RetryAfter > 0 {
			e.Header = http.Header{"Retry-After": {strconv.Itoa(int(res.RetryAfter.Seconds()))}}
		}
		refusalHeader(e)
		return &gateRefusal{e}
	case res.Verdict == policy.VerdictDeny:
		if res.Lasting && onlyUnchecked(res.Decision.Denials()) {
			// Not the image's fault: the gateway cannot check until the platform team acts.
			p.log.LogAttrs(r.Context(), slog.LevelError, "could not decide; refused until the platform team acts",
				slog.String("request_id", info.id), slog.String("repository", route.Name), slog.String("reference", route.Reference),
				slog.String("undecided", res.Undecided))
		}
		e := &Error{Status: http.StatusForbidden, Code: CodeDenied, Message: res.Message, Detail: denialDetail(res)}
		refusalHeader(e)
		return &gateRefusal{e}
	}
	for _, w := range res.Warnings {
		h.Add("Warning", warningHeader(w))
	}
	return nil
}

// gateRefusal is the gate's refusal of a request: a denial, or "could not decide".
// It is logged where it is made, never as an upstream error (see Proxy.errorHandler).
type gateRefusal struct{ e *Error }

func (u *gateRefusal) Error() string { return u.e.Error() }
func (u *gateRefusal) Unwrap() error { return u.e }

// onlyUnchecked reports whether every denial is a rule that could not check (no rule that
// checked denies): the refusal is the gateway's "could not decide", not the image's fault.
func onlyUnchecked(denials []policy.Result) bool {
	for _, r := range denials {
		if r.CouldNotCheck == "" {
			return false
		}
	}
	return len(denials) > 0
}

// denialDetail is the machine-readable part of a denial, kept short because clients print
// it after the message: the environment and the ids of the rules that blocked.
func denialDetail(res gate.Result) any {
	rules := []string{}
	for _, r := range res.Decision.Denials() {
		rules = append(rules, r.Rule)
	}
	return map[string]any{"environment": res.Decision.Environment, "rules": rules}
}

// maxWarningText bounds each Warning header's text, well under the spec's limits.
const maxWarningText = 1000

// warningHeader formats text as an RFC 7234 warning with code 299 and agent "-", as the
// OCI distribution spec asks: printable ASCII, quotes and backslashes replaced, capped.
func warningHeader(text string) string {
	var b strings.Builder
	for _, r := range text {
		switch {
		case r == '"':
			b.WriteByte('\'')
		case r == '\\':
			b.WriteByte('/')
		case r > unicode.MaxASCII || !unicode.IsPrint(r):
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
		if b.Len() >= maxWarningText {
			break
		}
	}
	s := b.String()
	if len(s) > maxWarningText {
		s = s[:maxWarningText-3] + "..."
	}
	return `299 - "` + s + `"`
}

// gateRequest is what the gate is asked about r: the door's host decides the environment,
// the host the client used names the image in messages, and the client's own credentials
// are used for reads on its behalf.
func gateRequest(r *http.Request, action policy.Action, route Route, dgst string, body []byte, rid string) gate.Request {
	return gate.Request{
		Action:        action,
		Host:          doorHost(r),
		Address:       clientHost(r),
		Repository:    route.Name,
		Reference:     route.Reference,
		Digest:        dgst,
		Manifest:      body,
		Authorization: r.Header.Get("Authorization"),
		ClientAddr:    r.RemoteAddr,
		RequestID:     rid,
	}
}
