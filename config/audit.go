package config

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"time"
)

// AuditSink is one SIEM destination of decision events. Every sink has its own bounded
// spool on disk: events are delivered at least once, in order, with retries.
type AuditSink struct {
	// Name identifies the sink in metrics and logs and names its spool directory:
	// lowercase letters, digits, '.', '_' and '-'.
	Name string `yaml:"name"`
	// Type is cloudevents (CloudEvents 1.0 over HTTP, structured JSON, signed), splunk
	// (HTTP Event Collector) or syslog (RFC 5424 over TCP or TLS, octet-counted).
	Type string `yaml:"type"`
	// URL is where cloudevents and splunk sinks POST (for splunk the collector's base URL;
	// /services/collector/event is added when it has no path).
	URL string `yaml:"url"`
	// Address is a syslog collector's HOST:PORT.
	Address string `yaml:"address"`
	// TLS configures the connection: for an https URL, or (with enabled) syslog over TLS.
	TLS SinkTLS `yaml:"tls"`
	// Encoding is native (the audit log's JSON, the default) or ocsf (OCSF 1.3.0 records).
	Encoding string `yaml:"encoding"`
	// Secret is the HMAC key of a cloudevents sink or the token of a splunk sink.
	Secret Secret `yaml:"secret"`
	// Source is the CloudEvents source (default "portcullis") or the HEC source.
	Source string `yaml:"source"`
	// Index and SourceType go into a splunk sink's envelopes (the token's defaults when
	// empty; sourcetype defaults to portcullis:<event type> or ocsf:<class>).
	Index      string `yaml:"index"`
	SourceType string `yaml:"sourcetype"`
	// Facility of a syslog sink's messages (default audit).
	Facility string `yaml:"facility"`
	// Types limits the sink to these event types (decision, query, exception.expiring);
	// empty sends all.
	Types []string `yaml:"types,omitempty"`
	// SpoolBytes bounds the sink's spool; past it the oldest events are dropped and
	// counted. 0 means 64 MiB.
	SpoolBytes int64 `yaml:"spoolBytes"`
	// BatchSize is how many events one request carries at most (splunk, syslog); 0 means 100.
	BatchSize int `yaml:"batchSize"`
	// Timeout bounds each request or connection; 0 means 10s.
	Timeout Duration `yaml:"timeout"`
	// RetryMin and RetryMax bound the exponential backoff between failed attempts
	// (with jitter); 0 means 1s and 5m.
	RetryMin Duration `yaml:"retryMin"`
	RetryMax Duration `yaml:"retryMax"`
}

// SinkTLS configures a sink's TLS client.
type SinkTLS struct {
	// Enabled turns TLS on for a syslog sink (RFC 5425); HTTP sinks use an https URL.
	Enabled bool `yaml:"enabled"`
	// CAFile is a PEM bundle trusted for the destination (system roots when empty).
	CAFile string `yaml:"caFile"`
	// CertFile and KeyFile are a client certificate and key, for mutual TLS.
	CertFile string `yaml:"certFile"`
	KeyFile  string `yaml:"keyFile"`
	// ServerName overrides the name checked in the destination's certificate.
	ServerName string `yaml:"serverName"`
	// InsecureSkipVerify turns certificate checks off (test setups only).
	InsecureSkipVerify bool `yaml:"insecureSkipVerify"`
}

func (t SinkTLS) set() bool {
	return t.Enabled || t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "" || t.InsecureSkipVerify
}

// Secret is read from a file (trailing newline trimmed) or an environment variable, never
// written in the config file itself.
type Secret struct {
	// File holds the secret.
	File string `yaml:"file"`
	// Env names the environment variable holding it.
	Env string `yaml:"env"`
}

// Sink types.
const (
	SinkCloudEvents = "cloudevents"
	SinkSplunk      = "splunk"
	SinkSyslog      = "syslog"
)

