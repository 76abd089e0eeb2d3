package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/portcullis-dev/portcullis/embedded"
	"github.com/portcullis-dev/portcullis/internal/regtest"
)

// mbenchPolicy is the policy of the gateways imports go through: tag rules only, so the
// gateway judges every image (the import asks for each decision) without scanning.
const mbenchPolicy = `version: 1
exceptionProcess: "ask the platform team"
environments:
  - name: dev
    repositories: ["**"]
rules:
  - {id: immutable-tags, type: immutable, mode: block}
`

// BenchmarkMirror compares "portcullis mirror collect" and "mirror import" with crane and
// skopeo moving the same images between the same kind of in-process registry (CNCF
// distribution, loopback) and an OCI layout. Content: three multi-layer images, about
// three quarters incompressible (ChaCha8) and a quarter compressible text, in total
// $PORTCULLIS_MBENCH_MIB MiB (default 2048: the multi-GiB bundles the mirror is for, where the
// fixed cost of a run (process start, decrypting the cosign key) no longer hides the
// throughput), built once per run. One iteration is one
// round in which every tool runs once, in rotating order.
//
// collect: portcullis mirror collect (a signed bundle of zstd chunks), crane pull
// --format=oci (all images, one layout), skopeo copy docker:// oci: (one image at a time);
// and, durable on disk when they end, collect --fsync and crane pull followed by sync(1)
// of every file of its layout; and collect --buffered (through the page cache, as crane
// writes, instead of O_DIRECT).
// import: portcullis mirror import through a gateway in front of a fresh registry, and
// crane push / skopeo copy of the same images from OCI layouts into a fresh registry,
// directly and through an equivalent gateway.
//
// $PORTCULLIS_MBENCH_PROFILES names a directory to keep a CPU profile of every collect and
// import in.
//
// Metrics: MB/s per tool (content bytes over the sum of the tool's wall times), the
// client process's CPU seconds per GB, and the median over rounds of the per-round ratio
// of throughputs portcullis÷tool, portcullis-fsync÷crane-sync and
// portcullis-buffered÷crane (above 1: portcullis was faster).
func BenchmarkMirror(b *testing.B) {
	crane, skopeo := benchTool("crane"), benchTool("skopeo")
	var missing []string
	for tool, path := range map[string]string{"crane": crane, "skopeo": skopeo} {
		if path == "" {
			missing = append(missing, tool+" (install: "+installHints[tool]+")")
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		b.Skipf("BenchmarkMirror compares with crane and skopeo; missing: %s", strings.Join(missing, ", "))
	}
	mib := int64(2048)
	if s := os.Getenv("PORTCULLIS_MBENCH_MIB"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 8 {
			b.Fatalf("PORTCULLIS_MBENCH_MIB=%q: want a size in MiB, at least 8", s)
		}
		mib = n
	}
	env := newMirrorBenchEnv(b, crane, skopeo, mib<<20)
	b.Run("collect", env.benchCollect)
	b.Run("import", env.benchImport)
}

// benchTool finds a client as requireTool does, "" when it is missing.
func benchTool(name string) string {
	var path string
	for _, d := range []string{os.Getenv("PORTCULLIS_TOOLS"), filepath.Join(os.Getenv("HOME"), ".cache", "portcullis-tools")} {
		if d == "" {
			continue
		}
		p := filepath.Join(d, "bin", name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			path = p
			break
		}
	}
	if path == "" {
		path, _ = exec.LookPath(name)
	}
	return path
}

// mirrorBenchEnv is the content, built once: the source registry, a mirror file, a key
// pair, a bundle and per-image OCI layouts for the imports.
type mirrorBenchEnv struct {
	crane, skopeo string
	dir           string
	src           string // host:port of the source registry
	images        []benchImage
	total         int64 // bytes of every blob and manifest carried
	mirrorFile    string
	keyFile       string
	pubFile       string
	bundle        string   // collected once, the import's input
	layouts       []string // one OCI layout per image, the other tools' import input
	mapped        []string // on-prem name:tag per image (the bundle's mapping)
}

type benchImage struct {
	repo, tag string
	digest    string
}

// benchLayers are the layers of the three images as fractions of the total, and
// whether each is compressible text.
var benchLayers = [][]struct {
	frac float64
	text bool
}{
	{{0.30, false}, {0.15, false}, {0.05, true}},
	{{0.20, false}, {0.10, true}},
	{{0.10, true}, {0.08, false}, {0.02, false}},
}

func newMirrorBenchEnv(b *testing.B, crane, skopeo string, total int64) *mirrorBenchEnv {
	e := &mirrorBenchEnv{crane: crane, skopeo: skopeo, dir: b.TempDir()}
	e.src = strings.TrimPrefix(regtest.Registry(b), "http://")
	var repos strings.Builder
	seed := uint64(1)
	for i, layers := range benchLayers {
		img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
		var ls []v1.Layer
		for _, l := range layers {
			seed++
			ls = append(ls, newGenLayer(b, seed, int64(l.frac*float64(total)), l.text))
		}
		img, err := mutate.AppendLayers(img, ls...)
		if err != nil {
			b.Fatal(err)
		}
		bi := benchImage{repo: fmt.Sprintf("bench/image%d", i), tag: "1.0." + strconv.Itoa(i)}
		ref, err := name.ParseReference(e.src+"/"+bi.repo+":"+bi.tag, name.Insecure)
		if err != nil {
			b.Fatal(err)
		}
		if err := remote.Write(ref, img); err != nil {
			b.Fatal(err)
		}
		d, _ := img.Digest()
		bi.digest = d.String()
		m, _ := img.Manifest()
		raw, _ := img.RawManifest()
		e.total += int64(len(raw)) + m.Config.Size
		for _, l := range m.Layers {
			e.total += l.Size
		}
		e.images = append(e.images, bi)
		fmt.Fprintf(&repos, "      - {name: %s, tags: [%q]}\n", bi.repo, bi.tag)
	}
	priv, pub, err := cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), func(bool) ([]byte, error) { return []byte("pw"), nil })
	if err != nil {
		b.Fatal(err)
	}
	e.keyFile, e.pubFile, e.mirrorFile = filepath.Join(e.dir, "cosign.key"), filepath.Join(e.dir, "cosign.pub"), filepath.Join(e.dir, "mirror.yaml")
	benchWrite(b, e.keyFile, priv)
	benchWrite(b, e.pubFile, pub)
	benchWrite(b, e.mirrorFile, []byte("version: 1\nsources:\n  - registry: "+e.src+"\n    repositories:\n"+repos.String()))

	// The imports' inputs: a bundle, and an OCI layout per image.
	e.bundle = filepath.Join(e.dir, "bundle")
	if _, _, err := e.collectPortcullis(e.bundle); err != nil {
		b.Fatal(err)
	}
	var bm struct {
		Images []struct{ Name, Tag, Digest string }
	}
	if err := json.Unmarshal(benchRead(b, filepath.Join(e.bundle, "bundle.json")), &bm); err != nil {
		b.Fatal(err)
	}
	for i, img := range e.images {
		if len(bm.Images) != len(e.images) || bm.Images[i].Digest != img.digest {
			b.Fatalf("the bundle lists %+v, want the images %+v in order", bm.Images, e.images)
		}
		e.mapped = append(e.mapped, bm.Images[i].Name+":"+bm.Images[i].Tag)
		l := filepath.Join(e.dir, "layout"+strconv.Itoa(i))
		if _, err := runBench(e.crane, nil, "pull", "--insecure", "--format=oci", e.src+"/"+img.repo+":"+img.tag, l); err != nil {
			b.Fatal(err)
		}
		e.layouts = append(e.layouts, l)
	}
	b.Logf("content: %d images, %.1f MiB (%d%% compressible text)", len(e.images), float64(e.total)/(1<<20), 25)
	return e
}

