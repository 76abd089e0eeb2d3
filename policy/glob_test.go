package policy

import (
	"strings"
	"testing"
)

func TestMatchGlob(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		// * is exactly one segment
		{"team/*", "team/app", true},
		{"team/*", "team/app/api", false},
		{"team/*", "team", false},
		{"*", "app", true},
		{"*", "team/app", false},
		{"*/release/**", "team/release/app", true},
		{"*/release/**", "team/release", true},
		{"*/release/**", "a/b/release/app", false},
		// ** is zero or more segments
		{"**", "app", true},
		{"**", "a/b/c/d", true},
		{"**", "", true},
		{"team/**", "team", true},
		{"team/**", "team/app", true},
		{"team/**", "team/app/api", true},
		{"team/**", "teams/app", false},
		{"team/**", "other/team/app", false},
		{"**/app", "app", true},
		{"**/app", "a/b/app", true},
		{"**/app", "a/b/app2", false},
		{"a/**/b", "a/b", true},
		{"a/**/b", "a/x/y/b", true},
		{"a/**/b", "a/x/y/c", false},
		{"**/x/**", "a/x/b", true},
		{"**/x/**", "a/y/b", false},
		{"**/**", "a", true},
		// * and ? inside a segment
		{"team-*/**", "team-a/app", true},
		{"team-*/**", "team-/app", true},
		{"team-*/**", "team/app", false},
		{"app-?", "app-1", true},
		{"app-?", "app-12", false},
		{"app-?", "app-", false},
		{"app-?", "app-é", true},
		{"*-svc", "billing-svc", true},
		{"*-svc", "billing-svc/x", false},
		{"a*b*c", "abc", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		// other characters are literal
		{"prod/app", "prod/app", true},
		{"prod/app", "Prod/app", false},
		{"prod/app", "prod/app2", false},
		{"a.b/[x]", "a.b/[x]", true},
		{"a.b", "aXb", false},
		// names are not normalised: empty segments match nothing
		{"**", "/app", false},
		{"**", "app/", false},
		{"**", "a//b", false},
		{"*", "", false},
		{"team/*", "team/", false},
		// invalid patterns match nothing
		{"", "", false},
		{"/team/**", "team/app", false},
		{"team/", "team", false},
		{"a**", "abc", false},
	}
	for _, tt := range tests {
		if got := MatchGlob(tt.pattern, tt.name); got != tt.want {
			t.Errorf("MatchGlob(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

func TestValidGlob(t *testing.T) {
	valid := []string{"**", "*", "prod/**", "*/release/**", "team-?/app-*", "a/**/b", "Team/App"}
	for _, p := range valid {
		if err := ValidGlob(p); err != nil {
			t.Errorf("ValidGlob(%q) = %v, want nil", p, err)
		}
	}
	invalid := map[string]string{
		"":          `invalid glob "": empty pattern`,
		"/prod/**":  `invalid glob "/prod/**": must not start with '/'`,
		"prod/":     `invalid glob "prod/": must not end with '/'`,
		"a//b":      `invalid glob "a//b": empty path segment`,
		"a/b**":     `invalid glob "a/b**": "**" must be a whole path segment (in "b**")`,
		"***":       `invalid glob "***": "**" must be a whole path segment (in "***")`,
		"a b":       `invalid glob "a b": contains white space or a control character`,
		"a\tb":      `invalid glob "a\tb": contains white space or a control character`,
		"a\xffb":    `invalid glob "a\xffb": not valid UTF-8`,
		"**/x**y/z": `invalid glob "**/x**y/z": "**" must be a whole path segment (in "x**y")`,
	}
	for p, want := range invalid {
		err := ValidGlob(p)
		if err == nil {
			t.Errorf("ValidGlob(%q) = nil, want %q", p, want)
			continue
		}
		if err.Error() != want {
			t.Errorf("ValidGlob(%q) = %q, want %q", p, err, want)
		}
	}
}

func TestMatchGlobLongInputsAreFast(t *testing.T) {
	// Backtracking is bounded: this would take ages with naive recursion.
	pattern := strings.Repeat("**/a/", 20) + "b"
	name := strings.Repeat("a/", 200) + "c"
	if MatchGlob(pattern, name) {
		t.Fatal("matched")
	}
	seg := strings.Repeat("*a", 30) + "b"
	if MatchGlob(seg, strings.Repeat("a", 3000)) {
		t.Fatal("matched")
	}
}
