package doccheck

import (
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// link is one relative link found in a page or a source file.
type link struct {
	from   string // page or file, and line
	dir    string // directory the target is relative to, from the repository root
	target string
}

func TestLinks(t *testing.T) {
	var links []link
	for _, p := range pages(t) {
		p.blocks(t, func(line int, text string) {
			for _, m := range mdLinkRE.FindAllStringSubmatch(text, -1) {
				links = append(links, link{from: p.path + ":" + itoa(line), dir: path.Dir(p.path), target: m[2]})
			}
		})
	}
	if len(links) < 20 {
		t.Fatalf("found only %d links in the documentation: is the link pattern broken?", len(links))
	}
	anchors := map[string]map[string]bool{}
	for _, l := range links {
		checkLink(t, l, anchors)
	}
}

// docRefRE finds documentation pages cited in source: comments, error messages and
// messages the gateway sends to clients.
var docRefRE = regexp.MustCompile(`(?:^|[^/\w.-])((?:docs/[A-Za-z0-9_-]+|README)\.md)(#[A-Za-z0-9_-]+)?`)

// TestSourceReferences checks that every docs/*.md or README.md (with its #anchor) that
// the Go sources and scripts cite exists.
func TestSourceReferences(t *testing.T) {
	var links []link
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == ".git" || n == "testdata" || n == "node_modules" || filepath.ToSlash(p) == root+"/internal/doccheck" {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if !strings.HasSuffix(rel, ".go") && !strings.HasPrefix(rel, "scripts/") && !strings.HasPrefix(rel, ".ci/") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(data), "\n") {
			for _, m := range docRefRE.FindAllStringSubmatch(line, -1) {
				links = append(links, link{from: rel + ":" + itoa(i+1), dir: ".", target: m[1] + m[2]})
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]map[string]bool{}
	for _, l := range links {
		checkLink(t, l, anchors)
	}
	t.Logf("%d references to the documentation in the sources", len(links))
}

var schemeRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)

// checkLink reports a relative link whose file does not exist or whose #anchor is not a
// heading of the markdown page it names. Absolute URLs are not fetched.
func checkLink(t *testing.T, l link, anchors map[string]map[string]bool) {
	t.Helper()
	if l.target == "" {
		t.Errorf("%s: empty link target", l.from)
		return
	}
	if schemeRE.MatchString(l.target) {
		return
	}
	file, anchor, _ := strings.Cut(l.target, "#")
	target := l.from[:strings.LastIndexByte(l.from, ':')]
	if file != "" {
		target = path.Clean(path.Join(l.dir, file))
	}
	if target == ".." || strings.HasPrefix(target, "../") || path.IsAbs(file) {
		t.Errorf("%s: link %q leaves the repository", l.from, l.target)
		return
	}
	if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(target))); err != nil {
		t.Errorf("%s: link %q: %s does not exist", l.from, l.target, target)
		return
	}
	if anchor == "" {
		return
	}
	if !strings.HasSuffix(target, ".md") {
		t.Errorf("%s: link %q: an anchor into %s, which is not a markdown page", l.from, l.target, target)
		return
	}
	a, ok := anchors[target]
	if !ok {
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(target)))
		if err != nil {
			t.Fatal(err)
		}
		p := &page{path: target, lines: strings.Split(string(data), "\n")}
		a = p.anchors(t)
		anchors[target] = a
	}
	if !a[anchor] {
		t.Errorf("%s: link %q: %s has no heading with anchor #%s (it has %s)", l.from, l.target, target, anchor, strings.Join(sortedKeys(a), ", "))
	}
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return sortedStrings(out)
}

func sortedStrings(s []string) []string {
	sort.Strings(s)
	return s
}