// benchTiming is one tool's measurements over the rounds.
type benchTiming struct {
	wall, cpu time.Duration
	rates     []float64 // MB/s per round
}

// benchRun is one command's wall and CPU time (user+system of the client process).
type benchRun struct{ wall, cpu time.Duration }

func (e *mirrorBenchEnv) benchCollect(b *testing.B) {
	tools := []string{"portcullis", "crane", "skopeo", "portcullis-fsync", "crane-sync", "portcullis-buffered"}
	crane := func(out string) (benchRun, error) {
		args := []string{"pull", "--insecure", "--format=oci"}
		for _, img := range e.images {
			args = append(args, e.src+"/"+img.repo+":"+img.tag)
		}
		r, err := runBench(e.crane, nil, append(args, out)...)
		if err == nil {
			err = e.checkLayout(out)
		}
		return r, err
	}
	run := map[string]func(out string) (benchRun, error){
		"portcullis": func(out string) (benchRun, error) {
			r, _, err := e.collectPortcullis(out)
			if err == nil {
				err = e.checkBundle(out)
			}
			return r, err
		},
		"portcullis-fsync": func(out string) (benchRun, error) {
			r, _, err := e.collectPortcullis(out, "--fsync")
			if err == nil {
				err = e.checkBundle(out)
			}
			return r, err
		},
		// portcullis-buffered writes its chunks through the page cache, as crane writes
		// its layout, instead of with O_DIRECT.
		"portcullis-buffered": func(out string) (benchRun, error) {
			r, _, err := e.collectPortcullis(out, "--buffered")
			if err == nil {
				err = e.checkBundle(out)
			}
			return r, err
		},
		"crane": crane,
		// crane-sync is crane's layout made as durable as collect --fsync makes the
		// bundle: coreutils' sync fsyncs each of its files.
		"crane-sync": func(out string) (benchRun, error) {
			r, err := crane(out)
			if err != nil {
				return r, err
			}
			var files []string
			err = filepath.WalkDir(out, func(path string, d os.DirEntry, err error) error {
				if err == nil {
					files = append(files, path)
				}
				return err
			})
			if err != nil {
				return r, err
			}
			s, err := runBench("sync", nil, files...)
			return benchRun{wall: r.wall + s.wall, cpu: r.cpu + s.cpu}, err
		},
		"skopeo": func(out string) (benchRun, error) {
			var sum benchRun
			for _, img := range e.images {
				r, err := runBench(e.skopeo, nil, "--insecure-policy", "copy", "--quiet", "--src-tls-verify=false",
					"docker://"+e.src+"/"+img.repo+":"+img.tag, "oci:"+out+":"+strings.ReplaceAll(img.repo, "/", "-")+"-"+img.tag)
				sum.wall += r.wall
				sum.cpu += r.cpu
				if err != nil {
					return sum, err
				}
			}
			return sum, e.checkLayout(out)
		},
	}
	pairs := [][2]string{{"portcullis", "crane"}, {"portcullis", "skopeo"}, {"portcullis-fsync", "crane-sync"}, {"portcullis-buffered", "crane"}}
	e.rounds(b, tools, pairs, func(b *testing.B, tool, dir string) benchRun {
		r, err := run[tool](filepath.Join(dir, "out"))
		if err != nil {
			b.Fatalf("collect with %s: %v", tool, err)
		}
		return r
	})
}

