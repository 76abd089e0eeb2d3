package export

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
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

// post sends body and returns the status and (the start of) the response body.
func post(ctx context.Context, c *http.Client, url string, body []byte, header http.Header) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(bytes.TrimSpace(msg)), nil
}

// statusError describes a non-2xx answer.
func statusError(url string, code int, msg string) error {
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	return fmt.Errorf("POST %s: HTTP %d %s", url, code, msg)
}
