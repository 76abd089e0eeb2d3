package policy

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// seedPolicies adds every testdata policy and the built-in sources to f.
func seedPolicies(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, name := range BuiltinNames() {
		data, err := builtinSources[name]()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

func FuzzParse(f *testing.F) {
	seedPolicies(f)
	f.Add([]byte("version: 1\nrules:\n  - {id: a, type: tag, mode: block, allowed: ['^x$'], requireDigest: true}\n"))
	f.Add([]byte("version: 1\nenvironments:\n  - {name: a, hosts: ['[::1]']}\n"))
	f.Add([]byte("version: 1\nauthorities:\n  - {name: a, keyFile: keys/release.pub, signCommand: cosign sign --key x}\n  - {name: b, keyFile: ../x}\n" +
		"rules:\n  - {id: s, type: signature, mode: block, authorities: [a, b], threshold: 2, perPlatform: true}\n"))
	f.Add([]byte("version: 1\nrules:\n  - {id: t, type: tag, mode: warn, forbidden: [latest]}\nexceptionRules: {maxDays: {low: 3}, reminderDays: 2, reminderMinDays: 1}\n" +
		"exceptions:\n  - {id: E1, scope: {repository: team-a/api, tag: latest, rules: [t]}, reason: r, owner: o, approvedBy: s, created: 2026-12-12, expires: 2026-12-14, severity: low, closure: c, ticket: T-1}\n" +
		"  - {id: E2, extends: E1, scope: {repository: 'team-a/**', rules: [t]}, reason: r, owner: o, approvedBy: s, created: 2026-11-01, expires: 2026-11-30, closure: c}\n"))
	f.Add([]byte("version: 1\nrules:\n  - {id: i, type: immutable, mode: block}\n  - {id: v, type: vulnerability, mode: block, severity: high, fixable: true, unknown: ignore, incomplete: pass}\nexceptionFiles: [exceptions/*.yaml, exceptions/team-b.yaml, missing.yaml]\n" +
		"exceptions:\n  - {id: E3, scope: {repository: prod/app, digest: 'sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', rules: [i, v], vulnerabilities: [CVE-2026-1234], package: openssl}, reason: r, owner: o, approvedBy: s, created: 2026-12-01, expires: 2026-12-31, severity: critical, compensatingControls: [waf], closure: c}\n"))
	f.Add([]byte("version: 1\nauthorities:\n  - {name: a, key: \"-----BEGIN PUBLIC KEY-----\\nMCowBQYDK2VwAyEA0eO8pgOqHwkjKRG9ekGjtRRNZY/bHvLdBnnEB8gGcCU=\\n-----END PUBLIC KEY-----\\n\"}\n" +
		"rules:\n  - {id: s, type: signature, mode: warn, authorities: [a]}\n"))
	// Key files and exception files come from testdata/keys and
	// testdata/exceptions, as the loader reads them next to the policy file.
	files := fstest.MapFS{}
	for _, dir := range []string{"keys", "exceptions"} {
		entries, err := os.ReadDir(filepath.Join("testdata", dir))
		if err != nil {
			f.Fatal(err)
		}
		for _, k := range entries {
			data, err := os.ReadFile(filepath.Join("testdata", dir, k.Name()))
			if err != nil {
				f.Fatal(err)
			}
			files[dir+"/"+k.Name()] = &fstest.MapFile{Data: data}
		}
	}
	evidence := []*SignatureEvidence{
		nil,
		{},
		{Verified: []string{"release", "a", "release"}},
		{Verified: []string{"security", "edge"}, CoveredBy: digestB},
		{Findings: []SignatureFinding{{Kind: "attestation"}, {Kind: "tampered"}, {Kind: "?"}}},
	}
	scans := []*VulnerabilityEvidence{
		nil,
		{},
		{Index: true},
		{Incomplete: true, IncompleteReason: "layer too large", Unchecked: 2},
		{DBRevision: "r1", Findings: []VulnerabilityFinding{
			{ID: "CVE-2026-1234", Aliases: []string{"GHSA-xxxx-xxxx-xxxx"}, Package: "openssl", Ecosystem: "Debian:12", Fixed: "3", Fixable: true, Severity: SeverityCritical, OS: true},
			{ID: "GO-2026-4001", Package: "example.com/m", Severity: "?"},
			{ID: "X", Severity: SeverityLow, CVSS: 2}, {ID: "Y", Severity: SeverityHigh}, {ID: "Z", Severity: SeverityMedium},
			{ID: "W", Severity: "none"}, {ID: "V", Severity: SeverityHigh, CVSS: 8}}},
	}
	times := []time.Time{
		time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 12, 14, 23, 59, 0, 0, time.UTC),
		time.Date(2026, 12, 15, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC),
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var read []keyFileRead
		p, err := ParseWith(data, ParseOptions{ReadFile: func(name string) ([]byte, error) {
			b, err := files.ReadFile(name)
			if err == nil {
				read = append(read, keyFileRead{name, b})
			}
			return b, err
		}, Glob: func(pattern string) ([]string, error) { return fs.Glob(files, pattern) }})
		if err != nil {
			ve, ok := err.(*ValidationError)
			if !ok || len(ve.Problems) == 0 {
				t.Fatalf("error %v (%T) is not a non-empty *ValidationError", err, err)
			}
			_ = ve.Error()
			return
		}
		if p.Revision() != revisionOf(data, read...) {
			t.Fatal("revision does not match the source and its key files")
		}
		for _, a := range p.Authorities() {
			if a.PublicKey == nil || checkKey(a.PublicKey) != nil {
				t.Fatalf("authority %s has an unusable key %T", a.Name, a.PublicKey)
			}
		}
		inputs := []Input{
			{Action: ActionPush, Repository: "prod/app", Tag: "latest", Digest: digestA, CurrentDigest: digestB},
			{Action: ActionPush, Repository: "team/release/app", Host: "edge-registry.example:5000", Tag: "1.0.0", Digest: digestA, CurrentDigest: digestA},
			{Action: ActionPull, Repository: "dev/app", Tag: "main"},
			{Action: ActionPull, Repository: "a", Digest: digestA},
			{Action: ActionPull, Repository: "prod/app", Host: "gw.example", Tag: "1.0.0", Digest: digestA},
			{Action: ActionPush, Repository: "a", Tag: "sha256-" + strings.Repeat("a", 64) + ".sig", Kind: KindSignature},
			{Action: "delete", Repository: "", Host: "[::1]"},
			{Action: ActionPull, Repository: "team-a/api", Tag: "1.4.2", Digest: digestA},
			{Action: ActionPull, Repository: "team-b/worker", Tag: "1.0.0", Digest: digestA},
			{Action: ActionPush, Repository: "team-a/api", Tag: "latest", Digest: digestA, CurrentDigest: digestB},
		}
		for _, in := range inputs {
			for i, now := range times {
				in.Signatures = evidence[i%len(evidence)]
				in.Vulnerabilities = scans[(i+len(in.Tag)+len(in.Repository))%len(scans)]
				if in.Action == ActionPull {
					in.Signatures = evidence[(i+len(in.Repository))%len(evidence)]
				}
				d := p.Evaluate(in, now)
				if d.Verdict == VerdictDeny && d.DenyMessage() == "" {
					t.Fatal("deny without a message")
				}
				for _, r := range d.Results {
					msg := r.Message()
					if r.Outcome == OutcomeFail && (r.Type == TypeSignature || r.Type == TypeVulnerability) && r.Fix == "" {
						t.Fatalf("failed %s result without a fix: %+v", r.Type, r)
					}
					if r.Type == TypeVulnerability && r.Outcome == OutcomePass && in.Vulnerabilities != nil && in.Vulnerabilities.Incomplete &&
						!strings.Contains(r.Finding, "not known to be clean") {
						t.Fatalf("an incomplete scan passed as clean: %+v", r)
					}
					if (r.Outcome == OutcomeExcepted) != (r.AppliedException != nil) {
						t.Fatalf("excepted outcome and applied exception disagree: %+v", r)
					}
					if a := r.AppliedException; a != nil && (a.DaysLeft < 1 || !strings.Contains(msg, "covered by exception "+a.ID+" ")) {
						t.Fatalf("excepted result %+v: message %q", r, msg)
					}
					if a := r.ExpiredException; a != nil && (r.Outcome != OutcomeFail || !strings.HasPrefix(r.Fix, a.ID+" expired on ")) {
						t.Fatalf("expired exception not said: %+v", r)
					}
				}
				for _, r := range d.Warnings() {
					if r.Mode == ModeObserve || (r.Outcome != OutcomeFail && r.Outcome != OutcomeExcepted) {
						t.Fatalf("warning %+v", r)
					}
				}
				_ = p.Explain(in.Action, in.Repository, in.Host, in.Tag, in.Digest, now)
			}
			_ = p.Needs(in.Action, in.Repository, in.Host)
			_ = p.FailMode(p.Environment(in.Repository, in.Host))
		}
		_ = p.Rules()
		_ = p.Environments()
		ids := map[string]bool{}
		for _, e := range p.Exceptions() {
			if ids[e.ID] || e.ID == "" || e.Owner == "" || e.ApprovedBy == "" || e.Closure == "" || !e.Expires.After(e.Created) {
				t.Fatalf("invalid exception accepted: %+v", e)
			}
			ids[e.ID] = true
			if e.DurationDays() > p.ExceptionRules().MaxDays[e.effectiveSeverity()] {
				t.Fatalf("exception %s lasts longer than allowed", e.ID)
			}
			if e.Severity == SeverityCritical && len(e.CompensatingControls) == 0 {
				t.Fatalf("critical exception %s without compensating controls", e.ID)
			}
			if exceptionRepoProblem(e.Scope.Repository) != "" {
				t.Fatalf("exception %s has repository %q", e.ID, e.Scope.Repository)
			}
		}
		for _, now := range times {
			expired := 0
			for _, e := range p.Exceptions() {
				if e.Status(now).State == ExceptionExpired {
					expired++
				}
			}
			if due := p.DueExceptions(now, 0); len(due) != expired {
				t.Fatalf("DueExceptions(now, 0) = %d exceptions, %d expired", len(due), expired)
			}
			for _, e := range p.ReminderDue(now) {
				if st := e.Status(now); st.State != ExceptionActive || st.DaysLeft > e.ReminderWindow {
					t.Fatalf("reminder for %s in state %+v (window %d)", e.ID, st, e.ReminderWindow)
				}
			}
		}
	})
}