func (e *mirrorBenchEnv) benchImport(b *testing.B) {
	tools := []string{"portcullis", "crane-direct", "crane-gateway", "skopeo-direct", "skopeo-gateway"}
	var pairs [][2]string
	for _, t := range tools[1:] {
		pairs = append(pairs, [2]string{"portcullis", t})
	}
	e.rounds(b, tools, pairs, func(b *testing.B, tool, dir string) benchRun {
		b.StopTimer()
		reg := benchRegistry(b, filepath.Join(dir, "registry"))
		defer reg.stop()
		target := strings.TrimPrefix(reg.url, "http://")
		if tool == "portcullis" || strings.HasSuffix(tool, "-gateway") {
			policyPath := filepath.Join(dir, "policy.yaml")
			benchWrite(b, policyPath, []byte(mbenchPolicy))
			gw := startGateway(b, "--policy", policyPath, "--upstream", reg.url, "--data-dir", filepath.Join(dir, "data"))
			defer gw.stop(b)
			target = gw.addr
		}
		b.StartTimer()
		var r benchRun
		var err error
		switch tool {
		case "portcullis":
			work := filepath.Join(dir, "work")
			if err := os.Mkdir(work, 0o755); err != nil {
				b.Fatal(err)
			}
			var env []string
			if pdir := os.Getenv("PORTCULLIS_MBENCH_PROFILES"); pdir != "" {
				env = append(env, "PORTCULLIS_CPUPROFILE="+filepath.Join(pdir, "import-"+filepath.Base(dir)+".prof"))
			}
			r, err = runBench(gatewayBin, env, "mirror", "import", "--bundle", e.bundle, "--key", e.pubFile, "--gateway", "http://"+target,
				"--journal", filepath.Join(dir, "journal.jsonl"), "--workdir", work)
		case "crane-direct", "crane-gateway":
			for i, l := range e.layouts {
				var one benchRun
				one, err = runBench(e.crane, nil, "push", "--insecure", l, target+"/"+e.mapped[i])
				r.wall, r.cpu = r.wall+one.wall, r.cpu+one.cpu
				if err != nil {
					break
				}
			}
		case "skopeo-direct", "skopeo-gateway":
			for i, l := range e.layouts {
				var one benchRun
				one, err = runBench(e.skopeo, nil, "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false", "oci:"+l, "docker://"+target+"/"+e.mapped[i])
				r.wall, r.cpu = r.wall+one.wall, r.cpu+one.cpu
				if err != nil {
					break
				}
			}
		}
		b.StopTimer()
		if err != nil {
			b.Fatalf("import with %s: %v", tool, err)
		}
		// What was pushed is there, by tag, with the pinned digest (read from the registry
		// behind the gateway).
		for i, m := range e.mapped {
			ref, err := name.ParseReference(strings.TrimPrefix(reg.url, "http://")+"/"+m, name.Insecure)
			if err != nil {
				b.Fatal(err)
			}
			d, err := remote.Head(ref)
			if err != nil || d.Digest.String() != e.images[i].digest {
				b.Fatalf("import with %s: %s is %v (%v), want %s", tool, m, d, err, e.images[i].digest)
			}
		}
		b.StartTimer()
		return r
	})
}

