package proxy_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/regtest"
)

// childGateway is a gateway running as a child process of the benchmark, so that its CPU
// time can be read apart from the client's and the upstream's.
type childGateway struct {
	url string
	pid int
}

// startChildGateway runs this test binary as a gateway in front of upstream (see
// runChildGateway), with the blob path mode (see childSpliceEnv). It stops with the
// benchmark.
func startChildGateway(tb testing.TB, upstream, mode string) childGateway {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childGatewayEnv+"="+upstream, childSpliceEnv+"="+mode)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		tb.Fatalf("child gateway: %v", err)
	}
	return childGateway{url: "http://" + strings.TrimSpace(addr), pid: cmd.Process.Pid}
}

// cpuTime is the CPU time (user and system) the process pid has used so far.
func cpuTime(tb testing.TB, pid int) time.Duration {
	tb.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Skipf("no /proc to read a child's CPU time from: %v", err)
	}
	// The command name (field 2) may hold spaces; the fields after it are plain.
	fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	// utime and stime are fields 14 and 15, in clock ticks (USER_HZ, 100 on Linux).
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		tb.Fatalf("parsing /proc/%d/stat: %q", pid, raw)
	}
	return time.Duration(utime+stime) * (time.Second / 100)
}

// BenchmarkBlobCPU measures what the blob path costs the gateway: a registry in this
// process (a remote upstream, over loopback) and three gateways in front of it, each a
// child process: one with the zero-copy blob path (splice), one with it off (copy: the
// reverse proxy) and one with the zero-copy path asking for a 4 MiB receive buffer on its
// upstream connections (splice-rcvbuf4m; the default leaves the kernel's autotuning). It pulls a 256 MiB random blob down direct
// (the registry alone) and the three gateways in rotating order, one pull each per
// iteration, reading each gateway's CPU time from /proc around its own pulls. It reports
// each gateway's CPU seconds per GiB served and throughput, the CPU ratios splice/copy and
// splice-rcvbuf4m/splice (of the totals), and the throughput ratios splice/copy,
// splice-rcvbuf4m/splice and copy/direct, splice/direct (medians of per-iteration ratios).
func BenchmarkBlobCPU(b *testing.B) {
	reg := regtest.StartRegistry(b)
	client := perfClient(b)
	const repo = "bench/cpu"
	d, size, err := perfPushBlobStreamed(client, reg.URL, repo, perfRandom(3, benchBlobSize))
	if err != nil {
		b.Fatal(err)
	}
	type path struct {
		name   string
		url    string
		pid    int // 0: not a child, no CPU reading
		took   time.Duration
		cpu    time.Duration
		last   time.Duration
		ratios []float64 // per iteration, against the path given by vs
		vs     int
	}
	paths := []*path{{name: "direct", url: reg.URL}}
	for _, m := range []struct {
		mode string
		vs   int
	}{{"copy", 0}, {"splice", 1}, {"splice-rcvbuf4m", 2}} {
		gw := startChildGateway(b, reg.URL, m.mode)
		paths = append(paths, &path{name: m.mode, url: gw.url, pid: gw.pid, vs: m.vs})
	}
	pull := func(p *path, verify bool) {
		var before time.Duration
		if p.pid != 0 {
			before = cpuTime(b, p.pid)
		}
		start := time.Now()
		if err := perfPullBlob(client, p.url, repo, d, size, verify); err != nil {
			b.Fatalf("%s: %v", p.name, err)
		}
		p.last = time.Since(start)
		if p.pid != 0 {
			p.cpu += cpuTime(b, p.pid) - before
		}
	}
	for _, p := range paths {
		pull(p, true)
		p.cpu = 0
	}
	var spliceVsDirect []float64
	n := 0
	for i := 0; b.Loop(); i++ {
		for k := range paths {
			p := paths[(i+k)%len(paths)]
			pull(p, false)
			p.took += p.last
		}
		for _, p := range paths[1:] {
			p.ratios = append(p.ratios, paths[p.vs].last.Seconds()/p.last.Seconds())
		}
		spliceVsDirect = append(spliceVsDirect, paths[0].last.Seconds()/paths[2].last.Seconds())
		n++
	}
	gib := float64(size) * float64(n) / (1 << 30)
	for _, p := range paths {
		b.ReportMetric(gib*(1<<30)/1e6/p.took.Seconds(), p.name+"-MB/s")
		if p.pid != 0 {
			b.ReportMetric(p.cpu.Seconds()/gib, p.name+"-cpu-s/GiB")
			b.ReportMetric(perfMedian(p.ratios), p.name+"/"+paths[p.vs].name)
		}
	}
	b.ReportMetric(paths[2].cpu.Seconds()/paths[1].cpu.Seconds(), "splice/copy-cpu")
	b.ReportMetric(paths[3].cpu.Seconds()/paths[2].cpu.Seconds(), "splice-rcvbuf4m/splice-cpu")
	b.ReportMetric(perfMedian(spliceVsDirect), "splice/direct")
}
