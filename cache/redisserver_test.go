package cache

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is a redis-server process the test owns, to kill, pause and restart.
type redisServer struct {
	t      *testing.T
	bin    string
	addr   string
	dir    string
	cmd    *exec.Cmd
	exited chan struct{}
}

// startRedisServer starts a private redis-server on a free loopback port, or skips/fails
// per unavailable when the binary is missing. It is killed when the test ends.
func startRedisServer(t *testing.T) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		unavailable(t, "redis-server NOT FOUND", "Install it: apt-get install -y redis-server")
	}
	s := &redisServer{t: t, bin: bin, addr: closedAddr(t), dir: t.TempDir()}
	s.start()
	t.Cleanup(s.kill)
	return s
}

// start runs the server on its address (again) and waits until it answers.
func (s *redisServer) start() {
	s.t.Helper()
	_, port, _ := net.SplitHostPort(s.addr)
	log := filepath.Join(s.dir, "redis.log")
	s.cmd = exec.Command(s.bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--logfile", log)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("starting redis-server: %v", err)
	}
	exited, cmd := make(chan struct{}), s.cmd
	go func() { _ = cmd.Wait(); close(exited) }()
	s.exited = exited

	c := redis.NewClient(&redis.Options{Addr: s.addr, DialTimeout: time.Second, MaxRetries: -1})
	defer func() { _ = c.Close() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		select {
		case <-exited:
			out, _ := os.ReadFile(log)
			s.t.Fatalf("redis-server on %s exited: %s", s.addr, out)
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on %s never answered: %v", s.addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill ends the server at once, as a crash would.
func (s *redisServer) kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// pause freezes the server: connections are accepted but nothing is answered.
func (s *redisServer) pause() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		s.t.Fatal(err)
	}
}

// resume lets a paused server run again.
func (s *redisServer) resume() {
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(syscall.SIGCONT)
	}
}