// rounds runs b.N rounds; in each, every tool runs once (the order rotates by round) in a
// fresh directory removed afterwards. It reports the metrics, and for each pair the
// median of the per-round ratios first÷second of throughputs.
func (e *mirrorBenchEnv) rounds(b *testing.B, tools []string, pairs [][2]string, one func(b *testing.B, tool, dir string) benchRun) {
	timing := map[string]*benchTiming{}
	for _, t := range tools {
		timing[t] = &benchTiming{}
	}
	var ratios = map[string][]float64{}
	b.ResetTimer()
	for round := 0; round < b.N; round++ {
		rate := map[string]float64{}
		for k := range tools {
			tool := tools[(round+k)%len(tools)]
			dir, err := os.MkdirTemp(e.dir, "round-")
			if err != nil {
				b.Fatal(err)
			}
			r := one(b, tool, dir)
			b.StopTimer()
			if err := os.RemoveAll(dir); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			tm := timing[tool]
			tm.wall += r.wall
			tm.cpu += r.cpu
			rate[tool] = float64(e.total) / 1e6 / r.wall.Seconds()
			tm.rates = append(tm.rates, rate[tool])
		}
		for _, p := range pairs {
			k := p[0] + "/" + p[1]
			ratios[k] = append(ratios[k], rate[p[0]]/rate[p[1]])
		}
	}
	b.StopTimer()
	for _, t := range tools {
		tm := timing[t]
		b.ReportMetric(float64(e.total)*float64(b.N)/1e6/tm.wall.Seconds(), t+"-MB/s")
		b.ReportMetric(tm.cpu.Seconds()/(float64(e.total)*float64(b.N)/1e9), t+"-cpu-s/GB")
	}
	for _, p := range pairs {
		k := p[0] + "/" + p[1]
		b.ReportMetric(median(ratios[k]), k)
	}
	b.ReportMetric(0, "ns/op") // a round's wall time mixes every tool: not a figure to read
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// collectPortcullis runs "portcullis mirror collect" into out.
func (e *mirrorBenchEnv) collectPortcullis(out string, flags ...string) (benchRun, string, error) {
	args := append([]string{"mirror", "collect", "--file", e.mirrorFile, "--out", out, "--key", e.keyFile}, flags...)
	env := []string{"COSIGN_PASSWORD=pw"}
	if dir := os.Getenv("PORTCULLIS_MBENCH_PROFILES"); dir != "" {
		// Each collect's CPU profile, for go tool pprof.
		env = append(env, "PORTCULLIS_CPUPROFILE="+filepath.Join(dir, "collect-"+filepath.Base(filepath.Dir(out))+strings.Join(flags, "")+".prof"))
	}
	r, err := runBench(gatewayBin, env, args...)
	return r, out, err
}

// checkBundle checks that the bundle in dir lists the images' digests.
func (e *mirrorBenchEnv) checkBundle(dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, "bundle.json"))
	if err != nil {
		return err
	}
	var bm struct{ Images []struct{ Digest string } }
	if err := json.Unmarshal(data, &bm); err != nil {
		return err
	}
	var got []string
	for _, img := range bm.Images {
		got = append(got, img.Digest)
	}
	return e.sameDigests("bundle "+dir, got)
}

