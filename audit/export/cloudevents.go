package export

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/audit/ocsf"
)

// SignatureHeader carries the HMAC-SHA256 signature of a CloudEvents request body:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>". The timestamp is inside
// the MAC so a receiver can refuse old requests (replays); v1 names the scheme so another
// can be added beside it later.
const SignatureHeader = "Portcullis-Signature"

// CloudEventsContentType is the structured-mode JSON media type of CloudEvents 1.0.
const CloudEventsContentType = "application/cloudevents+json"

// CloudEventsConfig configures a CloudEvents HTTP sink.
type CloudEventsConfig struct {
	// URL receives one POST per message.
	URL string
	// Source is the CloudEvents source attribute (default "portcullis").
	Source string
	// Secret keys the signature header.
	Secret []byte
	// Encoding of the data attribute (native by default).
	Encoding Encoding
	// ProductVersion is the gateway's version, for OCSF metadata.
	ProductVersion string
	// TLS is the client TLS configuration for an https URL (nil: system defaults).
	TLS *tls.Config
	// Timeout bounds each request (default 10s).
	Timeout time.Duration
	// Now is the clock of the signature timestamp (default time.Now).
	Now func() time.Time
}

// CloudEvents posts each message as one CloudEvents 1.0 event in structured mode.
type CloudEvents struct {
	cfg    CloudEventsConfig
	client *http.Client
	enc    encoder
}

// NewCloudEvents returns the sender for cfg.
func NewCloudEvents(cfg CloudEventsConfig) (*CloudEvents, error) {
	if cfg.URL == "" {
		return nil, errors.New("cloudevents: url required")
	}
	if len(cfg.Secret) == 0 {
		return nil, errors.New("cloudevents: secret required (the signature key)")
	}
	if cfg.Source == "" {
		cfg.Source = "portcullis"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &CloudEvents{cfg: cfg, client: newHTTPClient(cfg.TLS, cfg.Timeout), enc: encoder{encoding: cfg.Encoding, ocsf: ocsf.Encoder{ProductVersion: cfg.ProductVersion}}}, nil
}

// cloudEvent is the structured-mode envelope.
type cloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject,omitempty"`
	Time            string          `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	DataSchema      string          `json:"dataschema,omitempty"`
	Data            json.RawMessage `json:"data"`
}

// CloudEventType is the type attribute of a message of kind (an event type, or "ocsf."
// and an OCSF class name): "dev.portcullis.<kind>.v1".
func CloudEventType(kind string) string { return "dev.portcullis." + kind + ".v1" }

// Send posts each item's messages; 400, 413, 415 and 422 reject the item for good, any
// other non-2xx answer (401/403 included: a fixed credential delivers them) is retried.
func (c *CloudEvents) Send(ctx context.Context, items []Item) (int, error) {
	for i, it := range items {
		ps, err := c.enc.payloads(it)
		if err != nil {
			return i, Rejected(err)
		}
		for _, p := range ps {
			ce := cloudEvent{
				SpecVersion: "1.0", ID: p.ID, Source: c.cfg.Source, Type: CloudEventType(p.Kind),
				Subject: ocsf.Subject(it.Event), Time: it.Event.Time.UTC().Format(time.RFC3339Nano),
				DataContentType: "application/json", Data: p.Body,
			}
			if name, ok := strings.CutPrefix(p.Kind, "ocsf."); ok {
				ce.DataSchema = "https://schema.ocsf.io/" + ocsf.Version + "/classes/" + name
			}
			body, err := json.Marshal(ce)
			if err != nil {
				return i, Rejected(err)
			}
			h := http.Header{"Content-Type": {CloudEventsContentType}}
			h.Set(SignatureHeader, Sign(c.cfg.Secret, c.cfg.Now(), body))
			code, msg, retryAfter, err := post(ctx, c.client, c.cfg.URL, body, h)
			switch {
			case err != nil:
				return i, fmt.Errorf("cloudevents: %w", err)
			case code >= 200 && code < 300:
			case code == http.StatusBadRequest || code == http.StatusRequestEntityTooLarge || code == http.StatusUnsupportedMediaType || code == http.StatusUnprocessableEntity:
				return i, Rejected(statusError(c.cfg.URL, code, msg))
			default:
				return i, withRetryAfter(statusError(c.cfg.URL, code, msg), code, retryAfter)
			}
		}
	}
	return len(items), nil
}

// Sign returns the SignatureHeader value for body sent at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature checks a SignatureHeader value against body: one of its v1 signatures
// must match, and its timestamp must be within tolerance of now. Receivers can use it as
// the reference of the scheme.
func VerifySignature(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("signature header: %q is not key=value", part)
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("signature header: missing or bad t")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("signature timestamp %s is outside the %s tolerance", time.Unix(sec, 0).UTC().Format(time.RFC3339), tolerance)
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts + "."))
	m.Write(body)
	want := m.Sum(nil)
	for _, s := range sigs {
		got, err := hex.DecodeString(s)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("signature does not match")
}
