package loadgen

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times: 100 on every Linux
// architecture Go supports.
const clockTicks = 100

// ProcSample is what /proc says about one process.
type ProcSample struct {
	// CPU is user plus system time.
	CPU time.Duration
	// PeakRSS is VmHWM in bytes: the resident set's high-water mark since the start or
	// the last ResetPeak.
	PeakRSS int64
	// PPID is the parent process.
	PPID int
}

// ReadProc reads pid's CPU time from /proc/<pid>/stat and its peak RSS from
// /proc/<pid>/status.
func ReadProc(pid int) (ProcSample, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ProcSample{}, err
	}
	var s ProcSample
	var ticks uint64
	if s.PPID, ticks, err = ParseStat(stat); err != nil {
		return ProcSample{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	s.CPU = time.Duration(ticks) * time.Second / clockTicks
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ProcSample{}, err
	}
	if s.PeakRSS, err = ParseStatusHWM(status); err != nil {
		return ProcSample{}, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	return s, nil
}

// ParseStat returns the parent pid and utime+stime (in clock ticks) of a /proc/<pid>/stat
// line. The command name (field 2) may hold spaces and parentheses, so fields are counted
// from its last ')'.
func ParseStat(data []byte) (ppid int, ticks uint64, err error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("no ')' after the command name")
	}
	// After ')': state(3) ppid(4) ... utime(14) stime(15).
	f := bytes.Fields(data[i+1:])
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("%d fields after the command name, want at least 13", len(f))
	}
	p, err := strconv.Atoi(string(f[1]))
	if err != nil || p < 0 {
		return 0, 0, fmt.Errorf("ppid %q: not a pid", f[1])
	}
	u, err := strconv.ParseUint(string(f[11]), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("utime %q: %w", f[11], err)
	}
	st, err := strconv.ParseUint(string(f[12]), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("stime %q: %w", f[12], err)
	}
	if u+st < u {
		return 0, 0, fmt.Errorf("utime %d + stime %d overflows", u, st)
	}
	return p, u + st, nil
}

// ParseStatusHWM returns VmHWM in bytes from /proc/<pid>/status ("VmHWM:   12345 kB").
func ParseStatusHWM(data []byte) (int64, error) {
	for line := range bytes.Lines(data) {
		rest, ok := bytes.CutPrefix(line, []byte("VmHWM:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("VmHWM line %q: want \"<n> kB\"", bytes.TrimSpace(line))
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil || kb < 0 || kb > 1<<42 {
			return 0, fmt.Errorf("VmHWM %q: not a size in kB", f[0])
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("no VmHWM line (a kernel thread, or a process that has exited)")
}

// ResetPeak resets pid's VmHWM to its current RSS (writes 5 to /proc/<pid>/clear_refs,
// Linux 4.0 and later; needs the right to write that file, e.g. the process's owner).
func ResetPeak(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// Tree returns pid and all its descendants (nginx's workers are children of its master).
func Tree(pid int) []int {
	children := map[int][]int{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		ppid, _, err := ParseStat(data)
		if err != nil {
			continue
		}
		child, err := strconv.Atoi(filepath.Base(filepath.Dir(path)))
		if err != nil {
			continue
		}
		children[ppid] = append(children[ppid], child)
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// Instance is one serving process and its descendants, measured together.
type Instance struct {
	// Root is the process the harness started.
	Root int
	pids []int
}

// NewInstance finds root's descendants now (they must not change during the run).
func NewInstance(root int) (*Instance, error) {
	if _, err := ReadProc(root); err != nil {
		return nil, fmt.Errorf("process %d: %w", root, err)
	}
	return &Instance{Root: root, pids: Tree(root)}, nil
}

// Sample sums CPU and peak RSS over the instance's processes.
func (in *Instance) Sample() (ProcSample, error) {
	var sum ProcSample
	for _, pid := range in.pids {
		s, err := ReadProc(pid)
		if err != nil {
			return ProcSample{}, fmt.Errorf("process %d (of %d): %w", pid, in.Root, err)
		}
		sum.CPU += s.CPU
		sum.PeakRSS += s.PeakRSS
	}
	return sum, nil
}

// ResetPeak resets the peak RSS of every process of the instance.
func (in *Instance) ResetPeak() error {
	for _, pid := range in.pids {
		if err := ResetPeak(pid); err != nil {
			return fmt.Errorf("process %d (of %d): resetting VmHWM: %w", pid, in.Root, err)
		}
	}
	return nil
}