// checkLayout checks that the OCI layout in dir lists the images' digests.
func (e *mirrorBenchEnv) checkLayout(dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return err
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(data, &idx); err != nil {
		return err
	}
	var got []string
	for _, d := range idx.Manifests {
		got = append(got, d.Digest.String())
	}
	if err := e.sameDigests("layout "+dir, got); err != nil {
		m, _ := os.ReadFile(filepath.Join(dir, "blobs", "sha256", idx.Manifests[0].Digest.Hex))
		return fmt.Errorf("%w; first manifest:\n%s", err, m)
	}
	return nil
}

func (e *mirrorBenchEnv) sameDigests(what string, got []string) error {
	var want []string
	for _, img := range e.images {
		want = append(want, img.digest)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		return fmt.Errorf("%s holds %v, want %v", what, got, want)
	}
	return nil
}

// runBench runs a client to its end and measures it; its output is only shown on failure.
func runBench(bin string, env []string, args ...string) (benchRun, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(append(cleanEnv(), "DOCKER_CONFIG="+os.DevNull+".none"), env...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &lastLines{w: &out}
	start := time.Now()
	err := cmd.Run()
	r := benchRun{wall: time.Since(start)}
	if cmd.ProcessState != nil {
		r.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if err != nil {
		s := out.String()
		if len(s) > 4000 {
			s = s[len(s)-4000:]
		}
		return r, fmt.Errorf("%s %s: %w\n%s", filepath.Base(bin), strings.Join(args, " "), err, s)
	}
	return r, nil
}

// lastLines keeps a process's stderr from growing without bound (progress lines).
type lastLines struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (l *lastLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}

func (l *lastLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w.Len() > 1<<20 {
		s := l.w.String()[l.w.Len()-64<<10:]
		l.w.Reset()
		l.w.WriteString(s)
	}
	return l.w.Write(p)
}

// benchReg is a registry of one round, its storage removed when it stops.
type benchReg struct {
	url  string
	stop func()
}

func benchRegistry(b *testing.B, dir string) benchReg {
	cfg, err := embedded.Config(dir)
	if err != nil {
		b.Fatal(err)
	}
	reg, err := embedded.Start(context.Background(), cfg, "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	return benchReg{url: reg.URL, stop: func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = reg.Close(ctx)
		_ = os.RemoveAll(dir)
	}}
}

func benchWrite(b *testing.B, path string, data []byte) {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		b.Fatal(err)
	}
}

