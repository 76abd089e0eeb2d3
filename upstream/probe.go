package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// ServiceAccountError is the upstream refusing the gateway's own reads: it requires
// authentication and no service account is configured, or it refused the one that is.
// It does not clear by itself: an operator must act.
type ServiceAccountError struct {
	// Configured: a service account was configured, and refused.
	Configured bool
	// User is the configured service account's user name.
	User string
	// Status is the upstream's (or its token realm's) HTTP status.
	Status int
}

// Error says what to do first, then what the upstream answered.
func (e *ServiceAccountError) Error() string {
	if !e.Configured {
		return fmt.Sprintf("upstream requires authentication: configure upstream.serviceAccount, the gateway's own identity for reading image configurations, signatures and layers (the upstream answered %d %s)",
			e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("upstream refused upstream.serviceAccount (user %q): check its username, password and read rights (the upstream answered %d %s)",
		e.User, e.Status, http.StatusText(e.Status))
}

// probeScope is the scope the probe asks a token realm for: one that needs no repository
// name, so that a realm refusing the service account's credentials shows at once.
const probeScope = "registry:catalog:*"

// CheckServiceAccount probes whether the upstream lets the gateway's own reads in, as c
// makes them (with the service account of WithServiceAccount, or none): GET /v2/, and
// when that answers 401 with a Bearer challenge, a token for a catalog scope from the
// challenge's realm and GET /v2/ with it. A refusal is a *ServiceAccountError; failing to
// reach the upstream is another error (the upstream check reports that).
func (c *Client) CheckServiceAccount(ctx context.Context) error {
	sa, _ := c.rt.(*serviceAccount)
	next, user, pass := c.rt, "", ""
	if sa != nil {
		next, user, pass = sa.next, sa.user, sa.pass
	}
	refused := func(status int) error {
		return &ServiceAccountError{Configured: user != "", User: user, Status: status}
	}
	status, challenges, err := c.probe(ctx, next, func(r *http.Request) {
		if user != "" {
			r.SetBasicAuth(user, pass)
		}
	})
	switch {
	case err != nil:
		return err
	case status == http.StatusOK:
		return nil
	case status == http.StatusForbidden:
		return refused(status)
	case status != http.StatusUnauthorized:
		return fmt.Errorf("probing the upstream's /v2/: %d %s", status, http.StatusText(status))
	}
	ch, bearer := bearerChallenge(challenges)
	if !bearer || sa == nil {
		// Basic auth refused, or a token challenge that the gateway's reads never answer
		// (without a service account they fetch no tokens).
		return refused(status)
	}
	tok, err := sa.fetchToken(ctx, map[string]string{"realm": ch["realm"], "service": ch["service"]}, probeScope)
	if err != nil {
		var ae *AuthError
		if errors.As(err, &ae) {
			return refused(ae.Status)
		}
		return err
	}
	status, _, err = c.probe(ctx, next, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) })
	switch {
	case err != nil:
		return err
	case status == http.StatusOK:
		return nil
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return refused(status)
	}
	return fmt.Errorf("probing the upstream's /v2/ with a token: %d %s", status, http.StatusText(status))
}

// probe sends GET /v2/ through rt, authorised by auth, and returns the status and the
// WWW-Authenticate challenges.
func (c *Client) probe(ctx context.Context, rt http.RoundTripper, auth func(*http.Request)) (int, []string, error) {
	u := *c.base
	u.Path += "/v2/"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, nil, err
	}
	auth(req)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return 0, nil, fmt.Errorf("probing the upstream's /v2/: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Values("WWW-Authenticate"), nil
}
