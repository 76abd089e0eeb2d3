package loadgen

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Baseline path names: every other path is compared with these two.
const (
	Direct = "direct"
	Nginx  = "nginx"
)

// Summary is one path over all rounds.
type Summary struct {
	Path   string `json:"path"`
	Rounds int    `json:"rounds"`
	// RolloutSeconds and BlobMiBps are medians over rounds.
	RolloutSeconds float64 `json:"rolloutSeconds"`
	BlobMiBps      float64 `json:"blobMiBps"`
	// ManifestP50Ms and ManifestP99Ms are over every manifest request of every round.
	ManifestP50Ms float64 `json:"manifestP50Ms"`
	ManifestP99Ms float64 `json:"manifestP99Ms"`
	// Steps are the manifest latencies by request, over every round.
	Steps map[string]Latency `json:"manifestSteps,omitempty"`
	// ProxyCPUPerGiB is the CPU seconds of the processes in front of the registry per GiB
	// of blobs delivered; ServingCPUPerGiB adds the registry's.
	ProxyCPUPerGiB   float64 `json:"proxyCPUSecondsPerGiB"`
	ServingCPUPerGiB float64 `json:"servingCPUSecondsPerGiB"`
	// ProxyPeakRSSMiB is the largest VmHWM of one instance (a process and its children)
	// in front of the registry during any round.
	ProxyPeakRSSMiB float64 `json:"proxyPeakRSSMiB"`
	FailedRequests  int     `json:"failedRequests"`
	FailedNodes     int     `json:"failedNodes"`
	// VsDirect and VsNginx are medians over rounds of this path's figure divided by the
	// baseline's in the same round.
	VsDirect *Ratios `json:"vsDirect,omitempty"`
	VsNginx  *Ratios `json:"vsNginx,omitempty"`
}

// Ratios compare a path with a baseline, each the median over rounds of the per-round
// quotient path ÷ baseline. Below 1 is better except for BlobThroughput.
type Ratios struct {
	Rollout          float64 `json:"rollout"`
	ManifestP50      float64 `json:"manifestP50"`
	ManifestP99      float64 `json:"manifestP99"`
	BlobThroughput   float64 `json:"blobThroughput"`
	ServingCPUPerGiB float64 `json:"servingCPUPerGiB"`
	// ProxyCPUPerGiB and ProxyPeakRSS are only against nginx (direct has no proxy).
	ProxyCPUPerGiB float64 `json:"proxyCPUPerGiB,omitempty"`
	ProxyPeakRSS   float64 `json:"proxyPeakRSS,omitempty"`
}

// Summarize folds the rounds into one Summary per path, in the order paths first appear.
func Summarize(results []RoundResult) []Summary {
	var order []string
	byPath := map[string][]RoundResult{}
	for _, r := range results {
		if _, ok := byPath[r.Path]; !ok {
			order = append(order, r.Path)
		}
		byPath[r.Path] = append(byPath[r.Path], r)
	}
	byRound := map[string]map[int]RoundResult{}
	for _, r := range results {
		if byRound[r.Path] == nil {
			byRound[r.Path] = map[int]RoundResult{}
		}
		byRound[r.Path][r.Round] = r
	}
	var out []Summary
	for _, name := range order {
		rs := byPath[name]
		s := Summary{Path: name, Rounds: len(rs)}
		var rollout, mibps []float64
		var manifest []time.Duration
		steps := map[string][]time.Duration{}
		var bytes int64
		var proxyCPU, regCPU float64
		for _, r := range rs {
			rollout = append(rollout, r.RolloutSeconds)
			mibps = append(mibps, r.BlobMiBps)
			manifest = append(manifest, r.manifest...)
			for step, d := range r.steps {
				steps[step] = append(steps[step], d...)
			}
			bytes += r.BlobBytes
			proxyCPU += r.ProxyCPUSeconds
			regCPU += r.RegistryCPUSeconds
			for _, p := range r.ProxyPeakRSS {
				s.ProxyPeakRSSMiB = max(s.ProxyPeakRSSMiB, float64(p)/(1<<20))
			}
			s.FailedRequests += r.FailedRequests
			s.FailedNodes += r.FailedNodes
		}
		slices.Sort(manifest)
		if len(steps) > 0 {
			s.Steps = map[string]Latency{}
			for step, d := range steps {
				slices.Sort(d)
				s.Steps[step] = latency(d)
			}
		}
		s.RolloutSeconds = median(rollout)
		s.BlobMiBps = median(mibps)
		if len(manifest) > 0 {
			s.ManifestP50Ms = ms(Quantile(manifest, 0.50))
			s.ManifestP99Ms = ms(Quantile(manifest, 0.99))
		} else {
			// Rounds read back from JSON carry only their own quantiles.
			var p50, p99 []float64
			for _, r := range rs {
				p50, p99 = append(p50, r.ManifestP50Ms), append(p99, r.ManifestP99Ms)
			}
			s.ManifestP50Ms, s.ManifestP99Ms = median(p50), median(p99)
		}
		if gib := float64(bytes) / (1 << 30); gib > 0 {
			s.ProxyCPUPerGiB = proxyCPU / gib
			s.ServingCPUPerGiB = (proxyCPU + regCPU) / gib
		}
		if name != Direct && byRound[Direct] != nil {
			s.VsDirect = ratios(rs, byRound[Direct], false)
		}
		if name != Nginx && name != Direct && byRound[Nginx] != nil {
			s.VsNginx = ratios(rs, byRound[Nginx], true)
		}
		out = append(out, s)
	}
	return out
}

