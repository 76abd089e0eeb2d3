package cache

import (
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestNewRedisClientTopology(t *testing.T) {
	tests := []struct {
		name string
		o    RedisOptions
		want string
	}{
		{"single", RedisOptions{Addrs: []string{"redis:6379"}, DB: 2, TLS: true}, "*redis.Client"},
		{"sentinel", RedisOptions{Addrs: []string{"s1:26379", "s2:26379"}, MasterName: "mymaster"}, "*redis.Client"},
		{"cluster", RedisOptions{Addrs: []string{"n1:6379", "n2:6379"}}, "*redis.ClusterClient"},
	}
	for _, tt := range tests {
		c, err := NewRedisClient(tt.o)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		got := "other"
		switch c.(type) {
		case *redis.Client:
			got = "*redis.Client"
		case *redis.ClusterClient:
			got = "*redis.ClusterClient"
		}
		if got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, got, tt.want)
		}
		_ = c.Close()
	}
	if c, ok := mustClient(NewRedisClient(RedisOptions{Addrs: []string{"redis:6379"}, DB: 2, TLS: true})).(*redis.Client); !ok ||
		c.Options().DB != 2 || c.Options().TLSConfig == nil || !c.Options().ContextTimeoutEnabled {
		t.Error("single-server options were not carried over")
	}
}

func mustClient(c redis.UniversalClient, err error) redis.UniversalClient {
	if err != nil {
		panic(err)
	}
	return c
}

func TestNewRedisClientRejects(t *testing.T) {
	for name, o := range map[string]RedisOptions{
		"no address": {},
		"cluster db": {Addrs: []string{"n1:6379", "n2:6379"}, DB: 1},
	} {
		if c, err := NewRedisClient(o); err == nil {
			_ = c.Close()
			t.Errorf("%s: want an error", name)
		}
	}
}
