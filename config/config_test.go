package config_test

import (
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/portcullis-dev/portcullis/config"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func TestDefaultValidates(t *testing.T) {
	t.Parallel()
	if err := config.Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	d := config.Default()
	if d.Addr != ":5000" || d.Policy != "starter" || d.Upstream.URL != "" || d.DataDir == "" {
		t.Errorf("Default() = %+v: want :5000, the starter policy and the embedded registry", d)
	}
}

func TestLoadGood(t *testing.T) {
	t.Parallel()
	got, err := config.Load(filepath.Join("testdata", "good.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := config.Config{
		Addr:    "0.0.0.0:8443",
		DataDir: "/var/lib/portcullis",
		Policy:  "/etc/portcullis/policy.yaml",
		Upstream: config.Upstream{
			URL:                 "https://registry.internal:5000",
			Timeout:             config.Duration(45 * time.Second),
			CAFile:              "/etc/portcullis/upstream-ca.pem",
			MaxIdleConnsPerHost: 64,
			ServiceAccount:      config.Credentials{Username: "portcullis", PasswordFile: "/run/secrets/upstream-password"},
		},
		TLS: config.TLS{CertFile: "/etc/portcullis/tls.crt", KeyFile: "/etc/portcullis/tls.key"},
		Listeners: []config.Listener{
			{Name: "ci", Addr: "0.0.0.0:8444", Host: "ci.registry.example",
				TLS: config.TLS{CertFile: "/etc/portcullis/ci.crt", KeyFile: "/etc/portcullis/ci.key"}},
			{Name: "front", Addr: "127.0.0.1:8445", TrustForwardedHost: true},
		},
		Admin: config.Admin{Addr: "127.0.0.1:9191",
			TLS: config.TLS{CertFile: "/etc/portcullis/admin.crt", KeyFile: "/etc/portcullis/admin.key"}},
		Limits:          config.Limits{MaxManifestBytes: 8 << 20},
		Log:             config.Log{Level: "debug"},
		Audit:           config.Audit{Path: "stdout"},
		Telemetry:       config.Telemetry{OTLPEndpoint: "http://collector:4318"},
		Cache:           config.Default().Cache,
		Records:         config.Default().Records,
		Scan:            config.Default().Scan,
		ShutdownTimeout: config.Duration(150 * time.Second),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load(good.yaml) =\n%+v\nwant\n%+v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("good.yaml does not validate: %v", err)
	}
}

func TestLoadKeepsDefaults(t *testing.T) {
	t.Parallel()
	got, err := config.Load(filepath.Join("testdata", "partial.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := config.Default()
	want.Upstream.URL = "http://registry:5000"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load(partial.yaml) =\n%+v\nwant the defaults with only upstream.url set\n%+v", got, want)
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		want []string // substrings of the error
	}{
		{"unknown-field.yaml", []string{"unknown-field.yaml", "line 4", "timout"}},
		{"bad-duration.yaml", []string{"bad-duration.yaml", "line 2", `"soon" is not a duration`}},
	}
	for _, tt := range tests {
		_, err := config.Load(filepath.Join("testdata", tt.file))
		if err == nil {
			t.Errorf("Load(%s) succeeded", tt.file)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Load(%s) = %q, want it to mention %q", tt.file, err, w)
			}
		}
	}

	_, err := config.Load(filepath.Join("testdata", "does-not-exist.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing file = %v, want fs.ErrNotExist", err)
	}
}

// TestValidateBadFile loads a file full of mistakes and checks that Validate reports every
// one with its field path, exactly as in testdata/bad.golden (go test -update rewrites it).
func TestValidateBadFile(t *testing.T) {
	t.Parallel()
	ve := validateGolden(t, "bad.yaml", "bad.golden")
	want, _ := os.ReadFile(filepath.Join("testdata", "bad.golden"))
	lines := strings.Split(strings.TrimSpace(string(want)), "\n")
	if len(ve.Problems) != len(lines) {
		t.Errorf("%d problems, want %d", len(ve.Problems), len(lines))
	}
	for i, p := range ve.Problems {
		if i < len(lines) && p.Path+": "+p.Message != lines[i] {
			t.Errorf("problem %d = %+v, want %q", i, p, lines[i])
		}
	}
}

// validateGolden loads testdata/file, requires Validate to fail with a *ValidationError
// whose text is exactly testdata/golden (go test -update, or UPDATE_GOLDEN=1, rewrites
// it), and returns the error.
func validateGolden(t *testing.T, file, golden string) *config.ValidationError {
	t.Helper()
	cfg, err := config.Load(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.Validate()
	var ve *config.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Validate() = %v, want a *ValidationError", err)
	}
	got := err.Error() + "\n"
	path := filepath.Join("testdata", golden)
	if *update || os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("Validate() reported\n%s\nwant\n%s", got, want)
	}
	return ve
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(*config.Config)
		want   []string // "path: message", in order; none for a valid config
	}{
		{"default", func(*config.Config) {}, nil},
		{"upstream https", func(c *config.Config) { c.Upstream.URL = "https://registry.internal:5000/prefix" }, nil},
		{"embedded without dataDir", func(c *config.Config) { c.DataDir = "" },
			[]string{"dataDir: required when upstream.url is empty (the embedded registry stores its data there)"}},
		{"upstream without dataDir", func(c *config.Config) { c.DataDir = ""; c.Upstream.URL = "http://r:5000" },
			[]string{"records: needs dataDir, records.sqlitePath or records.postgres.url: what cannot be recomputed (tag ledger, first sightings, baselines, decisions) is kept there"}},
		{"upstream with postgres records", func(c *config.Config) {
			c.DataDir, c.Upstream.URL, c.Records.Postgres.URL = "", "http://r:5000", "postgres://u:secret@db:5432/portcullis"
		}, nil},
		{"records postgres url", func(c *config.Config) { c.Records.Postgres.URL = "mysql://db/x" },
			[]string{`records.postgres.url: scheme must be postgres or postgresql, got "mysql"`}},
		{"records postgres url and file", func(c *config.Config) {
			c.Records.Postgres.URL, c.Records.Postgres.URLFile = "postgres://db/x", "/run/secrets/pg"
		},
			[]string{"records.postgres: set url or urlFile, not both"}},
		{"records sqlite and postgres", func(c *config.Config) { c.Records.Postgres.URL, c.Records.SQLitePath = "postgres://db/x", "/data/r.db" },
			[]string{"records.sqlitePath: set either records.sqlitePath or records.postgres, not both"}},
		{"records retention", func(c *config.Config) { c.Records.Retention = config.Duration(time.Hour) },
			[]string{"records.retention: must be at least 744h0m0s (31 days: a vulnerability still seen has its last-seen date renewed every 30 days), got 1h0m0s"}},
		{"addr host only", func(c *config.Config) { c.Addr = "localhost" },
			[]string{"addr: want HOST:PORT (e.g. :5000): address localhost: missing port in address"}},
		{"addr empty", func(c *config.Config) { c.Addr = "" },
			[]string{"addr: want HOST:PORT (e.g. :5000): required unless listeners are given"}},
		{"upstream not a URL", func(c *config.Config) { c.Upstream.URL = "http://[::1" },
			[]string{`upstream.url: not a URL: parse "http://[::1": missing ']' in host`}},
		{"upstream without scheme", func(c *config.Config) { c.Upstream.URL = "registry.internal" },
			[]string{`upstream.url: scheme must be http or https, got ""`}},
		{"upstream host:port without scheme", func(c *config.Config) { c.Upstream.URL = "registry:5000" },
			[]string{`upstream.url: scheme must be http or https, got "registry"`}},
		{"upstream without host", func(c *config.Config) { c.Upstream.URL = "https:///v2" },
			[]string{"upstream.url: missing host"}},
		{"upstream with query", func(c *config.Config) { c.Upstream.URL = "https://r/?x=1" },
			[]string{"upstream.url: must not have a query or fragment"}},
		{"upstream with fragment", func(c *config.Config) { c.Upstream.URL = "https://r/#x" },
			[]string{"upstream.url: must not have a query or fragment"}},
		{"negative timeout", func(c *config.Config) { c.Upstream.Timeout = config.Duration(-time.Second) },
			[]string{"upstream.timeout: must be positive"}},
		{"password without user", func(c *config.Config) { c.Upstream.ServiceAccount.Password = "pw" },
			[]string{"upstream.serviceAccount.username: required with a password"}},
		{"passwordFile without user", func(c *config.Config) { c.Upstream.ServiceAccount.PasswordFile = "/pw" },
			[]string{"upstream.serviceAccount.username: required with a password"}},
		{"user and password", func(c *config.Config) {
			c.Upstream.ServiceAccount = config.Credentials{Username: "u", Password: "pw"}
		}, nil},
		{"key without cert", func(c *config.Config) { c.TLS.KeyFile = "k.pem" },
			[]string{"tls: certFile and keyFile go together"}},
		{"manifest cap at the bounds", func(c *config.Config) { c.Limits.MaxManifestBytes = 1024 }, nil},
		{"manifest cap at the top", func(c *config.Config) { c.Limits.MaxManifestBytes = 64 << 20 }, nil},
		{"manifest cap over", func(c *config.Config) { c.Limits.MaxManifestBytes = 64<<20 + 1 },
			[]string{"limits.maxManifestBytes: must be between 1024 and 67108864, got 67108865"}},
		{"manifest cap zero", func(c *config.Config) { c.Limits.MaxManifestBytes = 0 },
			[]string{"limits.maxManifestBytes: must be between 1024 and 67108864, got 0"}},
		{"log level empty", func(c *config.Config) { c.Log.Level = "" },
			[]string{`log.level: want debug, info, warn or error, got ""`}},
		{"log level case", func(c *config.Config) { c.Log.Level = "INFO" },
			[]string{`log.level: want debug, info, warn or error, got "INFO"`}},
		{"zero shutdown timeout", func(c *config.Config) { c.ShutdownTimeout = 0 }, nil},
		{"redis cluster, one seed", func(c *config.Config) { c.Cache.Redis = config.Redis{Addrs: []string{"r:7000"}, Cluster: true} }, nil},
		{"redis cluster, several nodes", func(c *config.Config) { c.Cache.Redis = config.Redis{Addrs: []string{"r1:7000", "r2:7000"}} }, nil},
		{"redis sentinel", func(c *config.Config) {
			c.Cache.Redis = config.Redis{Addrs: []string{"s1:26379", "s2:26379", "s3:26379"}, MasterName: "m", DB: 2, SentinelPassword: "sp"}
		}, nil},
		{"redis cluster and sentinel", func(c *config.Config) {
			c.Cache.Redis = config.Redis{Addrs: []string{"s1:26379"}, MasterName: "m", Cluster: true}
		}, []string{"cache.redis.cluster: a Cluster has no masterName (Sentinel); set one or the other"}},
		{"redis cluster with db", func(c *config.Config) { c.Cache.Redis = config.Redis{Addrs: []string{"r1:7000", "r2:7000"}, DB: 3} },
			[]string{"cache.redis.db: must be 0 for a Cluster (several addrs without masterName, or cluster: true), got 3"}},
		{"redis sentinel password without sentinel", func(c *config.Config) { c.Cache.Redis = config.Redis{Addrs: []string{"r:6379"}, SentinelPassword: "x"} },
			[]string{"cache.redis.sentinelPassword: only for Sentinel (masterName)"}},
		{"redis address twice", func(c *config.Config) { c.Cache.Redis = config.Redis{Addrs: []string{"r:7000", "r:7000"}} },
			[]string{"cache.redis.addrs[1]: r:7000 listed twice"}},
		{"near cache off", func(c *config.Config) { c.Cache.Near.MaxBytes = 0 }, nil},
		{"near cache negative", func(c *config.Config) { c.Cache.Near.MaxBytes = -1 },
			[]string{"cache.near.maxBytes: must not be negative (0 turns the near cache off), got -1"}},
		{"near cache tiny", func(c *config.Config) { c.Cache.Near.MaxBytes = 1000 },
			[]string{"cache.near.maxBytes: must be 0 (off) or at least 1048576, got 1000"}},
		{"near cache maxAge zero", func(c *config.Config) { c.Cache.Near.MaxAge = 0 },
			[]string{"cache.near.maxAge: must be positive"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := config.Default()
			tt.change(&c)
			err := c.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var ve *config.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate() = %v, want a *ValidationError", err)
			}
			if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Validate() =\n%s\nwant\n%s", err, strings.Join(tt.want, "\n"))
			}
		})
	}
}

