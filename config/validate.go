package config

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
)

// Problem is one configuration error at a field path such as "upstream.url".
type Problem struct {
	Path    string
	Message string
}

// ValidationError lists every problem Validate found.
type ValidationError struct {
	Problems []Problem
}

// Error returns one "path: message" line per problem.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Path + ": " + p.Message
	}
	return strings.Join(lines, "\n")
}

// Validate reports every problem in c, or nil.
func (c Config) Validate() error {
	var ps []Problem
	add := func(path, format string, args ...any) {
		ps = append(ps, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	c.validateListeners(add)
	if c.Upstream.URL == "" && c.DataDir == "" {
		add("dataDir", "required when upstream.url is empty (the embedded registry stores its data there)")
	}
	if c.Policy == "" {
		add("policy", "required: a policy file or a built-in name (starter, observe)")
	}
	if c.Upstream.URL != "" {
		u, err := url.Parse(c.Upstream.URL)
		switch {
		case err != nil:
			add("upstream.url", "not a URL: %v", err)
		case u.Scheme != "http" && u.Scheme != "https":
			add("upstream.url", "scheme must be http or https, got %q", u.Scheme)
		case u.Host == "":
			add("upstream.url", "missing host")
		case u.RawQuery != "" || u.Fragment != "":
			add("upstream.url", "must not have a query or fragment")
		}
	}
	if c.Upstream.Timeout <= 0 {
		add("upstream.timeout", "must be positive")
	}
	if c.Upstream.MaxIdleConnsPerHost < 1 {
		add("upstream.maxIdleConnsPerHost", "must be at least 1")
	}
	sa := c.Upstream.ServiceAccount
	if sa.Password != "" && sa.PasswordFile != "" {
		add("upstream.serviceAccount", "set password or passwordFile, not both")
	}
	if (sa.Password != "" || sa.PasswordFile != "") && sa.Username == "" {
		add("upstream.serviceAccount.username", "required with a password")
	}
	if c.Limits.MaxManifestBytes < 1024 || c.Limits.MaxManifestBytes > 64<<20 {
		add("limits.maxManifestBytes", "must be between 1024 and 67108864, got %d", c.Limits.MaxManifestBytes)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", "want debug, info, warn or error, got %q", c.Log.Level)
	}
	if c.Cache.MemoryBytes < 1<<20 {
		add("cache.memoryBytes", "must be at least 1048576, got %d", c.Cache.MemoryBytes)
	}
	if c.Cache.Timeout <= 0 {
		add("cache.timeout", "must be positive")
	}
	rd := c.Cache.Redis
	for i, a := range rd.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			add(fmt.Sprintf("cache.redis.addrs[%d]", i), "want HOST:PORT: %v", err)
		}
	}
	if rd.Password != "" && rd.PasswordFile != "" {
		add("cache.redis", "set password or passwordFile, not both")
	}
	if len(rd.Addrs) == 0 && (rd.MasterName != "" || rd.Password != "" || rd.PasswordFile != "" || rd.Username != "") {
		add("cache.redis.addrs", "required when other cache.redis fields are set")
	}
	if rd.DB < 0 {
		add("cache.redis.db", "must not be negative")
	}
	if rd.Cluster && rd.MasterName != "" {
		add("cache.redis.cluster", "a Cluster has no masterName (Sentinel); set one or the other")
	}
	if (rd.Cluster || (rd.MasterName == "" && len(rd.Addrs) > 1)) && rd.DB != 0 {
		add("cache.redis.db", "must be 0 for a Cluster (several addrs without masterName, or cluster: true), got %d", rd.DB)
	}
	if rd.SentinelPassword != "" && rd.MasterName == "" {
		add("cache.redis.sentinelPassword", "only for Sentinel (masterName)")
	}
	for i, a := range rd.Addrs {
		if slices.Contains(rd.Addrs[:i], a) {
			add(fmt.Sprintf("cache.redis.addrs[%d]", i), "%s listed twice", a)
		}
	}
	if c.Cache.Near.MaxBytes < 0 {
		add("cache.near.maxBytes", "must not be negative (0 turns the near cache off), got %d", c.Cache.Near.MaxBytes)
	}
	if c.Cache.Near.MaxBytes > 0 && c.Cache.Near.MaxBytes < 1<<20 {
		add("cache.near.maxBytes", "must be 0 (off) or at least 1048576, got %d", c.Cache.Near.MaxBytes)
	}
	if c.Cache.Near.MaxAge <= 0 {
		add("cache.near.maxAge", "must be positive")
	}
	if c.Scan.MaxDBAge < 0 {
		add("scan.maxDBAge", "must not be negative")
	}
	if c.Scan.PullWait < 0 {
		add("scan.pullWait", "must not be negative")
	}
	c.validateAdapters(add)
	c.validateRecords(add)
	c.validateAudit(add)
	c.validateMirrors(add)
	if c.ShutdownTimeout < 0 {
		add("shutdownTimeout", "must not be negative")
	}
	if len(ps) > 0 {
		return &ValidationError{Problems: ps}
	}
	return nil
}
