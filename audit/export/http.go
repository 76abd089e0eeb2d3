package export

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// newHTTPClient is a client for one HTTP destination.
func newHTTPClient(tc *tls.Config, timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // a SIEM is reached directly: the gateway is air-gapped by default
	tr.TLSClientConfig = tc
	return &http.Client{Transport: tr, Timeout: timeout, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse // a redirect is an answer, not a delivery
	}}
}

// RetryAfter is an error that says how long the destination asked to be left alone
// (HTTP Retry-After on 429 or 503): the sink waits at least that long, up to its retryMax.
type RetryAfter struct {
	Err  error
	Wait time.Duration
}

func (r *RetryAfter) Error() string { return r.Err.Error() + " (retry after " + r.Wait.String() + ")" }
func (r *RetryAfter) Unwrap() error { return r.Err }

// withRetryAfter wraps err with the wait a 429 or 503 answer's Retry-After (seconds) asks for.
func withRetryAfter(err error, code int, header string) error {
	if code != http.StatusTooManyRequests && code != http.StatusServiceUnavailable {
		return err
	}
	secs, perr := strconv.Atoi(strings.TrimSpace(header))
	if perr != nil || secs <= 0 {
		return err
	}
	return &RetryAfter{Err: err, Wait: time.Duration(min(secs, 86400)) * time.Second}
}

// post sends body and returns the status, (the start of) the response body and the
// Retry-After header.
func post(ctx context.Context, c *http.Client, url string, body []byte, header http.Header) (int, string, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, "", "", err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(bytes.TrimSpace(msg)), resp.Header.Get("Retry-After"), nil
}

// statusError describes a non-2xx answer.
func statusError(url string, code int, msg string) error {
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	return fmt.Errorf("POST %s: HTTP %d %s", url, code, msg)
}
