package config

import (
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the gateway's whole configuration. The zero value is not useful; start from
// Default and overlay a file, the environment and flags.
type Config struct {
	// Addr is the listen address of the default door, HOST:PORT; empty when Listeners
	// name every door.
	Addr string `yaml:"addr"`
	// DataDir holds the embedded registry's storage and other local state.
	DataDir string `yaml:"dataDir"`
	// Policy is a policy file path or a built-in policy name ("starter", "observe").
	Policy string `yaml:"policy"`
	// Upstream is the registry portcullis stands in front of. An empty URL starts the
	// embedded registry.
	Upstream Upstream `yaml:"upstream"`
	// TLS configures the default door; without a certificate it speaks plain HTTP.
	TLS TLS `yaml:"tls"`
	// Listeners are further doors, each with its own address, TLS and host (see Listener).
	Listeners []Listener `yaml:"listeners,omitempty"`
	// Admin is the operational listener (/metrics, detailed /readyz).
	Admin Admin `yaml:"admin"`
	// Limits caps what the gateway accepts.
	Limits Limits `yaml:"limits"`
	// Log configures the JSON log.
	Log Log `yaml:"log"`
	// Audit configures where decision events go.
	Audit Audit `yaml:"audit"`
	// Telemetry configures traces.
	Telemetry Telemetry `yaml:"telemetry"`
	// Cache configures where evidence (signature results, scan reports) is cached.
	Cache Cache `yaml:"cache"`
	// Scan configures vulnerability scanning.
	Scan Scan `yaml:"scan"`
	// Records configures the durable records store (see Records).
	Records Records `yaml:"records"`
	// Mirrors are the public registries mirrored on demand (pull-through).
	Mirrors []Mirror `yaml:"mirrors,omitempty"`
	// ShutdownTimeout is how long SIGTERM waits for in-flight requests (uploads) to finish.
	ShutdownTimeout Duration `yaml:"shutdownTimeout"`
}

// Upstream describes the registry behind the gateway.
type Upstream struct {
	// URL is the upstream's base URL, e.g. https://registry.internal:5000.
	URL string `yaml:"url"`
	// Timeout bounds connecting and waiting for response headers (not body transfer).
	Timeout Duration `yaml:"timeout"`
	// CAFile is a PEM bundle trusted for the upstream's TLS certificate.
	CAFile string `yaml:"caFile"`
	// InsecureSkipVerify disables upstream TLS verification (test setups only).
	InsecureSkipVerify bool `yaml:"insecureSkipVerify"`
	// MaxIdleConnsPerHost sizes the keep-alive pool to the upstream.
	MaxIdleConnsPerHost int `yaml:"maxIdleConnsPerHost"`
	// ServiceAccount is the gateway's own credential for its reads (signatures, blobs to
	// scan, readiness). Client requests always carry the client's own credentials.
	ServiceAccount Credentials `yaml:"serviceAccount"`
}

// Credentials is a basic-auth identity; the password may come from a file.
type Credentials struct {
	// Username for basic auth.
	Username string `yaml:"username"`
	// Password for basic auth; prefer PasswordFile.
	Password string `yaml:"password"`
	// PasswordFile holds the password (trailing newline trimmed).
	PasswordFile string `yaml:"passwordFile"`
}

// TLS names the listener's certificate and key files.
type TLS struct {
	// CertFile is a PEM certificate chain.
	CertFile string `yaml:"certFile"`
	// KeyFile is the PEM private key.
	KeyFile string `yaml:"keyFile"`
}

// Limits caps sizes the gateway accepts.
type Limits struct {
	// MaxManifestBytes caps manifest bodies in both directions.
	MaxManifestBytes int64 `yaml:"maxManifestBytes"`
}

// Log configures logging.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
}

// Audit configures where decision events go: the JSON log, and the SIEM sinks.
type Audit struct {
	// Path is a file to append JSON events to; "-" or "stdout" writes to standard output;
	// empty means "<dataDir>/audit.log".
	Path string `yaml:"path"`
	// Sinks export every event to SIEMs as well, each through its own spool (see AuditSink).
	Sinks []AuditSink `yaml:"sinks,omitempty"`
	// SpoolDir holds the sinks' spools, one directory per sink; empty means
	// "<dataDir>/audit-spool".
	SpoolDir string `yaml:"spoolDir"`
	// FlushTimeout bounds how long shutdown keeps delivering what the sinks have spooled
	// (the rest goes out on the next start); 0 means 10s.
	FlushTimeout Duration `yaml:"flushTimeout"`
}

