package export

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/audit/ocsf"
)

// SDID is the structured data id of the syslog messages' parameters. 32473 is the private
// enterprise number RFC 5612 reserves for documentation and examples; portcullis has no
// number of its own.
const SDID = "portcullis@32473"

// Facilities by name (RFC 5424 section 6.2.1).
var Facilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
	"uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "audit": 13, "alert": 14, "clock": 15,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

// SyslogConfig configures an RFC 5424 syslog sink over TCP or TLS.
type SyslogConfig struct {
	// Address is the collector's HOST:PORT.
	Address string
	// TLS, when set, speaks TLS (RFC 5425) instead of plain TCP.
	TLS *tls.Config
	// Facility is the messages' facility (default 13, log audit).
	Facility *int
	// Hostname is the HOSTNAME field (default: this machine's hostname).
	Hostname string
	// Encoding of the MSG part (native JSON by default).
	Encoding Encoding
	// ProductVersion is the gateway's version, for OCSF metadata.
	ProductVersion string
	// Timeout bounds connecting and each batch's writes (default 10s).
	Timeout time.Duration
}

// Syslog writes RFC 5424 messages with octet-counting framing (RFC 6587 section 3.4.1) on
// one kept-open TCP or TLS connection. TCP has no application acknowledgement: a batch
// counts as delivered once written; on a write error the connection is dropped and the
// whole batch is sent again (receivers de-duplicate by the id parameter).
type Syslog struct {
	cfg  SyslogConfig
	enc  encoder
	pid  string
	mu   sync.Mutex
	conn net.Conn
}

// NewSyslog returns the sender for cfg.
func NewSyslog(cfg SyslogConfig) (*Syslog, error) {
	if _, _, err := net.SplitHostPort(cfg.Address); err != nil {
		return nil, fmt.Errorf("syslog: address: %w", err)
	}
	if cfg.Facility == nil {
		f := Facilities["audit"]
		cfg.Facility = &f
	}
	if *cfg.Facility < 0 || *cfg.Facility > 23 {
		return nil, fmt.Errorf("syslog: facility %d out of range 0-23", *cfg.Facility)
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	cfg.Hostname = printASCII(cfg.Hostname, 255)
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	return &Syslog{cfg: cfg, enc: encoder{encoding: cfg.Encoding, ocsf: ocsf.Encoder{ProductVersion: cfg.ProductVersion}}, pid: strconv.Itoa(os.Getpid())}, nil
}

// Send writes the items' messages; on any error the connection is closed and nothing of
// the batch counts as delivered.
func (s *Syslog) Send(ctx context.Context, items []Item) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var buf []byte
	for i, it := range items {
		ps, err := s.enc.payloads(it)
		if err != nil {
			if i == 0 {
				return 0, Rejected(err)
			}
			items = items[:i]
			break
		}
		for _, p := range ps {
			msg := s.format(it.Event, p)
			buf = strconv.AppendInt(buf, int64(len(msg)), 10)
			buf = append(buf, ' ')
			buf = append(buf, msg...)
		}
	}
	if s.conn != nil && s.closedByPeer() {
		// The collector hung up since the last batch (restart, idle timeout): reconnect
		// rather than write into a dead connection.
		s.conn.Close()
		s.conn = nil
	}
	if s.conn == nil {
		d := net.Dialer{Timeout: s.cfg.Timeout}
		var c net.Conn
		var err error
		if s.cfg.TLS != nil {
			td := tls.Dialer{NetDialer: &d, Config: s.cfg.TLS}
			c, err = td.DialContext(ctx, "tcp", s.cfg.Address)
		} else {
			c, err = d.DialContext(ctx, "tcp", s.cfg.Address)
		}
		if err != nil {
			return 0, fmt.Errorf("syslog: %w", err)
		}
		s.conn = c
	}
	deadline := time.Now().Add(s.cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = s.conn.SetWriteDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = s.conn.SetWriteDeadline(time.Unix(1, 0)) })
	_, err := s.conn.Write(buf)
	stop()
	if err == nil && s.closedByPeer() {
		err = errors.New("connection closed by the collector")
	}
	if err != nil {
		s.conn.Close()
		s.conn = nil
		return 0, fmt.Errorf("syslog: %w", err)
	}
	return len(items), nil
}

// closedByPeer reports whether the collector has closed the connection (a read that would
// otherwise block returns EOF at once): the batch just written may then be lost.
func (s *Syslog) closedByPeer() bool {
	_ = s.conn.SetReadDeadline(time.Now().Add(time.Millisecond))
	var b [1]byte
	_, err := s.conn.Read(b[:])
	_ = s.conn.SetReadDeadline(time.Time{})
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// Close closes the connection.
func (s *Syslog) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	return err
}

// SyslogSeverity maps an OCSF-style severity_id to a syslog severity: critical (5) →
// critical (2), high (4) → error (3), medium (3: denials, fail-mode decisions) → warning
// (4), low (2: warnings) → notice (5), informational (1: allowed) → informational (6).
func SyslogSeverity(severityID int) int {
	switch severityID {
	case 5, 6:
		return 2
	case 4:
		return 3
	case 3:
		return 4
	case 2:
		return 5
	}
	return 6
}

// format writes one RFC 5424 message:
// <PRI>1 TIMESTAMP HOSTNAME portcullis PROCID MSGID [portcullis@32473 ...] BOM MSG.
func (s *Syslog) format(e audit.Event, p payload) []byte {
	pri := *s.cfg.Facility*8 + SyslogSeverity(p.Severity)
	var b strings.Builder
	fmt.Fprintf(&b, "<%d>1 %s %s portcullis %s %s ", pri, e.Time.UTC().Format("2006-01-02T15:04:05.000000Z"),
		nilValue(s.cfg.Hostname), s.pid, nilValue(printASCII(p.Kind, 32)))
	b.WriteString("[" + SDID)
	for _, kv := range [][2]string{
		{"id", p.ID}, {"type", e.Type}, {"action", e.Action}, {"verdict", e.Verdict}, {"environment", e.Environment},
		{"repository", e.Repository}, {"digest", e.Digest}, {"requestId", e.RequestID},
	} {
		if kv[1] != "" {
			b.WriteString(" " + kv[0] + `="` + sdEscape(kv[1]) + `"`)
		}
	}
	b.WriteString("] \ufeff")
	b.Write(p.Body)
	return []byte(b.String())
}

func nilValue(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printASCII keeps the printable US-ASCII of s (header fields allow nothing else), at most n bytes.
func printASCII(s string, n int) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s) && len(out) < n; i++ {
		if s[i] >= 33 && s[i] <= 126 {
			out = append(out, s[i])
		}
	}
	return string(out)
}

// sdEscape escapes a PARAM-VALUE: '"', '\' and ']' take a backslash (RFC 5424 6.3.3).
func sdEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, `]`, `\]`).Replace(s)
}
