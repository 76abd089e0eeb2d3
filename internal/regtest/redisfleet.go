package regtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisProcess is a redis-server (or redis-sentinel) process a test started on a free
// loopback port in a temporary directory; it is killed when the test ends.
type RedisProcess struct {
	Addr string
	Dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// redisBinary returns the path of redis-server, or skips the test loudly (fails it under
// CI=true) when it is missing.
func redisBinary(tb testing.TB) string {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		msg := "\n" + strings.Repeat("!", 78) + "\n!!! redis-server NOT FOUND: this test is NOT RUN.\n" +
			"!!! Install it: apt-get install -y redis-server (version 7).\n" + strings.Repeat("!", 78)
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	return bin
}

// freeAddr returns a loopback address nothing listened on a moment ago.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// StartRedisProcess starts redis-server with a config file holding conf (one directive a
// line; port, bind, dir and logfile are added) and extra command-line arguments, and
// waits until it answers PING.
func StartRedisProcess(tb testing.TB, conf []string, extra ...string) *RedisProcess {
	tb.Helper()
	bin := redisBinary(tb)
	p := &RedisProcess{Addr: freeAddr(tb), Dir: tb.TempDir(), done: make(chan struct{})}
	_, port, _ := net.SplitHostPort(p.Addr)
	lines := append([]string{"port " + port, "bind 127.0.0.1", "dir " + p.Dir,
		"logfile " + filepath.Join(p.Dir, "redis.log"), "save \"\"", "appendonly no"}, conf...)
	file := filepath.Join(p.Dir, "redis.conf")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	p.cmd = exec.Command(bin, append([]string{file}, extra...)...)
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("starting redis-server: %v", err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	tb.Cleanup(p.Kill)
	c := redis.NewClient(&redis.Options{Addr: p.Addr, DialTimeout: time.Second, MaxRetries: -1})
	defer c.Close()
	p.waitFor(tb, "answers PING", func() bool { return c.Ping(context.Background()).Err() == nil })
	return p
}

// Kill ends the process at once.
func (p *RedisProcess) Kill() {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
	}
	<-p.done
}

// Log returns the server's log, for failure messages.
func (p *RedisProcess) Log() string {
	b, _ := os.ReadFile(filepath.Join(p.Dir, "redis.log"))
	return string(b)
}

// waitFor polls cond until it holds, failing the test after a generous deadline (a hang
// guard, not a speed assertion) or when the process exits.
func (p *RedisProcess) waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		select {
		case <-p.done:
			tb.Fatalf("redis-server on %s exited before it %s: %s", p.Addr, what, p.Log())
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("redis-server on %s never %s: %s", p.Addr, what, p.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// RedisCluster starts a Redis Cluster of masters masters (no replicas), each a
// redis-server on its own loopback port, joined with redis-cli --cluster create, and
// returns their addresses once every node reports cluster_state:ok.
func RedisCluster(tb testing.TB, masters int) []string {
	tb.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		redisBinary(tb) // skips or fails the same way
		tb.Fatal("redis-cli not found next to redis-server")
	}
	nodes := make([]*RedisProcess, masters)
	addrs := make([]string, masters)
	for i := range nodes {
		nodes[i] = StartRedisProcess(tb, []string{"cluster-enabled yes", "cluster-config-file nodes.conf", "cluster-node-timeout 2000"})
		addrs[i] = nodes[i].Addr
	}
	out, err := exec.Command(cli, append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		tb.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, n := range nodes {
		c := redis.NewClient(&redis.Options{Addr: n.Addr})
		n.waitFor(tb, "reports cluster_state:ok with every node", func() bool {
			info, err := c.ClusterInfo(context.Background()).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, fmt.Sprintf("cluster_known_nodes:%d", masters))
		})
		_ = c.Close()
	}
	return addrs
}

// RedisSentinelGroup is a master, its replica and three Sentinels watching them under
// MasterName.
type RedisSentinelGroup struct {
	MasterName string
	Master     *RedisProcess
	Replica    *RedisProcess
	Sentinels  []string // addresses
}

// RedisSentinel starts a master, one replica and three Sentinels (quorum two), and
// returns once every Sentinel knows the replica and the other two Sentinels.
func RedisSentinel(tb testing.TB) *RedisSentinelGroup {
	tb.Helper()
	g := &RedisSentinelGroup{MasterName: "portcullis"}
	g.Master = StartRedisProcess(tb, nil)
	host, port, _ := net.SplitHostPort(g.Master.Addr)
	g.Replica = StartRedisProcess(tb, []string{"replicaof " + host + " " + port})
	rc := redis.NewClient(&redis.Options{Addr: g.Replica.Addr})
	defer rc.Close()
	g.Replica.waitFor(tb, "is in sync with its master", func() bool {
		info, err := rc.Info(context.Background(), "replication").Result()
		return err == nil && strings.Contains(info, "master_link_status:up")
	})
	var sentinels []*RedisProcess
	for range 3 {
		s := StartRedisProcess(tb, []string{
			"sentinel resolve-hostnames no",
			"sentinel monitor " + g.MasterName + " " + host + " " + port + " 2",
			"sentinel down-after-milliseconds " + g.MasterName + " 1000",
			"sentinel failover-timeout " + g.MasterName + " 10000",
			"sentinel parallel-syncs " + g.MasterName + " 1",
		}, "--sentinel")
		g.Sentinels = append(g.Sentinels, s.Addr)
		sentinels = append(sentinels, s)
	}
	for _, p := range sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: p.Addr})
		p.waitFor(tb, "knows the replica and the other Sentinels", func() bool {
			reps, err1 := sc.Replicas(context.Background(), g.MasterName).Result()
			sens, err2 := sc.Sentinels(context.Background(), g.MasterName).Result()
			return err1 == nil && err2 == nil && len(reps) == 1 && len(sens) == 2
		})
		_ = sc.Close()
	}
	return g
}

// MasterAddr asks the first Sentinel which address the master has now.
func (g *RedisSentinelGroup) MasterAddr(ctx context.Context) (string, error) {
	sc := redis.NewSentinelClient(&redis.Options{Addr: g.Sentinels[0]})
	defer sc.Close()
	a, err := sc.GetMasterAddrByName(ctx, g.MasterName).Result()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(a[0], a[1]), nil
}

// Failover asks a Sentinel to fail the master over to the replica now.
func (g *RedisSentinelGroup) Failover(ctx context.Context) error {
	sc := redis.NewSentinelClient(&redis.Options{Addr: g.Sentinels[0]})
	defer sc.Close()
	return sc.Failover(ctx, g.MasterName).Err()
}