func benchRead(b *testing.B, path string) []byte {
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// genLayer is a layer generated from a seed whenever it is read, never held in memory:
// ChaCha8 output (incompressible) or text of 256 pseudo-words (zstd takes it to about a
// third), framed as gzip of stored blocks, so that clients that sniff a layer find the
// gzip its media type says (skopeo would otherwise compress an uncompressed layer and
// change the manifest). The payload is not a tar: nothing in these benchmarks unpacks it.
type genLayer struct {
	seed    uint64
	payload int64 // bytes before gzip framing
	text    bool
	size    int64
	digest  v1.Hash
}

func newGenLayer(tb testing.TB, seed uint64, payload int64, text bool) *genLayer {
	l := &genLayer{seed: seed, payload: payload, text: text}
	h := sha256.New()
	n, err := io.Copy(h, l.open())
	if err != nil {
		tb.Fatal(err)
	}
	l.size = n
	l.digest = v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}
	return l
}

func (l *genLayer) open() io.Reader {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], l.seed)
	r := &genReader{rng: rand.NewChaCha8(key), left: l.payload, text: l.text}
	g := &gzipStored{src: r, chunk: make([]byte, 64<<10)}
	g.zw, _ = gzip.NewWriterLevel(&g.buf, gzip.NoCompression)
	return g
}

// gzipStored gzips what src gives without compressing it (stored blocks), as it is read.
type gzipStored struct {
	src   io.Reader
	zw    *gzip.Writer
	buf   bytes.Buffer
	chunk []byte
	done  bool
}

func (g *gzipStored) Read(p []byte) (int, error) {
	for g.buf.Len() == 0 {
		if g.done {
			return 0, io.EOF
		}
		n, err := io.ReadFull(g.src, g.chunk)
		if n > 0 {
			if _, werr := g.zw.Write(g.chunk[:n]); werr != nil {
				return 0, werr
			}
		}
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			if err := g.zw.Close(); err != nil {
				return 0, err
			}
			g.done = true
		case err != nil:
			return 0, err
		}
	}
	return g.buf.Read(p)
}

func (l *genLayer) Digest() (v1.Hash, error)             { return l.digest, nil }
func (l *genLayer) DiffID() (v1.Hash, error)             { return l.digest, nil }
func (l *genLayer) Compressed() (io.ReadCloser, error)   { return io.NopCloser(l.open()), nil }
func (l *genLayer) Uncompressed() (io.ReadCloser, error) { return io.NopCloser(l.open()), nil }
func (l *genLayer) Size() (int64, error)                 { return l.size, nil }
func (l *genLayer) MediaType() (types.MediaType, error)  { return types.OCILayer, nil }

// genWords are the text layers' vocabulary: 256 lowercase words of 2 to 9 letters.
var genWords = func() [256][]byte {
	var w [256][]byte
	r := rand.New(rand.NewPCG(7, 7))
	for i := range w {
		n := 2 + r.IntN(8)
		for range n {
			w[i] = append(w[i], byte('a'+r.IntN(26)))
		}
		w[i] = append(w[i], ' ')
	}
	return w
}()

// genReader is a genLayer's byte stream.
type genReader struct {
	rng     *rand.ChaCha8
	left    int64
	text    bool
	pending []byte
	buf     []byte
	pick    [4096]byte
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.left {
		p = p[:g.left]
	}
	if !g.text {
		_, _ = g.rng.Read(p)
		g.left -= int64(len(p))
		return len(p), nil
	}
	n := 0
	for n < len(p) {
		if len(g.pending) == 0 {
			_, _ = g.rng.Read(g.pick[:])
			g.buf = g.buf[:0]
			for i, c := range g.pick {
				g.buf = append(g.buf, genWords[c]...)
				if i%12 == 11 {
					g.buf[len(g.buf)-1] = '\n'
				}
			}
			g.pending = g.buf
		}
		k := copy(p[n:], g.pending)
		g.pending = g.pending[k:]
		n += k
	}
	g.left -= int64(n)
	return n, nil
}