// ratios divides each round's figures by the baseline's of the same round and takes the
// median of each quotient over the rounds both have.
func ratios(rs []RoundResult, base map[int]RoundResult, proxy bool) *Ratios {
	var rollout, p50, p99, tput, serving, proxyCPU, rss []float64
	for _, r := range rs {
		b, ok := base[r.Round]
		if !ok {
			continue
		}
		rollout = appendRatio(rollout, r.RolloutSeconds, b.RolloutSeconds)
		p50 = appendRatio(p50, r.ManifestP50Ms, b.ManifestP50Ms)
		p99 = appendRatio(p99, r.ManifestP99Ms, b.ManifestP99Ms)
		tput = appendRatio(tput, r.BlobMiBps, b.BlobMiBps)
		serving = appendRatio(serving, perGiB(r.ProxyCPUSeconds+r.RegistryCPUSeconds, r.BlobBytes), perGiB(b.ProxyCPUSeconds+b.RegistryCPUSeconds, b.BlobBytes))
		if proxy {
			proxyCPU = appendRatio(proxyCPU, perGiB(r.ProxyCPUSeconds, r.BlobBytes), perGiB(b.ProxyCPUSeconds, b.BlobBytes))
			rss = appendRatio(rss, float64(slices.Max(append([]int64{0}, r.ProxyPeakRSS...))), float64(slices.Max(append([]int64{0}, b.ProxyPeakRSS...))))
		}
	}
	if len(rollout) == 0 {
		return nil
	}
	return &Ratios{
		Rollout: median(rollout), ManifestP50: median(p50), ManifestP99: median(p99),
		BlobThroughput: median(tput), ServingCPUPerGiB: median(serving),
		ProxyCPUPerGiB: median(proxyCPU), ProxyPeakRSS: median(rss),
	}
}

func appendRatio(xs []float64, a, b float64) []float64 {
	if b <= 0 || math.IsNaN(a) || math.IsNaN(b) {
		return xs
	}
	return append(xs, a/b)
}

func perGiB(cpu float64, bytes int64) float64 {
	if bytes <= 0 {
		return math.NaN()
	}
	return cpu / (float64(bytes) / (1 << 30))
}

