package cache

import (
	"crypto/tls"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOptions say how to reach Redis: one address for a single server, several for a
// Cluster, or Sentinel addresses together with MasterName.
type RedisOptions struct {
	Addrs      []string // host:port of the server, the Cluster nodes or the Sentinels
	MasterName string   // Sentinel master name; empty unless using Sentinel
	Cluster    bool     // a Cluster even with one (seed) address
	// SentinelPassword authenticates to the Sentinels themselves, when they require it.
	SentinelPassword string
	Username         string        // ACL user, if any
	Password         string        // password of Username (or of the default user)
	DB               int           // database number; must be 0 for a Cluster
	TLS              bool          // connect with TLS (1.2 or later), verifying against system roots
	DialTimeout      time.Duration // zero: go-redis default (5s)
	ReadTimeout      time.Duration // zero: go-redis default (3s)
	WriteTimeout     time.Duration // zero: same as ReadTimeout
}

// NewRedisClient builds a client for o: a plain client, a Sentinel failover client or a
// Cluster client. Context deadlines bound its socket reads and writes.
func NewRedisClient(o RedisOptions) (redis.UniversalClient, error) {
	if len(o.Addrs) == 0 {
		return nil, errors.New("redis: no address")
	}
	if o.Cluster && o.MasterName != "" {
		return nil, errors.New("redis: a cluster has no sentinel master name")
	}
	if o.MasterName == "" && (len(o.Addrs) > 1 || o.Cluster) && o.DB != 0 {
		return nil, errors.New("redis: db must be 0 for a cluster")
	}
	u := &redis.UniversalOptions{
		Addrs:                 o.Addrs,
		MasterName:            o.MasterName,
		IsClusterMode:         o.Cluster,
		SentinelPassword:      o.SentinelPassword,
		Username:              o.Username,
		Password:              o.Password,
		DB:                    o.DB,
		DialTimeout:           o.DialTimeout,
		ReadTimeout:           o.ReadTimeout,
		WriteTimeout:          o.WriteTimeout,
		ContextTimeoutEnabled: true,
	}
	if o.TLS {
		u.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return redis.NewUniversalClient(u), nil
}