// Defaults of AuditSink's zero fields.
const (
	DefaultSinkSpoolBytes = 64 << 20
	DefaultSinkBatchSize  = 100
	DefaultSinkTimeout    = Duration(10 * time.Second)
	DefaultSinkRetryMin   = Duration(time.Second)
	DefaultSinkRetryMax   = Duration(5 * time.Minute)
	DefaultFlushTimeout   = Duration(10 * time.Second)
)

// WithDefaults returns s with its zero sizes and durations replaced by the defaults.
func (s AuditSink) WithDefaults() AuditSink {
	if s.SpoolBytes == 0 {
		s.SpoolBytes = DefaultSinkSpoolBytes
	}
	if s.BatchSize == 0 {
		s.BatchSize = DefaultSinkBatchSize
	}
	if s.Timeout == 0 {
		s.Timeout = DefaultSinkTimeout
	}
	if s.RetryMin == 0 {
		s.RetryMin = DefaultSinkRetryMin
	}
	if s.RetryMax == 0 {
		s.RetryMax = max(DefaultSinkRetryMax, s.RetryMin)
	}
	if s.Encoding == "" {
		s.Encoding = "native"
	}
	if s.Facility == "" && s.Type == SinkSyslog {
		s.Facility = "audit"
	}
	return s
}

// SinkSpoolDir is the spool directory of the sink named name.
func (c Config) SinkSpoolDir(name string) string {
	dir := c.Audit.SpoolDir
	if dir == "" {
		dir = filepath.Join(c.DataDir, "audit-spool")
	}
	return filepath.Join(dir, name)
}

// AuditFlushTimeout is Audit.FlushTimeout or its default.
func (c Config) AuditFlushTimeout() time.Duration {
	if c.Audit.FlushTimeout == 0 {
		return DefaultFlushTimeout.Std()
	}
	return c.Audit.FlushTimeout.Std()
}

// SyslogFacilities are the facility names a syslog sink accepts (RFC 5424 section 6.2.1).
var SyslogFacilities = []string{"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
	"authpriv", "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"}