// Telemetry configures OpenTelemetry traces.
type Telemetry struct {
	// OTLPEndpoint, e.g. http://collector:4318, enables OTLP/HTTP trace export. The standard
	// OTEL_EXPORTER_OTLP_ENDPOINT variable works too.
	OTLPEndpoint string `yaml:"otlpEndpoint"`
}

// Scan configures vulnerability scanning.
type Scan struct {
	// DB is the directory `portcullis db import` writes the offline vulnerability database
	// to; empty means "<dataDir>/vulndb".
	DB string `yaml:"db"`
	// MaxDBAge is the age past which /readyz and the log warn that the database is stale.
	MaxDBAge Duration `yaml:"maxDBAge"`
	// PullWait is how long the first pull of an image the gateway has not scanned waits for
	// the scan; past it the environment's fail mode answers (closed: retry later, open:
	// allow with a warning) while the scan goes on.
	PullWait Duration `yaml:"pullWait"`
	// Adapters are external scanners (Harbor scanner adapters) that policy environments
	// may choose by name (`scanner:`).
	Adapters []ScanAdapter `yaml:"adapters,omitempty"`
	// AdapterRegistry is the registry the adapters pull images from: its URL as they reach
	// it and the read-only credential they pull with.
	AdapterRegistry AdapterRegistry `yaml:"adapterRegistry"`
	// AdapterAPI serves the built-in scanner as a Harbor scanner adapter on the admin
	// listener (/api/v1/...).
	AdapterAPI AdapterAPI `yaml:"adapterAPI"`
}

// AdapterAPI configures the built-in scanner's Harbor scanner adapter API.
type AdapterAPI struct {
	// Registries are the base URLs of the registries scans may pull from (Harbor's core
	// URL); none turns the API off.
	Registries []string `yaml:"registries,omitempty"`
	// Auth is what callers (Harbor's scanner registration) must present.
	Auth AdapterAPIAuth `yaml:"auth"`
}

// AdapterAPIAuth is the credential the adapter API requires: a Bearer token, a Basic
// user and password, or both (either is accepted). Secrets come from a file or an
// environment variable, never the config file itself. Without any, the API is served only
// on a loopback admin address, or with AllowUnauthenticated.
type AdapterAPIAuth struct {
	// BearerTokenFile holds the Bearer token (trailing newline trimmed).
	BearerTokenFile string `yaml:"bearerTokenFile"`
	// BearerTokenEnv names an environment variable holding the Bearer token.
	BearerTokenEnv string `yaml:"bearerTokenEnv"`
	// Username is the Basic user.
	Username string `yaml:"username"`
	// PasswordFile holds the Basic password (trailing newline trimmed).
	PasswordFile string `yaml:"passwordFile"`
	// PasswordEnv names an environment variable holding the Basic password.
	PasswordEnv string `yaml:"passwordEnv"`
	// AllowUnauthenticated serves the API without a credential on a non-loopback admin
	// address: only where the network lets nothing but Harbor reach it.
	AllowUnauthenticated bool `yaml:"allowUnauthenticated"`
}

// Enabled reports whether a credential is configured.
func (a AdapterAPIAuth) Enabled() bool {
	return a.BearerTokenFile != "" || a.BearerTokenEnv != "" || a.Username != ""
}

// ScanAdapter is one external scanner adapter.
type ScanAdapter struct {
	// Name is how environments choose it: lower-case letters, digits and '-'.
	Name string `yaml:"name"`
	// URL is the adapter's base URL (without /api/v1).
	URL string `yaml:"url"`
	// Credentials are sent to the adapter itself (Basic), when it asks for them.
	Credentials Credentials `yaml:"credentials"`
	// Timeout bounds one scan, submission and polls together; 0 means 10 minutes.
	Timeout Duration `yaml:"timeout"`
}

// AdapterRegistry is where scanner adapters pull from.
type AdapterRegistry struct {
	// Mode is AdapterRegistryGateway (the default without Credentials) or
	// AdapterRegistryDirect (the default with them).
	Mode string `yaml:"mode"`
	// URL is the registry's base URL as the adapters reach it: in gateway mode a door of
	// this gateway, in direct mode the upstream (or another registry holding the images).
	URL string `yaml:"url"`
	// Scheme is how a gateway-mode credential is sent: "basic" (the default) or "bearer"
	// (the same token; for upstreams answering with a Bearer challenge, whose token realm
	// adapters would otherwise take a Basic credential to).
	Scheme string `yaml:"scheme"`
	// Credentials are, in direct mode, the read-only credential the adapters pull with
	// (Basic; a robot account); none means anonymous.
	Credentials Credentials `yaml:"credentials"`
}

