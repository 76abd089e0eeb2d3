package policy

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// servicesPolicy has two services and a rule that denies latest.
const servicesPolicy = `version: 1
exceptionProcess: "ask #platform"
rules:
  - {id: no-latest, type: tag, mode: block, forbidden: [latest]}
services:
  - name: payments-api
    repositories: ["payments/api", "payments/api-*"]
    team: payments
    tier: critical
    contact: "#payments-oncall"
  - name: ledger
    repositories: ["payments/ledger/**"]
    team: payments
  - name: search
    repositories: ["search/*"]
    team: discovery
    tier: low
    contact: discovery@example.com
`

func TestServiceFor(t *testing.T) {
	p := mustParse(t, servicesPolicy)
	for _, tt := range []struct {
		repo, want string
	}{
		{"payments/api", "payments-api"},
		{"payments/api-worker", "payments-api"},
		{"payments/ledger", "ledger"},
		{"payments/ledger/v2/x", "ledger"},
		{"search/web", "search"},
		{"search/web/v2", ""},
		{"payments/apix", ""},
		{"payments", ""},
		{"other/app", ""},
	} {
		got := ""
		if s := p.ServiceFor(tt.repo); s != nil {
			got = s.Name
		}
		if got != tt.want {
			t.Errorf("ServiceFor(%q) = %q, want %q", tt.repo, got, tt.want)
		}
		ref := p.ServiceRefFor(tt.repo)
		if (ref == nil) != (tt.want == "") || ref != nil && ref.Name != tt.want {
			t.Errorf("ServiceRefFor(%q) = %+v, want %q", tt.repo, ref, tt.want)
		}
	}
	want := Service{Name: "payments-api", Repositories: []string{"payments/api", "payments/api-*"}, Team: "payments", Tier: TierCritical, Contact: "#payments-oncall"}
	if s := p.ServiceFor("payments/api"); !reflect.DeepEqual(*s, want) {
		t.Errorf("ServiceFor = %+v, want %+v", *s, want)
	}
	// Copies: changing one leaves the policy alone.
	p.ServiceFor("payments/api").Repositories[0] = "x"
	p.Services()[0].Repositories[1] = "y"
	if s := p.ServiceFor("payments/api"); !reflect.DeepEqual(*s, want) {
		t.Errorf("ServiceFor after changing copies = %+v", *s)
	}
	if n := len(p.Services()); n != 3 {
		t.Errorf("Services() has %d, want 3", n)
	}
	if s := mustParse(t, "version: 1\n").ServiceFor("payments/api"); s != nil {
		t.Errorf("no services: %+v", s)
	}
}

func TestServicesFor(t *testing.T) {
	p := mustParse(t, servicesPolicy)
	for _, tt := range []struct {
		pattern string
		want    []string
	}{
		{"payments/api", []string{"payments-api"}},
		{"payments/**", []string{"payments-api", "ledger"}},
		{"payments/*", []string{"payments-api", "ledger"}}, // payments/ledger matches ledger's payments/ledger/**
		{"payments/api-?", []string{"payments-api"}},
		{"search/**", []string{"search"}},
		{"team-a/**", nil},
		{"payments//api", nil}, // not a glob
	} {
		var got []string
		for _, s := range p.ServicesFor(tt.pattern) {
			got = append(got, s.Name)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ServicesFor(%q) = %q, want %q", tt.pattern, got, tt.want)
		}
	}
}

func TestServiceValidation(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "required fields",
			src:  "services:\n  - {tier: high}\n  - {name: \"\", team: ~, repositories: [a/b]}\n",
			want: []string{
				"services[0].name: required",
				"services[0].repositories: required",
				"services[0].team: required",
				"services[1].name: required",
				"services[1].team: required",
			},
		},
		{
			name: "bad values",
			src: `services:
  - name: "payments api"
    team: "pay/ments"
    repositories: []
    tier: urgent
    contact: " "
  - name: b
    team: t
    repositories: ["a//b", "x/y", "x/y", 7, {a: b}]
    contact: "line one\nline two"
    owner: someone
  - name: c
    team: t
    repositories: "c/d"
`,
			want: []string{
				`services[0].name: invalid name "payments api" (want up to 63 letters, digits, '.', '_' or '-', starting with a letter or digit)`,
				`services[0].team: invalid name "pay/ments" (want up to 63 letters, digits, '.', '_' or '-', starting with a letter or digit)`,
				"services[0].repositories: empty list: give at least one item or remove the field",
				`services[0].tier: unknown tier "urgent" (want critical, high, medium, low)`,
				"services[0].contact: empty: say whom to contact (a chat channel, an e-mail address or a URL), or remove the field",
				"services[1].repositories[4]: want a string, got a mapping",
				`services[1].repositories[0]: invalid glob "a//b": empty path segment`,
				`services[1].repositories[2]: "x/y" is listed twice`,
				"services[1].contact: want one line of at most 200 characters",
				"services[1].owner: unknown field: services take name, repositories, team, tier and contact (line 12)",
				`services[2].repositories: want a list, got "c/d"`,
			},
		},
		{
			name: "duplicate names and overlapping repositories",
			src: `services:
  - {name: a, team: t, repositories: ["team-a/api", "team-a/web-*"]}
  - {name: a, team: t, repositories: ["team-b/**"]}
  - {name: c, team: u, repositories: ["team-a/**"]}
  - {name: d, team: u, repositories: ["team-a/web-?", "*/worker", "team-b"]}
  - {name: e, team: u, repositories: ["team-c/x", "team-cx/**", "team-c/x-*/y"]}
`,
			want: []string{
				"services[1].name: duplicate of services[0].name",
				`services[2].repositories[0]: "team-a/**" overlaps "team-a/api" of service a (services[0]): a repository belongs to one service; make the patterns disjoint`,
				`services[3].repositories[0]: "team-a/web-?" overlaps "team-a/web-*" of service a (services[0]): a repository belongs to one service; make the patterns disjoint`,
				`services[3].repositories[1]: "*/worker" overlaps "team-b/**" of service a (services[1]): a repository belongs to one service; make the patterns disjoint`,
				`services[3].repositories[2]: "team-b" overlaps "team-b/**" of service a (services[1]): a repository belongs to one service; make the patterns disjoint`,
				// team-cx/worker; team-c/x and team-c/x-*/y overlap nothing.
				`services[4].repositories[1]: "team-cx/**" overlaps "*/worker" of service d (services[3]): a repository belongs to one service; make the patterns disjoint`,
			},
		},
		{
			name: "not a list",
			src:  "services: {name: a}\n",
			want: []string{"services: want a list, got a mapping"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte("version: 1\n" + tt.src))
			if got := problemStrings(t, err); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestGlobsOverlap(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		{"a/*", "a/b", true},
		{"a/*", "a/b/c", false},
		{"a/**", "a", true},
		{"a/**", "a/b/c", true},
		{"a/**", "b/**", false},
		{"**", "x/y", true},
		{"**/api", "team/**", true},
		{"**/api", "team/web", false},
		{"*/api", "team/*/api", false},
		{"a/**/b", "a/**/c", false},
		{"a/**/b", "a/x/**", true}, // a/x/b
		{"a/**/b/**", "a/c/**", true},
		{"a/x-*", "a/*-y", true},   // a/x-y
		{"a/x-*", "a/y-*", false},  // a segment starts with one of them
		{"a/x?z", "a/*y*", true},   // a/xyz
		{"a/x?z", "a/x??z", false}, // lengths differ
		{"a/*", "a/?", true},
		{"a/**", "a/*", true},
		{"a/*b*", "a/*c*", true},    // a/bc
		{"a/*b*c", "a/*c*b", false}, // ends with c, ends with b
		{"a/ab", "a/a*b*", true},
		{"a/ab", "a/a*c", false},
	} {
		if got := globsOverlap(tt.a, tt.b); got != tt.want {
			t.Errorf("globsOverlap(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if got := globsOverlap(tt.b, tt.a); got != tt.want {
			t.Errorf("globsOverlap(%q, %q) = %v, want %v (reversed)", tt.b, tt.a, got, tt.want)
		}
	}
}

// TestGlobsOverlapAgreesWithMatching checks globsOverlap against MatchGlob
// on every name over a small alphabet: two patterns overlap exactly when
// some name matches both.
func TestGlobsOverlapAgreesWithMatching(t *testing.T) {
	patterns := []string{"a", "b", "*", "?", "**", "a*", "*a", "?b", "ab", "a/*", "*/b", "a/**", "**/b", "a/**/b", "*/*", "a?/b", "**/a*", "b/**/a", "?/?"}
	var names []string
	segs := []string{"a", "b", "ab", "ba", "aa", "bb", "aab"}
	for _, x := range segs {
		names = append(names, x)
		for _, y := range segs {
			names = append(names, x+"/"+y)
			for _, z := range segs {
				names = append(names, x+"/"+y+"/"+z)
			}
		}
	}
	for _, a := range patterns {
		for _, b := range patterns {
			want := false
			for _, n := range names {
				if MatchGlob(a, n) && MatchGlob(b, n) {
					want = true
					break
				}
			}
			if got := globsOverlap(a, b); got != want {
				t.Errorf("globsOverlap(%q, %q) = %v, but some name matching both: %v", a, b, got, want)
			}
		}
	}
}

func TestDenyMessageNamesTheOwner(t *testing.T) {
	p := mustParse(t, servicesPolicy)
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	d := p.Evaluate(Input{Action: ActionPush, Repository: "payments/api", Tag: "latest"}, now)
	want := `denied by policy (environment default): [no-latest] tag "latest" is forbidden`
	got := d.DenyMessage()
	if !strings.HasPrefix(got, want) || !strings.HasSuffix(got, ". To request an exception: ask #platform. Owned by team payments (service payments-api, tier critical); contact #payments-oncall") {
		t.Errorf("DenyMessage() = %s", got)
	}
	if want := (&ServiceRef{Name: "payments-api", Team: "payments", Tier: TierCritical, Contact: "#payments-oncall"}); !reflect.DeepEqual(d.Service, want) {
		t.Errorf("Decision.Service = %+v, want %+v", d.Service, want)
	}
	// Without tier and contact; without a service.
	d = p.Evaluate(Input{Action: ActionPush, Repository: "payments/ledger", Tag: "latest"}, now)
	if got := d.DenyMessage(); !strings.HasSuffix(got, "ask #platform. Owned by team payments (service ledger)") {
		t.Errorf("DenyMessage() without tier or contact = %s", got)
	}
	d = p.Evaluate(Input{Action: ActionPush, Repository: "other/app", Tag: "latest"}, now)
	if got := d.DenyMessage(); d.Service != nil || strings.Contains(got, "Owned by") || !strings.HasSuffix(got, "ask #platform") {
		t.Errorf("DenyMessage() without a service = %s (%+v)", got, d.Service)
	}
	// Allowed: no message, but the decision still names the service.
	d = p.Evaluate(Input{Action: ActionPush, Repository: "search/web", Tag: "1.0.0"}, now)
	if d.DenyMessage() != "" || d.Service == nil || d.Service.Team != "discovery" {
		t.Errorf("allowed decision: %q %+v", d.DenyMessage(), d.Service)
	}
}

func TestExceptionServices(t *testing.T) {
	exc := func(id, repo string) string {
		return "  - {id: " + id + ", scope: {repository: \"" + repo + "\", rules: [no-latest]}, reason: r, owner: o@example.com, approvedBy: s@example.com, created: 2026-11-20, expires: 2026-12-04, closure: c}\n"
	}
	p := mustParse(t, servicesPolicy+"exceptions:\n"+exc("A", "payments/api")+exc("B", "payments/**")+exc("C", "team-a/api"))
	var got [][]string
	for _, e := range p.Exceptions() {
		var names []string
		for _, s := range e.Services {
			names = append(names, s.Name+"/"+s.Team+"/"+s.Tier)
		}
		got = append(got, names)
	}
	want := [][]string{{"payments-api/payments/critical"}, {"payments-api/payments/critical", "ledger/payments/"}, nil}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("exception services = %q, want %q", got, want)
	}
}