var (
	sinkName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	envName  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// validateAudit reports the audit section's problems.
func (c Config) validateAudit(add func(path, format string, args ...any)) {
	a := c.Audit
	if a.FlushTimeout < 0 {
		add("audit.flushTimeout", "must not be negative")
	}
	if len(a.Sinks) > 0 && a.SpoolDir == "" && c.DataDir == "" {
		add("audit.spoolDir", "required when audit.sinks are set and dataDir is empty (each sink spools its events there)")
	}
	names := map[string]int{}
	for i, s := range a.Sinks {
		p := fmt.Sprintf("audit.sinks[%d]", i)
		switch {
		case s.Name == "":
			add(p+".name", "required")
		case !sinkName.MatchString(s.Name):
			add(p+".name", "%q: use lowercase letters, digits, '.', '_' and '-' (it names the spool directory)", s.Name)
		default:
			if j, ok := names[s.Name]; ok {
				add(p+".name", "%q is already the name of audit.sinks[%d]", s.Name, j)
			} else {
				names[s.Name] = i
			}
		}
		s.validate(p, add)
	}
}

func (s AuditSink) validate(p string, add func(path, format string, args ...any)) {
	httpSink := s.Type == SinkCloudEvents || s.Type == SinkSplunk
	switch {
	case s.Type == "":
		add(p+".type", "required: cloudevents, splunk or syslog")
		return
	case !httpSink && s.Type != SinkSyslog:
		add(p+".type", "want cloudevents, splunk or syslog, got %q", s.Type)
		return
	}
	if httpSink {
		u, err := url.Parse(s.URL)
		switch {
		case s.URL == "":
			add(p+".url", "required for a %s sink", s.Type)
		case err != nil:
			add(p+".url", "not a URL: %v", err)
		case u.Scheme != "http" && u.Scheme != "https":
			add(p+".url", "scheme must be http or https, got %q", u.Scheme)
		case u.Host == "":
			add(p+".url", "missing host")
		case u.User != nil:
			add(p+".url", "must not carry credentials (use secret)")
		case u.Scheme == "http" && s.TLS.set():
			add(p+".tls", "TLS settings need an https url")
		}
		if s.Address != "" {
			add(p+".address", "only for syslog sinks (a %s sink takes url)", s.Type)
		}
		if s.TLS.Enabled {
			add(p+".tls.enabled", "only for syslog sinks (use an https url)")
		}
		switch {
		case s.Secret.File == "" && s.Secret.Env == "" && s.Type == SinkCloudEvents:
			add(p+".secret", "required: the HMAC-SHA256 key that signs each request (file or env)")
		case s.Secret.File == "" && s.Secret.Env == "":
			add(p+".secret", "required: the HEC token (file or env)")
		case s.Secret.File != "" && s.Secret.Env != "":
			add(p+".secret", "set file or env, not both")
		case s.Secret.Env != "" && !envName.MatchString(s.Secret.Env):
			add(p+".secret.env", "%q is not an environment variable name", s.Secret.Env)
		}
		if s.Facility != "" {
			add(p+".facility", "only for syslog sinks")
		}
		if _, err := url.Parse(s.Source); s.Type == SinkCloudEvents && err != nil {
			add(p+".source", "the CloudEvents source must be a URI reference (e.g. //portcullis/prod-eu): %v", err)
		}
	} else {
		if s.Address == "" {
			add(p+".address", "required for a syslog sink: HOST:PORT")
		} else if _, _, err := net.SplitHostPort(s.Address); err != nil {
			add(p+".address", "want HOST:PORT: %v", err)
		}
		if s.URL != "" {
			add(p+".url", "only for cloudevents and splunk sinks (a syslog sink takes address)")
		}
		if s.Secret.File != "" || s.Secret.Env != "" {
			add(p+".secret", "a syslog sink has no secret (use tls with a client certificate)")
		}
		if s.Source != "" {
			add(p+".source", "only for cloudevents and splunk sinks")
		}
		if s.Facility != "" && !slices.Contains(SyslogFacilities, s.Facility) {
			add(p+".facility", "%q is not a syslog facility (kern, user, ..., audit, local0-local7)", s.Facility)
		}
		if s.TLS.set() && !s.TLS.Enabled {
			add(p+".tls.enabled", "required with other tls settings")
		}
	}
	if s.Type != SinkSplunk {
		if s.Index != "" {
			add(p+".index", "only for splunk sinks")
		}
		if s.SourceType != "" {
			add(p+".sourcetype", "only for splunk sinks")
		}
	}
	if (s.TLS.CertFile == "") != (s.TLS.KeyFile == "") {
		add(p+".tls", "certFile and keyFile go together")
	}
	switch s.Encoding {
	case "", "native", "ocsf":
	default:
		add(p+".encoding", "want native or ocsf, got %q", s.Encoding)
	}
	for j, t := range s.Types {
		switch {
		case t != "decision" && t != "query" && t != "exception.expiring":
			add(fmt.Sprintf("%s.types[%d]", p, j), "want decision, query or exception.expiring, got %q", t)
		case slices.Contains(s.Types[:j], t):
			add(fmt.Sprintf("%s.types[%d]", p, j), "%s listed twice", t)
		}
	}
	if s.SpoolBytes != 0 && s.SpoolBytes < 1<<20 {
		add(p+".spoolBytes", "must be 0 (64 MiB) or at least 1048576, got %d", s.SpoolBytes)
	}
	if s.BatchSize < 0 || s.BatchSize > 10000 {
		add(p+".batchSize", "must be between 0 (100) and 10000, got %d", s.BatchSize)
	}
	if s.Timeout < 0 {
		add(p+".timeout", "must not be negative")
	}
	if s.RetryMin < 0 {
		add(p+".retryMin", "must not be negative")
	}
	if s.RetryMax < 0 {
		add(p+".retryMax", "must not be negative")
	}
	if s.RetryMin > 0 && s.RetryMax > 0 && s.RetryMax < s.RetryMin {
		add(p+".retryMax", "must not be less than retryMin (%s)", time.Duration(s.RetryMin))
	}
}