// Modes of AdapterRegistry.
const (
	// AdapterRegistryGateway: the adapters pull through the gateway, each scan with a
	// credential of its own, minted for that one image and revoked when the scan ends.
	AdapterRegistryGateway = "gateway"
	// AdapterRegistryDirect: the adapters pull from URL with Credentials.
	AdapterRegistryDirect = "direct"
)

// EffectiveMode is Mode, or the default it stands for when empty.
func (a AdapterRegistry) EffectiveMode() string {
	switch {
	case a.Mode != "":
		return a.Mode
	case a.Credentials.Username != "":
		return AdapterRegistryDirect
	}
	return AdapterRegistryGateway
}

// Cache configures the evidence cache: in memory always, shared through Redis when
// addresses are given.
type Cache struct {
	// MemoryBytes bounds the in-memory cache (and Redis fallback).
	MemoryBytes int64 `yaml:"memoryBytes"`
	// Timeout bounds each Redis call; past it the gateway serves from memory.
	Timeout Duration `yaml:"timeout"`
	// Redis is the shared cache; no addresses means memory only.
	Redis Redis `yaml:"redis"`
	// Near is the in-process copy of the hot path's immutable facts kept in front of Redis.
	Near Near `yaml:"near"`
}

// Near configures the near cache: with Redis, each replica keeps copies of manifests, tag
// memos and access memos in process memory, dropped across replicas through Redis pub/sub
// when they change, so a warm pull needs no Redis round trip.
type Near struct {
	// MaxBytes bounds the copies; 0 turns the near cache off.
	MaxBytes int64 `yaml:"maxBytes"`
	// MaxAge bounds how long a copy is served without reading Redis again.
	MaxAge Duration `yaml:"maxAge"`
}

// Redis names a Redis server, Sentinel group or Cluster.
type Redis struct {
	// Addrs are host:port addresses: one server, the Sentinels, or Cluster nodes.
	Addrs []string `yaml:"addrs,omitempty"`
	// MasterName selects Sentinel mode: Addrs are then the Sentinels.
	MasterName string `yaml:"masterName"`
	// Cluster selects Redis Cluster mode: Addrs are seed nodes (one is enough). Several
	// addresses without MasterName also mean a Cluster.
	Cluster bool `yaml:"cluster"`
	// SentinelPassword authenticates to the Sentinels, when they require it.
	SentinelPassword string `yaml:"sentinelPassword"`
	// Username for Redis ACLs.
	Username string `yaml:"username"`
	// Password; prefer PasswordFile.
	Password string `yaml:"password"`
	// PasswordFile holds the password.
	PasswordFile string `yaml:"passwordFile"`
	// DB is the database number (single server and Sentinel).
	DB int `yaml:"db"`
	// TLS connects with TLS.
	TLS bool `yaml:"tls"`
}

// Default returns the configuration used when nothing else is given: listen on :5000,
// the admin endpoints on 127.0.0.1:9090, the embedded registry under ./data, the starter
// policy.
func Default() Config {
	return Config{
		Addr:    ":5000",
		Admin:   Admin{Addr: DefaultAdminAddr},
		DataDir: "data",
		Policy:  "starter",
		Upstream: Upstream{
			Timeout:             Duration(30 * time.Second),
			MaxIdleConnsPerHost: 256,
		},
		Limits:          Limits{MaxManifestBytes: 4 << 20},
		Log:             Log{Level: "info"},
		Cache:           Cache{MemoryBytes: 256 << 20, Timeout: Duration(500 * time.Millisecond), Near: Near{MaxBytes: 64 << 20, MaxAge: Duration(time.Minute)}},
		Scan:            Scan{MaxDBAge: Duration(7 * 24 * time.Hour), PullWait: Duration(20 * time.Second)},
		Records:         Records{Retention: DefaultRetention},
		ShutdownTimeout: Duration(5 * time.Minute),
	}
}

// Duration is a time.Duration written as "30s", "5m" in YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (e.g. 30s, 5m)", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Std returns the time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }
