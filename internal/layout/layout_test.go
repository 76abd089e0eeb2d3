package layout

import (
	"encoding/json"
	"io"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/portcullis-dev/portcullis/"

// allowed lists, for each package, the packages of ours it may import (DESIGN.md's layout
// table plus the packages added since; docs/ARCHITECTURE.md describes them).
// A package missing here fails the test, so a new package must take a place in the design.
var allowed = map[string][]string{
	"cmd/portcullis": {"*"},
	"config":         {},
	"policy":         {},
	"verify":         {},
	"cache":          {},
	"audit":          {},
	"scan":           {},
	// scan/harbor speaks the Harbor scanner adapter API with the built-in scanner's parts.
	"scan/harbor": {"scan"},
	"embedded":    {},
	"health":      {},
	"telemetry":   {},
	"records":     {},
	"upstream":    {},
	// gate keeps what it cannot recompute in records (through interfaces declared in gate,
	// whose methods use the records package's plain value types).
	// pullcred keys the scanner adapters' short-lived pull credentials like every cache key.
	"pullcred": {"cache"},
	// gate mints a scanner adapter's pull credential (pullcred) per scan; proxy accepts it.
	"gate":  {"policy", "verify", "scan", "cache", "audit", "records", "pullcred"},
	"proxy": {"gate", "cache", "policy", "pullcred"},
	// mirror verifies publisher signatures at collect with verify, against authorities
	// written in the policy's syntax and read by policy.ReadAuthorities.
	"mirror": {"gate", "records", "cache", "policy", "verify"},
	// pullthrough fetches mirrored public images into the upstream: the mirror file's name
	// mapping (mirror), the fleet-wide fetch lock (cache), tag-move events (audit) and the
	// policy's repository globs.
	"pullthrough": {"mirror", "cache", "audit", "policy"},
	// clientconfig writes client files from the mirror file's name mapping (mirror's).
	"clientconfig": {"mirror"},
	// Test support may use what it starts.
	"internal/regtest":    {"embedded", "proxy", "cache"},
	"internal/cosigntest": {},
	"internal/scantest":   {"scan"},
	"internal/layout":     {},
	// The rollout load harness talks HTTP only; its command serves the direct-path registry
	// from embedded in a process of its own.
	"internal/loadgen":  {"embedded"},
	"internal/doccheck": {}, // test-only: its tests read the docs through config, policy and gate
	"e2e":               {},
}

type pkg struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

func TestImportRules(t *testing.T) {
	cmd := exec.Command("go", "list", "-json", "github.com/portcullis-dev/portcullis/...")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		seen++
		name := strings.TrimPrefix(p.ImportPath, module)
		domain, rules, ok := allowedFor(name)
		if !ok {
			t.Errorf("package %s has no place in the layout: add it to allowed (and to docs/ARCHITECTURE.md)", name)
			continue
		}
		for _, imp := range p.Imports {
			dep, ours := strings.CutPrefix(imp, module)
			if !ours || dep == domain || strings.HasPrefix(dep, domain+"/") {
				continue // within its own domain
			}
			if !permits(rules, dep) {
				t.Errorf("%s imports %s; it may import only %v", name, dep, sorted(rules))
			}
		}
	}
	if seen < 10 {
		t.Fatalf("go list found %d packages; is the module layout intact?", seen)
	}
}

// allowedFor finds the domain of a package (itself or its nearest listed parent:
// subpackages follow their domain's rules) and that domain's rules.
func allowedFor(name string) (string, []string, bool) {
	for n := name; n != "" && n != "."; {
		if r, ok := allowed[n]; ok {
			return n, r, true
		}
		i := strings.LastIndexByte(n, '/')
		if i < 0 {
			break
		}
		n = n[:i]
	}
	return "", nil, false
}

func permits(rules []string, dep string) bool {
	for _, r := range rules {
		if r == "*" || dep == r || strings.HasPrefix(dep, r+"/") {
			return true
		}
	}
	return false
}

func sorted(xs []string) []string {
	out := append([]string(nil), xs...)
	sort.Strings(out)
	return out
}
