package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Load reads a YAML file over the defaults. Unknown fields are errors.
func Load(path string) (Config, error) {
	cfg := Default()
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("reading config: %w", err)
	}
	if err := cfg.Overlay(data); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Overlay decodes YAML onto c, keeping the values the document does not mention.
func (c *Config) Overlay(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	emptyListsToNil(reflect.ValueOf(c).Elem())
	return nil
}

// emptyListsToNil sets every empty list in v (a struct, followed through nested structs,
// pointers and list elements) to nil: "listeners:" or "sinks: [ ]" with no entries means
// none, exactly as when the key is absent, so a config reads back the same after it is
// written out.
func emptyListsToNil(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			emptyListsToNil(v.Elem())
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				emptyListsToNil(v.Field(i))
			}
		}
	case reflect.Slice:
		if v.Len() == 0 {
			if !v.IsNil() && v.CanSet() {
				v.Set(reflect.Zero(v.Type()))
			}
			return
		}
		for i := 0; i < v.Len(); i++ {
			emptyListsToNil(v.Index(i))
		}
	}
}

// EnvPrefix prefixes every environment variable the gateway reads.
const EnvPrefix = "PORTCULLIS_"

// envVars maps each supported environment variable (after EnvPrefix) to its field.
var envVars = []struct {
	name, path string
	set        func(c *Config, v string) error
}{
	{"ADDR", "addr", func(c *Config, v string) error { c.Addr = v; return nil }},
	{"ADMIN_ADDR", "admin.addr", func(c *Config, v string) error { c.Admin.Addr = v; return nil }},
	{"DATA_DIR", "dataDir", func(c *Config, v string) error { c.DataDir = v; return nil }},
	{"POLICY", "policy", func(c *Config, v string) error { c.Policy = v; return nil }},
	{"UPSTREAM", "upstream.url", func(c *Config, v string) error { c.Upstream.URL = v; return nil }},
	{"UPSTREAM_TIMEOUT", "upstream.timeout", func(c *Config, v string) error { return setDuration(&c.Upstream.Timeout, v) }},
	{"UPSTREAM_USERNAME", "upstream.serviceAccount.username", func(c *Config, v string) error { c.Upstream.ServiceAccount.Username = v; return nil }},
	{"UPSTREAM_PASSWORD", "upstream.serviceAccount.password", func(c *Config, v string) error { c.Upstream.ServiceAccount.Password = v; return nil }},
	{"TLS_CERT_FILE", "tls.certFile", func(c *Config, v string) error { c.TLS.CertFile = v; return nil }},
	{"TLS_KEY_FILE", "tls.keyFile", func(c *Config, v string) error { c.TLS.KeyFile = v; return nil }},
	{"LOG_LEVEL", "log.level", func(c *Config, v string) error { c.Log.Level = v; return nil }},
	{"REDIS_ADDRS", "cache.redis.addrs", func(c *Config, v string) error { c.Cache.Redis.Addrs = strings.Split(v, ","); return nil }},
	{"REDIS_PASSWORD", "cache.redis.password", func(c *Config, v string) error { c.Cache.Redis.Password = v; return nil }},
	{"RECORDS_POSTGRES_URL", "records.postgres.url", func(c *Config, v string) error { c.Records.Postgres.URL = v; return nil }},
	{"VULNDB", "scan.db", func(c *Config, v string) error { c.Scan.DB = v; return nil }},
	{"AUDIT_PATH", "audit.path", func(c *Config, v string) error { c.Audit.Path = v; return nil }},
	{"MAX_MANIFEST_BYTES", "limits.maxManifestBytes", func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return errors.New("not an integer")
		}
		c.Limits.MaxManifestBytes = n
		return nil
	}},
}

// EnvNames lists the environment variables ApplyEnv reads, with the field each sets.
func EnvNames() map[string]string {
	m := make(map[string]string, len(envVars))
	for _, e := range envVars {
		m[EnvPrefix+e.name] = e.path
	}
	return m
}

// ApplyEnv overlays PORTCULLIS_* variables (looked up with getenv) onto c.
func (c *Config) ApplyEnv(getenv func(string) string) error {
	var errs []string
	for _, e := range envVars {
		v := getenv(EnvPrefix + e.name)
		if v == "" {
			continue
		}
		if err := e.set(c, v); err != nil {
			errs = append(errs, fmt.Sprintf("%s%s (%s): %v", EnvPrefix, e.name, e.path, err))
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "\n"))
	}
	return nil
}

func setDuration(d *Duration, v string) error {
	x, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("%q is not a duration (e.g. 30s)", v)
	}
	*d = Duration(x)
	return nil
}
