package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// Ping asks the upstream's base endpoint whether it is there, as the gateway's service
// account when one is configured. Any answer below 500 (401 included) means reachable.
func (p *Proxy) Ping(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.upstream.String()+"/v2/", nil)
	if err != nil {
		return err
	}
	if p.service.Username != "" {
		req.SetBasicAuth(p.service.Username, p.service.Password)
	}
	resp, err := p.rp.Transport.RoundTrip(req)
	if err != nil {
		return upstreamError(p.upstream.Host, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		return fmt.Errorf("upstream registry %s answered %s", p.upstream.Host, resp.Status)
	}
	return nil
}
