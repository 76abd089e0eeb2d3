package gate

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/portcullis-dev/portcullis/policy"
)

// LoadPolicy returns the built-in policy of that name, or parses the file at spec with
// its key files and exception files (see FileOptions).
func LoadPolicy(spec string) (*policy.Policy, error) {
	p, _, err := loadPolicy(spec)
	return p, err
}

// loadPolicy is LoadPolicy, also returning the paths the policy depends on: the policy
// file, every key or exception file read, and the directories exceptionFiles patterns
// were expanded in (a file added there changes the directory). It returns them even when
// the policy is refused, so a watcher knows what to watch for the fix.
func loadPolicy(spec string) (*policy.Policy, []string, error) {
	for _, n := range policy.BuiltinNames() {
		if spec == n {
			p, err := policy.Builtin(n)
			return p, nil, err
		}
	}
	deps := []string{spec}
	data, err := os.ReadFile(spec)
	if err != nil {
		return nil, deps, fmt.Errorf("reading policy: %w", err)
	}
	dir := filepath.Dir(spec)
	abs := func(name string) string {
		if filepath.IsAbs(name) {
			return name
		}
		return filepath.Join(dir, name)
	}
	opts := FileOptions(spec)
	read, glob := opts.ReadFile, opts.Glob
	opts.ReadFile = func(name string) ([]byte, error) {
		deps = append(deps, abs(name))
		return read(name)
	}
	opts.Glob = func(pattern string) ([]string, error) {
		d := filepath.FromSlash(pattern)
		for d != "." && d != string(filepath.Separator) && strings.ContainsAny(d, "*?[\\") {
			d = filepath.Dir(d)
		}
		deps = append(deps, abs(d))
		return glob(pattern)
	}
	p, err := policy.ParseWith(data, opts)
	if err != nil {
		return nil, deps, fmt.Errorf("policy %s:\n%w", spec, err)
	}
	return p, deps, nil
}

// FileOptions reads the key files and exception files the policy file at path names,
// relative to its directory (absolute names as written), and expands exceptionFiles
// patterns there. Reads stop one byte past policy.MaxExceptionFileBytes, so an oversized
// file is reported as such rather than read truncated.
func FileOptions(path string) policy.ParseOptions {
	dir := filepath.Dir(path)
	return policy.ParseOptions{
		ReadFile: func(name string) ([]byte, error) {
			if !filepath.IsAbs(name) {
				name = filepath.Join(dir, name)
			}
			f, err := os.Open(name)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			return io.ReadAll(io.LimitReader(f, policy.MaxExceptionFileBytes+1))
		},
		Glob: func(pattern string) ([]string, error) {
			native := filepath.FromSlash(pattern)
			if filepath.IsAbs(native) {
				return filepath.Glob(native)
			}
			matches, err := filepath.Glob(filepath.Join(dir, native))
			if err != nil {
				return nil, err
			}
			out := make([]string, 0, len(matches))
			for _, m := range matches {
				if st, err := os.Stat(m); err == nil && st.IsDir() {
					continue
				}
				rel, err := filepath.Rel(dir, m)
				if err != nil {
					return nil, err
				}
				out = append(out, filepath.ToSlash(rel))
			}
			return out, nil
		},
	}
}