func FuzzMatchGlob(f *testing.F) {
	for _, s := range [][2]string{
		{"**", "a/b"}, {"*", "a"}, {"prod/**", "prod/app"}, {"*/release/**", "team/release/x"},
		{"a/**/b", "a/x/b"}, {"team-?/*", "team-a/app"}, {"/x", "x"}, {"a//b", "a//b"}, {"a**", "a"},
		{"**/*-svc", "deep/er/billing-svc"}, {"é?", "éé"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		got := MatchGlob(pattern, name)
		if ValidGlob(pattern) != nil {
			if got {
				t.Fatalf("invalid pattern %q matched %q", pattern, name)
			}
			return
		}
		wellFormed := name == "" || !strings.Contains("/"+name+"/", "//")
		// "**" matches every well-formed name; a name with an empty
		// segment matches nothing.
		if MatchGlob("**", name) != wellFormed {
			t.Fatalf("MatchGlob(**, %q) = %v", name, !wellFormed)
		}
		if got && !wellFormed {
			t.Fatalf("%q matched malformed name %q", pattern, name)
		}
		// A pattern without wildcards matches exactly itself.
		if !strings.ContainsAny(pattern, "*?") && got != (pattern == name) {
			t.Fatalf("literal %q vs %q: %v", pattern, name, got)
		}
		// Every name that is a valid pattern without wildcards matches itself.
		if ValidGlob(name) == nil && !strings.ContainsAny(name, "*?") && !MatchGlob(name, name) {
			t.Fatalf("%q does not match itself", name)
		}
		// A "*" segment matches exactly one segment.
		if wellFormed && name != "" && MatchGlob("*", name) != !strings.Contains(name, "/") {
			t.Fatalf("MatchGlob(*, %q) wrong", name)
		}
	})
}
