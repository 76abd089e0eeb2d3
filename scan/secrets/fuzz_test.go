package secrets

import (
	"strings"
	"testing"
)

// FuzzScan feeds arbitrary bytes to Scan: it must not panic, every finding
// must lie on a line of the input, and no excerpt may contain the secret it
// stands for.
func FuzzScan(f *testing.F) {
	f.Add([]byte("[default]\naws_access_key_id = " + fakeAWSID() + "\naws_secret_access_key = " + fakeAWSSecret() + "\n"))
	f.Add([]byte(rsaPEM(f)))
	f.Add([]byte(opensshPEM(f)))
	f.Add([]byte(pgpPrivateBlock()))
	f.Add([]byte(gcpServiceAccount(f)))
	f.Add([]byte("GITHUB_TOKEN=" + fakeGitHub("ghp_") + "\n" + fakeGitHubPAT() + "\n" + fakeGitLab()))
	f.Add([]byte(fakeSlackBot() + " " + fakeSlackWebhook() + " " + fakeStripe("sk_live_")))
	f.Add([]byte("postgres://app:s3cretpassw0rd@db:5432/app redis://:hunter2hunter@cache"))
	f.Add([]byte("//registry.npmjs.org/:_authToken=" + fakeNPM() + "\npassword = " + fakePyPI() + "\n" + fakeJWT()))
	f.Add([]byte("\x00-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----"))
	f.Fuzz(func(t *testing.T, data []byte) {
		text := string(data)
		lines := strings.Count(text, "\n") + 1
		for _, s := range Scan("/f", data) {
			if s.Line < 1 || s.Line > lines || s.Path != "/f" || s.Type == "" || s.Confidence == "" {
				t.Fatalf("bad finding %+v in %d lines", s, lines)
			}
		}
		// The raw matches, before deduplication, against their excerpts.
		for _, d := range textDetectors {
			for _, m := range d.find(nil, text) {
				if m.start < 0 || m.end > len(text) || m.start >= m.end {
					t.Fatalf("%s match at [%d,%d) outside %d bytes", m.typ, m.start, m.end, len(text))
				}
				excerpt := m.redacted
				switch m.typ {
				case TypeURLCredentials: // the host after the last "@" is public
					excerpt = excerpt[:strings.LastIndex(excerpt, "@")]
				case TypePrivateKey: // so is the armor line
					_, excerpt, _ = strings.Cut(excerpt, "----- ")
				}
				if len(m.secret) >= 7 && strings.Contains(excerpt, m.secret) {
					t.Fatalf("%s excerpt %q contains the secret %q", m.typ, m.redacted, m.secret)
				}
				if n := len([]rune(strings.ReplaceAll(Redact(m.secret), "…", ""))); n > 6 {
					t.Fatalf("Redact shows %d characters", n)
				}
			}
		}
	})
}
