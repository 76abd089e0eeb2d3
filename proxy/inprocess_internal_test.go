package proxy

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzCleanQuery: whatever query string a client sends, what the in-process and zero-copy
// paths pass on parses, and a query that already parsed is passed on byte for byte.
func FuzzCleanQuery(f *testing.F) {
	for _, s := range []string{"", "n=10&last=a", "digest=sha256%3Aab", "a=1;b=2", "x=%zz", "x=%", "mount=sha256:0&from=a/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := cleanQuery(s)
		if _, err := url.ParseQuery(got); err != nil {
			t.Fatalf("cleanQuery(%q) = %q, which does not parse: %v", s, got, err)
		}
		if _, err := url.ParseQuery(s); err == nil && !strings.Contains(s, ";") && got != s {
			t.Fatalf("cleanQuery(%q) = %q, want it unchanged", s, got)
		}
	})
}