// env returns a getenv over m.
func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestApplyEnvPrecedence(t *testing.T) {
	t.Parallel()
	// Defaults < file < environment; an empty variable does not override.
	cfg, err := config.Load(filepath.Join("testdata", "good.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.ApplyEnv(env(map[string]string{
		"PORTCULLIS_ADDR":               ":6000",
		"PORTCULLIS_UPSTREAM":           "http://other:5000",
		"PORTCULLIS_UPSTREAM_TIMEOUT":   "5s",
		"PORTCULLIS_LOG_LEVEL":          "",
		"PORTCULLIS_MAX_MANIFEST_BYTES": "2048",
		"UPSTREAM":                      "http://unprefixed:5000",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != ":6000" || cfg.Upstream.URL != "http://other:5000" || cfg.Upstream.Timeout.Std() != 5*time.Second || cfg.Limits.MaxManifestBytes != 2048 {
		t.Errorf("environment did not override the file: %+v", cfg)
	}
	if cfg.Log.Level != "debug" || cfg.DataDir != "/var/lib/portcullis" {
		t.Errorf("file values lost where the environment is empty or silent: %+v", cfg)
	}
}

func TestApplyEnvEveryVariable(t *testing.T) {
	t.Parallel()
	vals := map[string]string{
		"PORTCULLIS_ADDR":                 "127.0.0.1:7000",
		"PORTCULLIS_ADMIN_ADDR":           "0.0.0.0:9100",
		"PORTCULLIS_DATA_DIR":             "/data",
		"PORTCULLIS_POLICY":               "observe",
		"PORTCULLIS_UPSTREAM":             "https://r.internal",
		"PORTCULLIS_UPSTREAM_TIMEOUT":     "1m",
		"PORTCULLIS_UPSTREAM_USERNAME":    "svc",
		"PORTCULLIS_UPSTREAM_PASSWORD":    "pw",
		"PORTCULLIS_TLS_CERT_FILE":        "/c.pem",
		"PORTCULLIS_TLS_KEY_FILE":         "/k.pem",
		"PORTCULLIS_LOG_LEVEL":            "warn",
		"PORTCULLIS_AUDIT_PATH":           "-",
		"PORTCULLIS_MAX_MANIFEST_BYTES":   "4096",
		"PORTCULLIS_REDIS_ADDRS":          "10.0.0.1:6379,10.0.0.2:6379",
		"PORTCULLIS_REDIS_PASSWORD":       "rpw",
		"PORTCULLIS_VULNDB":               "/var/lib/vulndb",
		"PORTCULLIS_RECORDS_POSTGRES_URL": "postgres://db/portcullis",
	}
	want := config.Default()
	want.Cache.Redis.Addrs, want.Cache.Redis.Password = []string{"10.0.0.1:6379", "10.0.0.2:6379"}, "rpw"
	want.Scan.DB = "/var/lib/vulndb"
	want.Records.Postgres.URL = "postgres://db/portcullis"
	want.Addr, want.DataDir, want.Policy = "127.0.0.1:7000", "/data", "observe"
	want.Admin.Addr = "0.0.0.0:9100"
	want.Upstream.URL, want.Upstream.Timeout = "https://r.internal", config.Duration(time.Minute)
	want.Upstream.ServiceAccount = config.Credentials{Username: "svc", Password: "pw"}
	want.TLS = config.TLS{CertFile: "/c.pem", KeyFile: "/k.pem"}
	want.Log.Level, want.Audit.Path, want.Limits.MaxManifestBytes = "warn", "-", 4096

	got := config.Default()
	if err := got.ApplyEnv(env(vals)); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ApplyEnv =\n%+v\nwant\n%+v", got, want)
	}
	names := config.EnvNames()
	for k := range vals {
		if _, ok := names[k]; !ok {
			t.Errorf("EnvNames() lacks %s", k)
		}
	}
	if len(names) != len(vals) {
		t.Errorf("EnvNames() has %d variables, this test knows %d: %v", len(names), len(vals), names)
	}
	if names["PORTCULLIS_UPSTREAM_TIMEOUT"] != "upstream.timeout" {
		t.Errorf("EnvNames()[PORTCULLIS_UPSTREAM_TIMEOUT] = %q", names["PORTCULLIS_UPSTREAM_TIMEOUT"])
	}
}

func TestApplyEnvBadValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{"PORTCULLIS_UPSTREAM_TIMEOUT": "abc"},
			`PORTCULLIS_UPSTREAM_TIMEOUT (upstream.timeout): "abc" is not a duration (e.g. 30s)`},
		{map[string]string{"PORTCULLIS_UPSTREAM_TIMEOUT": "30"},
			`PORTCULLIS_UPSTREAM_TIMEOUT (upstream.timeout): "30" is not a duration (e.g. 30s)`},
		{map[string]string{"PORTCULLIS_MAX_MANIFEST_BYTES": "4MiB"},
			`PORTCULLIS_MAX_MANIFEST_BYTES (limits.maxManifestBytes): not an integer`},
		{map[string]string{"PORTCULLIS_UPSTREAM_TIMEOUT": "abc", "PORTCULLIS_MAX_MANIFEST_BYTES": "x", "PORTCULLIS_ADDR": ":1"},
			"PORTCULLIS_UPSTREAM_TIMEOUT (upstream.timeout): \"abc\" is not a duration (e.g. 30s)\n" +
				"PORTCULLIS_MAX_MANIFEST_BYTES (limits.maxManifestBytes): not an integer"},
	}
	for _, tt := range tests {
		c := config.Default()
		err := c.ApplyEnv(env(tt.vars))
		if err == nil || err.Error() != tt.want {
			t.Errorf("ApplyEnv(%v) = %v, want\n%s", tt.vars, err, tt.want)
		}
	}
	// A bad value leaves the field as it was.
	c := config.Default()
	_ = c.ApplyEnv(env(map[string]string{"PORTCULLIS_UPSTREAM_TIMEOUT": "abc"}))
	if c.Upstream.Timeout != config.Default().Upstream.Timeout {
		t.Errorf("a bad PORTCULLIS_UPSTREAM_TIMEOUT changed the timeout to %v", c.Upstream.Timeout.Std())
	}
}