// median of xs (0 for none); xs is reordered.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// WriteTable writes the summaries as two tables for people: the figures, then the ratios.
func WriteTable(w io.Writer, sums []Summary) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "path\trounds\trollout s\tmanifest p50 ms\tmanifest p99 ms\tblob MiB/s\tproxy CPU-s/GiB\tserving CPU-s/GiB\tproxy peak RSS MiB\tfailed req\t")
	for _, s := range sums {
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f\t%.2f\t%.0f\t%s\t%.2f\t%s\t%d\t\n", s.Path, s.Rounds, s.RolloutSeconds, s.ManifestP50Ms, s.ManifestP99Ms, s.BlobMiBps,
			dash(s.ProxyCPUPerGiB, "%.2f", s.Path != Direct), s.ServingCPUPerGiB, dash(s.ProxyPeakRSSMiB, "%.0f", s.Path != Direct), s.FailedRequests)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "path\tHEAD tag p50 ms\tp99 ms\tGET index p50 ms\tp99 ms\tGET manifest p50 ms\tp99 ms\t")
	for _, s := range sums {
		h, i, m := s.Steps[StepHeadTag], s.Steps[StepGetIndex], s.Steps[StepGetManifest]
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t\n", s.Path, h.P50Ms, h.P99Ms, i.P50Ms, i.P99Ms, m.P50Ms, m.P99Ms)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !slices.ContainsFunc(sums, func(s Summary) bool { return s.VsDirect != nil || s.VsNginx != nil }) {
		return nil
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "path\tvs\trollout\tmanifest p50\tmanifest p99\tblob throughput\tserving CPU/GiB\tproxy CPU/GiB\tproxy peak RSS\t")
	for _, s := range sums {
		for _, c := range []struct {
			base string
			r    *Ratios
		}{{Direct, s.VsDirect}, {Nginx, s.VsNginx}} {
			if c.r == nil {
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%.2f×\t%.2f×\t%.2f×\t%.2f×\t%.2f×\t%s\t%s\t\n", s.Path, c.base, c.r.Rollout, c.r.ManifestP50, c.r.ManifestP99, c.r.BlobThroughput, c.r.ServingCPUPerGiB,
				dash(c.r.ProxyCPUPerGiB, "%.2f×", c.base == Nginx), dash(c.r.ProxyPeakRSS, "%.2f×", c.base == Nginx))
		}
	}
	return tw.Flush()
}

func dash(v float64, format string, show bool) string {
	if !show {
		return "-"
	}
	return fmt.Sprintf(format, v)
}

// Check is one target of the issue, judged on a run's summaries.
type Check struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Limit string  `json:"limit"`
	OK    bool    `json:"ok"`
}

// Checks judges path (the one-gateway path) against the targets: rollout ≤ 1.0× nginx
// and ≤ 1.3× direct, manifest p99 below direct's, peak RSS ≤ maxRSS bytes (shown in MB,
// 10^6 bytes, as the target is written), and no failed request on any path. A target whose
// baseline was not measured is left out.
func Checks(sums []Summary, path string, maxRSS int64) []Check {
	var out []Check
	failed := 0
	for _, s := range sums {
		failed += s.FailedRequests
		if s.Path != path {
			continue
		}
		if s.VsNginx != nil {
			out = append(out, Check{Name: path + " rollout ÷ nginx", Value: s.VsNginx.Rollout, Limit: "≤ 1.00", OK: s.VsNginx.Rollout <= 1.0})
		}
		if s.VsDirect != nil {
			out = append(out,
				Check{Name: path + " rollout ÷ direct", Value: s.VsDirect.Rollout, Limit: "≤ 1.30", OK: s.VsDirect.Rollout <= 1.3},
				Check{Name: path + " manifest p99 ÷ direct", Value: s.VsDirect.ManifestP99, Limit: "< 1.00", OK: s.VsDirect.ManifestP99 < 1.0})
		}
		peak := s.ProxyPeakRSSMiB * (1 << 20)
		out = append(out, Check{Name: path + " peak RSS MB", Value: peak / 1e6, Limit: fmt.Sprintf("≤ %.0f", float64(maxRSS)/1e6), OK: peak <= float64(maxRSS)})
	}
	out = append(out, Check{Name: "failed requests, all paths", Value: float64(failed), Limit: "= 0", OK: failed == 0})
	return out
}

// WriteChecks writes the checks for people, one a line.
func WriteChecks(w io.Writer, checks []Check) {
	for _, c := range checks {
		verdict := "met"
		if !c.OK {
			verdict = "MISSED"
		}
		fmt.Fprintf(w, "target %-34s %10s  (%s)  %s\n", c.Name, strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", c.Value), "0"), "."), c.Limit, verdict)
	}
}
