package doccheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// root is the repository root, relative to this package's directory.
const root = "../.."

// page is one markdown file of the documentation.
type page struct {
	path  string // relative to the repository root, with '/' separators
	lines []string
}

// block is one fenced code block of a page.
type block struct {
	page *page
	line int    // 1-based line of the opening fence
	lang string // first word of the info string
	kind string // second word of the info string, if any
	body string // the content, with the fence's indentation removed
}

func (b block) String() string { return b.page.path + ":" + itoa(b.line) }

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var d []byte
	for ; n > 0; n /= 10 {
		d = append([]byte{byte('0' + n%10)}, d...)
	}
	return string(d)
}

// pages reads README.md and docs/*.md.
func pages(t *testing.T) []*page {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	names = append([]string{filepath.Join(root, "README.md")}, names...)
	if len(names) < 5 {
		t.Fatalf("found only %v: is the documentation where it should be?", names)
	}
	var out []*page
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, n)
		out = append(out, &page{path: filepath.ToSlash(rel), lines: strings.Split(string(data), "\n")})
	}
	return out
}

var fenceRE = regexp.MustCompile("^( *)(```+|~~~+)(.*)$")

// blocks returns the page's fenced code blocks; prose reports each line outside them.
// An unclosed fence is an error.
func (p *page) blocks(t *testing.T, prose func(line int, text string)) []block {
	t.Helper()
	var out []block
	for i := 0; i < len(p.lines); i++ {
		m := fenceRE.FindStringSubmatch(p.lines[i])
		if m == nil {
			if prose != nil {
				prose(i+1, p.lines[i])
			}
			continue
		}
		indent, fence, info := len(m[1]), m[2], strings.Fields(m[3])
		b := block{page: p, line: i + 1}
		if len(info) > 0 {
			b.lang = info[0]
		}
		if len(info) > 1 {
			b.kind = info[1]
		}
		var body []string
		closed := false
		for i++; i < len(p.lines); i++ {
			l := p.lines[i]
			if c := fenceRE.FindStringSubmatch(l); c != nil && c[2][0] == fence[0] && len(c[2]) >= len(fence) && strings.TrimSpace(c[3]) == "" {
				closed = true
				break
			}
			trim := len(l) - len(strings.TrimLeft(l, " "))
			body = append(body, l[min(indent, trim):])
		}
		if !closed {
			t.Errorf("%s: fence opened here is never closed", b)
		}
		b.body = strings.Join(body, "\n") + "\n"
		out = append(out, b)
	}
	return out
}

var (
	headingRE = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)
	htmlIDRE  = regexp.MustCompile(`<a\s+(?:id|name)="([^"]+)"`)
	mdLinkRE  = regexp.MustCompile(`\[([^\]]*)\]\(([^)\s]*)\)`)
)

// anchors lists the anchors GitHub gives the page's headings (and explicit <a id> tags).
func (p *page) anchors(t *testing.T) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	p.blocks(t, func(_ int, text string) {
		for _, m := range htmlIDRE.FindAllStringSubmatch(text, -1) {
			out[m[1]] = true
		}
		m := headingRE.FindStringSubmatch(text)
		if m == nil {
			return
		}
		s := slug(m[1])
		if n := seen[s]; n > 0 {
			out[s+"-"+itoa(n)] = true
		} else {
			out[s] = true
		}
		seen[s]++
	})
	return out
}

// slug is GitHub's anchor for a heading: link markup reduced to its text, lower case,
// spaces to '-', and everything but letters, digits, '-' and '_' dropped.
func slug(heading string) string {
	heading = mdLinkRE.ReplaceAllString(heading, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case unicode.IsLetter(r), unicode.IsDigit(r), r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}
