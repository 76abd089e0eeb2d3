package loadgen

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParsePath(t *testing.T) {
	tests := []struct {
		in      string
		want    Path
		wantErr string
	}{
		{"direct=http://127.0.0.1:5000", Path{Name: "direct", Targets: []string{"http://127.0.0.1:5000"}}, ""},
		{"portcullis-2=http://a:1+http://b:2/@10,11", Path{Name: "portcullis-2", Targets: []string{"http://a:1", "http://b:2"}, Servers: []int{10, 11}}, ""},
		{"nginx=https://x@7", Path{Name: "nginx", Targets: []string{"https://x"}, Servers: []int{7}}, ""},
		{"direct", Path{}, "want NAME=URL"},
		{"Direct=http://a:1", Path{}, "name \"Direct\""},
		{"d=ftp://a:1", Path{}, "target 1"},
		{"d=http://a:1/v2", Path{}, "target 1"},
		{"d=http://u:p@a:1", Path{}, "target 1"},
		{"d=http://a:1+", Path{}, "target 2"},
		{"d=http://a:1@0", Path{}, "pid 1 \"0\""},
		{"d=http://a:1@1,x", Path{}, "pid 2 \"x\""},
	}
	for _, tt := range tests {
		got, err := ParsePath(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParsePath(%q) error %v, want one containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParsePath(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1": 1, "4096B": 4096, "512KiB": 512 << 10, "150MiB": 150 << 20, "1GiB": 1 << 30} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1MiB", "1.5GiB", "1TB", "2048GiB", "MiB", "9223372036854775807KiB"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
	if _, err := ParseSizes("1MiB,,2MiB"); err == nil || !strings.Contains(err.Error(), "entry 2") {
		t.Errorf("ParseSizes with an empty entry: %v, want entry 2 named", err)
	}
}

func TestParseStat(t *testing.T) {
	// A command name with spaces and parentheses, as a process may choose.
	line := "4711 (nginx: worker (x) ) S 4710 4710 4710 0 -1 4194624 100 0 0 0 250 75 0 0 20 0 1 0 123 456 789\n"
	ppid, ticks, err := ParseStat([]byte(line))
	if err != nil || ppid != 4710 || ticks != 325 {
		t.Fatalf("ParseStat = %d, %d, %v; want 4710, 325 (250+75)", ppid, ticks, err)
	}
	for _, bad := range []string{"", "1 (x S 1", "1 (x) S 1 2 3", "1 (x) S -1 1 1 0 -1 0 0 0 0 0 1 1", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 a 1"} {
		if _, _, err := ParseStat([]byte(bad)); err == nil {
			t.Errorf("ParseStat(%q): no error", bad)
		}
	}
}

func TestParseStatusHWM(t *testing.T) {
	status := "Name:\tportcullis\nVmPeak:\t 900 kB\nVmHWM:\t   51200 kB\nVmRSS:\t 40000 kB\n"
	if got, err := ParseStatusHWM([]byte(status)); err != nil || got != 50<<20 {
		t.Fatalf("ParseStatusHWM = %d, %v; want %d", got, err, 50<<20)
	}
	for _, bad := range []string{"Name:\tkthreadd\n", "VmHWM: 12 MB\n", "VmHWM: x kB\n", "VmHWM: -1 kB\n"} {
		if _, err := ParseStatusHWM([]byte(bad)); err == nil {
			t.Errorf("ParseStatusHWM(%q): no error", bad)
		}
	}
}

// TestSummarizeRatios: ratios are medians of per-round quotients against the baseline of
// the same round, not quotients of the medians.
func TestSummarizeRatios(t *testing.T) {
	round := func(r int, path string, rollout, p99 float64, proxyCPU float64, rss int64) RoundResult {
		res := RoundResult{Round: r, Path: path, RolloutSeconds: rollout, ManifestP50Ms: p99 / 2, ManifestP99Ms: p99,
			BlobBytes: 1 << 30, BlobMiBps: 1024 / rollout, ProxyCPUSeconds: proxyCPU, RegistryCPUSeconds: 1,
			manifest: []time.Duration{time.Duration(p99 * float64(time.Millisecond))}}
		if rss > 0 {
			res.ProxyPeakRSS = []int64{rss, rss / 2}
		}
		return res
	}
	results := []RoundResult{
		round(1, Direct, 10, 10, 0, 0), round(1, Nginx, 20, 20, 2, 100<<20), round(1, "gw", 15, 5, 1, 50<<20),
		round(2, Direct, 40, 10, 0, 0), round(2, Nginx, 40, 20, 2, 100<<20), round(2, "gw", 40, 5, 1, 50<<20),
		round(3, Direct, 10, 10, 0, 0), round(3, Nginx, 20, 20, 2, 100<<20), round(3, "gw", 15, 5, 1, 50<<20),
	}
	sums := Summarize(results)
	if len(sums) != 3 || sums[0].Path != Direct || sums[2].Path != "gw" {
		t.Fatalf("summaries %+v", sums)
	}
	gw := sums[2]
	if gw.VsDirect == nil || gw.VsNginx == nil || sums[1].VsNginx != nil || sums[0].VsDirect != nil {
		t.Fatalf("ratios present: %+v", sums)
	}
	// Per round gw/direct rollout: 1.5, 1.0, 1.5 → median 1.5 (the quotient of the
	// medians, 15/10, happens to agree; the nginx one shows the difference).
	if gw.VsDirect.Rollout != 1.5 || gw.VsNginx.Rollout != 0.75 || gw.VsDirect.ManifestP99 != 0.5 {
		t.Errorf("rollout vs direct %v, vs nginx %v, p99 vs direct %v; want 1.5, 0.75, 0.5", gw.VsDirect.Rollout, gw.VsNginx.Rollout, gw.VsDirect.ManifestP99)
	}
	if gw.VsNginx.ProxyCPUPerGiB != 0.5 || gw.VsNginx.ProxyPeakRSS != 0.5 || gw.VsDirect.ProxyCPUPerGiB != 0 {
		t.Errorf("proxy ratios %+v / %+v", gw.VsNginx, gw.VsDirect)
	}
	if gw.VsDirect.ServingCPUPerGiB != 2 { // (1+1)/1 per GiB against the registry's 1
		t.Errorf("serving CPU vs direct %v, want 2", gw.VsDirect.ServingCPUPerGiB)
	}
	if gw.ProxyPeakRSSMiB != 50 || gw.ProxyCPUPerGiB != 1 || gw.ServingCPUPerGiB != 2 || gw.RolloutSeconds != 15 {
		t.Errorf("gw summary %+v", gw)
	}
	checks := Checks(sums, "gw", 150e6)
	var missed []string
	for _, c := range checks {
		if !c.OK {
			missed = append(missed, c.Name)
		}
	}
	if strings.Join(missed, ",") != "gw rollout ÷ direct" {
		t.Errorf("missed %v, want only the rollout against direct (1.5 > 1.3)", missed)
	}
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"direct=http://127.0.0.1:5000", "p=http://a:1+http://b:2@1,2", "x=", "=@", "a=http://[::1]:5@9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePath(s)
		if err != nil {
			return
		}
		if len(p.Targets) == 0 || !pathName.MatchString(p.Name) {
			t.Fatalf("ParsePath(%q) accepted %+v", s, p)
		}
		for _, pid := range p.Servers {
			if pid < 1 {
				t.Fatalf("ParsePath(%q) accepted pid %d", s, pid)
			}
		}
	})
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"1", "150MiB", "1GiB", "0", "-1KiB", "99999999999999GiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err == nil && (n <= 0 || n > 1<<40) {
			t.Fatalf("ParseSize(%q) = %d", s, n)
		}
	})
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("1 (init) S 0 1 1 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 1 2 3\n"))
	f.Add([]byte("2 (a) b) R 1 1 1 0 -1 0 0 0 0 0 18446744073709551615 1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ppid, _, err := ParseStat(data)
		if err == nil && ppid < 0 {
			t.Fatalf("ParseStat accepted ppid %d", ppid)
		}
		_, _ = ParseStatusHWM(data)
	})
}
