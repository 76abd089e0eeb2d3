package loadgen

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Path is one way of reaching the registry: directly, or through the processes in front
// of it.
type Path struct {
	// Name labels the path in the report. "direct" and "nginx" are the baselines every
	// other path is compared with.
	Name string `json:"name"`
	// Targets are the base URLs the nodes are spread over (round-robin by node).
	Targets []string `json:"targets"`
	// Servers are the root pids of the processes in front of the registry on this path
	// (none for direct), measured with their descendants.
	Servers []int `json:"servers,omitempty"`
}

var pathName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// ParsePath parses NAME=URL[+URL...][@PID[,PID...]], e.g.
// "portcullis-2=http://127.0.0.1:5001+http://127.0.0.1:5002@4711,4712".
func ParsePath(s string) (Path, error) {
	name, rest, ok := strings.Cut(s, "=")
	if !ok {
		return Path{}, fmt.Errorf("path %q: want NAME=URL[+URL...][@PID[,PID...]]", s)
	}
	if !pathName.MatchString(name) {
		return Path{}, fmt.Errorf("path %q: name %q: want lower-case letters, digits and '-', starting with a letter, at most 32", s, name)
	}
	p := Path{Name: name}
	urls, pids, hasPids := strings.Cut(rest, "@")
	for i, u := range strings.Split(urls, "+") {
		parsed, err := url.Parse(u)
		if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" ||
			parsed.User != nil || parsed.RawQuery != "" || parsed.Fragment != "" || strings.Trim(parsed.Path, "/") != "" {
			return Path{}, fmt.Errorf("path %q: target %d %q: want http(s)://HOST:PORT", s, i+1, u)
		}
		p.Targets = append(p.Targets, parsed.Scheme+"://"+parsed.Host)
	}
	if hasPids {
		for i, f := range strings.Split(pids, ",") {
			pid, err := strconv.Atoi(f)
			if err != nil || pid < 1 {
				return Path{}, fmt.Errorf("path %q: pid %d %q: want a positive process id", s, i+1, f)
			}
			p.Servers = append(p.Servers, pid)
		}
	}
	return p, nil
}

// ParseSize parses a size such as 150MiB, 1GiB, 512KiB or 4096 (bytes).
func ParseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	num, mult := s, int64(1)
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = n, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("size %q: want a positive whole number with an optional unit KiB, MiB or GiB, at most 1 TiB", s)
	}
	return n * mult, nil
}

// ParseSizes parses a comma-separated list of sizes.
func ParseSizes(s string) ([]int64, error) {
	var out []int64
	for i, f := range strings.Split(s, ",") {
		n, err := ParseSize(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i+1, err)
		}
		out = append(out, n)
	}
	return out, nil
}
