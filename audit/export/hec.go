package export

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/audit/ocsf"
)

// HECPath is the Splunk HTTP Event Collector endpoint for JSON events.
const HECPath = "/services/collector/event"

// HECConfig configures a Splunk HEC sink.
type HECConfig struct {
	// URL is the collector's base URL (HECPath is added when it has no path) or the full
	// endpoint URL.
	URL string
	// Token is the HEC token, sent as "Authorization: Splunk <token>".
	Token string
	// Index, Source and SourceType go into each event's envelope; Source defaults to
	// "portcullis", SourceType to "portcullis:<event type>" (native) or "ocsf:<class>".
	Index, Source, SourceType string
	// Host is the envelope's host (default: this machine's hostname).
	Host string
	// Encoding of the event field (native by default).
	Encoding Encoding
	// ProductVersion is the gateway's version, for OCSF metadata.
	ProductVersion string
	// TLS is the client TLS configuration for an https URL (nil: system defaults).
	TLS *tls.Config
	// Timeout bounds each request (default 10s).
	Timeout time.Duration
}

// HEC posts batches of events to a Splunk HTTP Event Collector.
type HEC struct {
	cfg    HECConfig
	url    string
	client *http.Client
	enc    encoder
}

// NewHEC returns the sender for cfg.
func NewHEC(cfg HECConfig) (*HEC, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("splunk: bad url %q", cfg.URL)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = HECPath
	}
	if cfg.Token == "" {
		return nil, errors.New("splunk: token required")
	}
	if cfg.Source == "" {
		cfg.Source = "portcullis"
	}
	if cfg.Host == "" {
		cfg.Host, _ = os.Hostname()
	}
	return &HEC{cfg: cfg, url: u.String(), client: newHTTPClient(cfg.TLS, cfg.Timeout), enc: encoder{encoding: cfg.Encoding, ocsf: ocsf.Encoder{ProductVersion: cfg.ProductVersion}}}, nil
}

// hecEvent is HEC's event envelope.
type hecEvent struct {
	Time       float64           `json:"time"`
	Host       string            `json:"host,omitempty"`
	Source     string            `json:"source"`
	SourceType string            `json:"sourcetype"`
	Index      string            `json:"index,omitempty"`
	Event      json.RawMessage   `json:"event"`
	Fields     map[string]string `json:"fields"`
}

// hecAnswer is HEC's response body.
type hecAnswer struct {
	Text string `json:"text"`
	Code int    `json:"code"`
}

// Send posts all items in one request (HEC takes concatenated envelopes). HTTP 400 (bad
// data: HEC codes 5, 6, 12, 13...) and 413 reject the batch (the sink then sends its items
// one by one and drops the one refused); 401/403 (token invalid or disabled), 404, 429,
// 5xx and network errors are retried, keeping the events.
func (h *HEC) Send(ctx context.Context, items []Item) (int, error) {
	var body bytes.Buffer
	for i, it := range items {
		ps, err := h.enc.payloads(it)
		if err != nil {
			if i == 0 {
				return 0, Rejected(err)
			}
			items = items[:i] // send what encodes; the next batch starts with this one
			break
		}
		for _, p := range ps {
			st := h.cfg.SourceType
			if st == "" {
				st = "portcullis:" + p.Kind
				if name, ok := strings.CutPrefix(p.Kind, "ocsf."); ok {
					st = "ocsf:" + name
				}
			}
			env := hecEvent{
				Time: float64(it.Event.Time.UnixMilli()) / 1000, Host: h.cfg.Host, Source: h.cfg.Source,
				SourceType: st, Index: h.cfg.Index, Event: p.Body, Fields: map[string]string{"portcullis_id": p.ID},
			}
			b, err := json.Marshal(env)
			if err != nil {
				return 0, Rejected(err)
			}
			body.Write(b)
			body.WriteByte('\n')
		}
	}
	hdr := http.Header{"Content-Type": {"application/json"}, "Authorization": {"Splunk " + h.cfg.Token}}
	code, msg, retryAfter, err := post(ctx, h.client, h.url, body.Bytes(), hdr)
	if err != nil {
		return 0, fmt.Errorf("splunk: %w", err)
	}
	var a hecAnswer
	_ = json.Unmarshal([]byte(msg), &a)
	switch {
	case code == http.StatusOK:
		return len(items), nil
	case code == http.StatusBadRequest || code == http.StatusRequestEntityTooLarge:
		return 0, Rejected(fmt.Errorf("splunk: HTTP %d, HEC code %d: %s", code, a.Code, a.Text))
	}
	return 0, withRetryAfter(fmt.Errorf("splunk: HTTP %d, HEC code %d: %s", code, a.Code, a.Text), code, retryAfter)
}
