// Command portcullis-bench is the rollout load harness's generator (scripts/bench drives
// it): it serves a registry in its own process, pushes the test image, and runs
// interleaved rollouts of simulated containerd nodes through each path to the registry.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/portcullis-dev/portcullis/embedded"
	"github.com/portcullis-dev/portcullis/internal/loadgen"
)

const usage = `portcullis-bench: the rollout load harness's generator (see scripts/bench).

Usage:
  portcullis-bench registry --dir DIR [--addr 127.0.0.1:0]
  portcullis-bench push --registry URL [--repo R] [--tag T] [--layers SIZES] [--seed N] [--out FILE]
  portcullis-bench run --path NAME=URL[+URL...][@PID[,PID...]] ... [flags]
  portcullis-bench free-port     (prints a loopback port free at this moment, for nginx)

Example:
  portcullis-bench registry --dir /tmp/reg &
  portcullis-bench push --registry http://127.0.0.1:5000 --layers 150MiB,100MiB,50MiB --out image.json
  portcullis-bench run --image image.json --registry-pid 4711 --nodes 50 --rounds 5 \
      --path direct=http://127.0.0.1:5000 --path nginx=http://127.0.0.1:8080@4712 \
      --path portcullis=http://127.0.0.1:5001@4713 --json report.json

Run "portcullis-bench COMMAND --help" for a command's flags.
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "portcullis-bench:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("a command is required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "registry":
		return registryCmd(ctx, args[1:], stderr)
	case "push":
		return pushCmd(ctx, args[1:], stdout, stderr)
	case "run":
		return runCmd(ctx, args[1:], stdout, stderr)
	case "free-port":
		return freePort(args[1:], stdout)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// registryCmd serves a distribution registry (the embedded package's configuration:
// filesystem storage, no auth) until SIGTERM.
func registryCmd(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("registry", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "storage directory (required)")
	addr := fs.String("addr", "127.0.0.1:0", "listen address HOST:PORT")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: portcullis-bench registry --dir DIR [--addr HOST:PORT]\n\nServes a CNCF distribution v3 registry in this process until SIGTERM; prints \"registry listening on HOST:PORT\".\n\nExample: portcullis-bench registry --dir /tmp/reg --addr 127.0.0.1:0")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || fs.NArg() != 0 {
		fs.Usage()
		return errors.New("registry: --dir is required and no arguments are taken")
	}
	cfg, err := embedded.Config(*dir)
	if err != nil {
		return err
	}
	reg, err := embedded.Start(ctx, cfg, *addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "registry listening on %s\n", strings.TrimPrefix(reg.URL, "http://"))
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return reg.Close(sctx)
}

// pushCmd generates the test image and pushes it.
func pushCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	fs.SetOutput(stderr)
	registry := fs.String("registry", "", "registry base URL, e.g. http://127.0.0.1:5000 (required)")
	repo := fs.String("repo", "bench/rollout", "repository")
	tag := fs.String("tag", "v1", "tag")
	layers := fs.String("layers", "150MiB,100MiB,50MiB,20MiB,8MiB,2MiB", "sizes of the amd64 layers, comma-separated (units KiB, MiB, GiB)")
	seed := fs.Uint64("seed", 1, "content seed: the same seed and sizes give the same digests")
	out := fs.String("out", "", "write the pushed image's descriptors as JSON to this file (default stdout)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: portcullis-bench push --registry URL [flags]\n\nGenerates a multi-platform image (an index, a linux/amd64 manifest with the given layers, a small linux/arm64 one) and pushes it.\n\nExample: portcullis-bench push --registry http://127.0.0.1:5000 --layers 400MiB,300MiB,200MiB,100MiB,24MiB --out image.json")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *registry == "" || fs.NArg() != 0 {
		fs.Usage()
		return errors.New("push: --registry is required and no arguments are taken")
	}
	sizes, err := loadgen.ParseSizes(*layers)
	if err != nil {
		return fmt.Errorf("push: --layers: %w", err)
	}
	start := time.Now()
	img, err := loadgen.PushImage(ctx, &http.Client{}, *registry, loadgen.ImageSpec{Repository: *repo, Tag: *tag, LayerSizes: sizes, Seed: *seed})
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "pushed %s:%s (%s, %d layers, %.1f MiB of blobs) in %.1f s\n", *repo, *tag, img.Index.Digest, len(img.Layers), float64(img.BlobBytes)/(1<<20), time.Since(start).Seconds())
	data, err := json.MarshalIndent(img, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if *out == "" {
		_, err = stdout.Write(data)
		return err
	}
	return os.WriteFile(*out, data, 0o644)
}

// pathsFlag collects --path flags.
type pathsFlag []loadgen.Path

func (p *pathsFlag) String() string { return fmt.Sprint(len(*p), " paths") }

func (p *pathsFlag) Set(s string) error {
	path, err := loadgen.ParsePath(s)
	if err != nil {
		return err
	}
	for _, q := range *p {
		if q.Name == path.Name {
			return fmt.Errorf("path %s given twice", q.Name)
		}
	}
	*p = append(*p, path)
	return nil
}

// Report is the JSON the run command writes.
type Report struct {
	Started       time.Time             `json:"started"`
	Finished      time.Time             `json:"finished"`
	Commit        string                `json:"commit,omitempty"`
	Note          string                `json:"note,omitempty"`
	Host          Host                  `json:"host"`
	Nodes         int                   `json:"nodes"`
	Concurrency   int                   `json:"maxConcurrentDownloads"`
	Rounds        int                   `json:"rounds"`
	Paths         []loadgen.Path        `json:"paths"`
	Image         *loadgen.Image        `json:"image,omitempty"`
	Results       []loadgen.RoundResult `json:"results"`
	Summary       []loadgen.Summary     `json:"summary"`
	Checks        []loadgen.Check       `json:"checks"`
	TargetsPath   string                `json:"targetsPath"`
	MaxRSSBytes   int64                 `json:"maxRSSBytes"`
	LoadAvgBefore string                `json:"loadAvgBefore"`
	LoadAvgAfter  string                `json:"loadAvgAfter"`
}

// Host describes the machine the run measured.
type Host struct {
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"goVersion"`
	Kernel    string `json:"kernel,omitempty"`
}