func TestDurationYAML(t *testing.T) {
	t.Parallel()
	c := config.Default()
	c.ShutdownTimeout = config.Duration(90 * time.Second)
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "shutdownTimeout: 1m30s") {
		t.Errorf("marshalled config lacks shutdownTimeout: 1m30s:\n%s", out)
	}
	back := config.Config{}
	if err := back.Overlay(out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("round trip through YAML:\n%+v\nwant\n%+v", back, c)
	}
}

// FuzzOverlay feeds arbitrary YAML to Overlay: it must never panic, Validate must never
// panic on what it produced, and a configuration that overlays cleanly must survive a
// round trip through yaml.Marshal. Seeds live in testdata/fuzz/FuzzOverlay.
func FuzzOverlay(f *testing.F) {
	for _, name := range []string{"good.yaml", "partial.yaml", "bad.yaml", "unknown-field.yaml", "bad-duration.yaml"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	// Lists given with no entries (or a null entry) read back as no list.
	for _, s := range []string{"listeners:\n  -", "audit:\n  sinks:\n    -", "listeners: []", "cache:\n  redis:\n    addrs: []", "mirrors:\n  -"} {
		f.Add([]byte(s))
	}
	f.Fuzz(checkOverlayRoundTrip)
}

// checkOverlayRoundTrip is FuzzOverlay's check of one input.
func checkOverlayRoundTrip(t *testing.T, data []byte) {
	{
		c := config.Default()
		if err := c.Overlay(data); err != nil {
			return
		}
		_ = c.Validate()
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("marshalling an overlaid config: %v", err)
		}
		back := config.Default()
		if err := back.Overlay(out); err != nil {
			t.Fatalf("overlaying the marshalled config: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(back, c) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v", c, back)
		}
	}
}
