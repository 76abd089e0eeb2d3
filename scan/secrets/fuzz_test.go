package secrets

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
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
				if excerpt == "" {
					excerpt = Redact(m.secret)
				}
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

// FuzzSearch feeds arbitrary bytes, seeded with real archives, to Search:
// it must not panic, its findings name the file, its lists stay within
// their bounds, and it never decompresses past its bound.
func FuzzSearch(f *testing.F) {
	key := ecPEM(f)
	creds := "aws_access_key_id = " + fakeAWSID() + "\naws_secret_access_key = " + fakeAWSSecret() + "\n"
	f.Add(zipBytes(f, zip.Deflate, "META-INF/key.pem", key))
	f.Add(zipBytes(f, zip.Store, "lib/inner.jar", string(zipBytes(f, zip.Deflate, "k.pem", key))))
	f.Add(gzipped(f, tarBytes(f, "root/.aws/credentials", creds)))
	f.Add(gzipped(f, []byte(creds)))
	f.Add(tarBytes(f, "etc/key.pem", key))
	f.Add(tarBytes(f, "a.tgz", string(gzipped(f, tarBytes(f, "b.zip", string(zipBytes(f, zip.Deflate, "c", key)))))))
	enc, _ := zstd.NewWriter(nil)
	f.Add(enc.EncodeAll([]byte(creds), nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		const maxExpanded = 4 << 20
		rep, err := Search(context.Background(), "/f", data, Options{MaxExpandedBytes: maxExpanded})
		if err != nil {
			t.Fatalf("Search: %v", err)
		}
		for _, s := range rep.Secrets {
			if s.Path != "/f" || s.Line < 1 || s.Type == "" {
				t.Fatalf("bad finding %+v", s)
			}
		}
		if len(rep.NotSearched) > MaxNotSearched || len(rep.NotSearched) > rep.NotSearchedCount {
			t.Fatalf("%d listed, %d counted", len(rep.NotSearched), rep.NotSearchedCount)
		}
		if rep.ExpandedBytes > maxExpanded+1 {
			t.Fatalf("decompressed %d bytes, bound %d", rep.ExpandedBytes, maxExpanded)
		}
	})
}

func zipBytes(tb testing.TB, method uint16, name, content string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: method})
	if err != nil {
		tb.Fatal(err)
	}
	w.Write([]byte(content))
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func tarBytes(tb testing.TB, name, content string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Size: int64(len(content)), Mode: 0o644, Typeflag: tar.TypeReg}); err != nil {
		tb.Fatal(err)
	}
	tw.Write([]byte(content))
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func gzipped(tb testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}