func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var paths pathsFlag
	fs.Var(&paths, "path", "a path to measure, NAME=URL[+URL...][@PID[,PID...]] (repeat; measured in this order every round; \"direct\" and \"nginx\" are the baselines)")
	registryPid := fs.Int("registry-pid", 0, "pid of the registry process (its CPU and memory are reported per round)")
	nodes := fs.Int("nodes", 50, "simulated nodes pulling at once (1-1000)")
	rounds := fs.Int("rounds", 3, "interleaved rounds")
	repo := fs.String("repo", "bench/rollout", "repository")
	tag := fs.String("tag", "v1", "tag")
	conc := fs.Int("max-concurrent-downloads", loadgen.DefaultMaxConcurrentDownloads, "layers one node downloads at once (containerd's default is 3)")
	verify := fs.Int("verify-nodes", 1, "nodes per rollout that also check every layer's digest (all check sizes, manifests and the config)")
	imageFile := fs.String("image", "", "the push command's JSON, to include in the report")
	jsonOut := fs.String("json", "", "write the report as JSON to this file")
	targets := fs.String("targets-path", "portcullis", "the path the issue's targets are judged on")
	maxRSS := fs.String("max-rss", "150MB", "peak RSS target for the targets path (MB = 10^6 bytes, or KiB/MiB/GiB)")
	warmup := fs.Duration("warmup-timeout", 2*time.Minute, "how long the warm-up waits for a path to answer without a Warning (a gateway's first scan)")
	commit := fs.String("commit", "", "commit measured, for the report")
	note := fs.String("note", "", "free text for the report (e.g. the machine's load)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: portcullis-bench run --path NAME=URL[@PIDS] ... [flags]\n\nWarms every path up, then runs interleaved rounds of rollouts (each: --nodes nodes pulling the image at once, each with its own connection pool) and prints a table of figures and ratios.\n\nExample: portcullis-bench run --registry-pid 4711 --nodes 50 --rounds 5 --path direct=http://127.0.0.1:5000 --path portcullis=http://127.0.0.1:5001@4713")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	var problems []string
	if len(paths) == 0 {
		problems = append(problems, "--path: at least one is required")
	}
	if *nodes < 1 || *nodes > 1000 {
		problems = append(problems, fmt.Sprintf("--nodes: want 1-1000, got %d", *nodes))
	}
	if *rounds < 1 {
		problems = append(problems, fmt.Sprintf("--rounds: want at least 1, got %d", *rounds))
	}
	if *conc < 1 {
		problems = append(problems, fmt.Sprintf("--max-concurrent-downloads: want at least 1, got %d", *conc))
	}
	rss, err := parseRSS(*maxRSS)
	if err != nil {
		problems = append(problems, "--max-rss: "+err.Error())
	}
	if fs.NArg() != 0 {
		problems = append(problems, fmt.Sprintf("unexpected arguments %q", fs.Args()))
	}
	if len(problems) > 0 {
		return errors.New("run: " + strings.Join(problems, "; "))
	}
	rep := Report{
		Started: time.Now().UTC(), Commit: *commit, Note: *note,
		Host:  Host{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Kernel: readTrim("/proc/sys/kernel/osrelease")},
		Nodes: *nodes, Concurrency: *conc, Rounds: *rounds, Paths: paths, TargetsPath: *targets, MaxRSSBytes: rss,
		LoadAvgBefore: readTrim("/proc/loadavg"),
	}
	if *imageFile != "" {
		data, err := os.ReadFile(*imageFile)
		if err != nil {
			return err
		}
		rep.Image = new(loadgen.Image)
		if err := json.Unmarshal(data, rep.Image); err != nil {
			return fmt.Errorf("--image %s: %w", *imageFile, err)
		}
	}
	results, err := loadgen.Bench(ctx, loadgen.BenchOptions{
		Paths: paths, Registry: *registryPid, Rounds: *rounds, WarmupTimeout: *warmup, Progress: stderr,
		Rollout: loadgen.RolloutOptions{Nodes: *nodes, Repository: *repo, Tag: *tag, MaxConcurrentDownloads: *conc, VerifyNodes: *verify},
	})
	rep.Finished, rep.LoadAvgAfter, rep.Results = time.Now().UTC(), readTrim("/proc/loadavg"), results
	rep.Summary = loadgen.Summarize(results)
	rep.Checks = loadgen.Checks(rep.Summary, *targets, rss)
	fmt.Fprintf(stdout, "rollout load: %d nodes × %d rounds, max %d downloads per node", *nodes, *rounds, *conc)
	if rep.Image != nil {
		fmt.Fprintf(stdout, ", image %.0f MiB in %d layers", float64(rep.Image.BlobBytes)/(1<<20), len(rep.Image.Layers))
	}
	fmt.Fprintf(stdout, "; load average before %s, after %s\n\n", rep.LoadAvgBefore, rep.LoadAvgAfter)
	if werr := loadgen.WriteTable(stdout, rep.Summary); werr != nil {
		return werr
	}
	fmt.Fprintln(stdout)
	loadgen.WriteChecks(stdout, rep.Checks)
	if *jsonOut != "" {
		data, jerr := json.MarshalIndent(rep, "", "  ")
		if jerr != nil {
			return jerr
		}
		if jerr := os.WriteFile(*jsonOut, append(data, '\n'), 0o644); jerr != nil {
			return jerr
		}
	}
	if err != nil {
		return err
	}
	for _, s := range rep.Summary {
		if s.FailedRequests > 0 || s.FailedNodes > 0 {
			return fmt.Errorf("run: %s: %d failed requests, %d failed nodes (see the JSON report's errors)", s.Path, s.FailedRequests, s.FailedNodes)
		}
	}
	return nil
}

// freePort prints a loopback TCP port that was free a moment ago (for a server, such as
// nginx, that cannot be told to pick one itself).
func freePort(args []string, stdout io.Writer) error {
	if len(args) != 0 {
		return errors.New("free-port: no arguments are taken")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, port)
	return err
}

// parseRSS parses "150MB" (10^6 bytes) or a size loadgen.ParseSize accepts.
func parseRSS(s string) (int64, error) {
	if n, ok := strings.CutSuffix(s, "MB"); ok {
		v, err := loadgen.ParseSize(n)
		if err != nil {
			return 0, fmt.Errorf("%q: want e.g. 150MB", s)
		}
		return v * 1_000_000, nil
	}
	return loadgen.ParseSize(s)
}

func readTrim(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}
