package layer_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"fmt"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/scantest"
	"github.com/portcullis-dev/portcullis/scan/layer"
	"github.com/portcullis-dev/portcullis/scan/secrets"
)

// loopbackCreds returns n lines of URL credentials to a loopback host: low
// confidence findings, which the policy drops.
func loopbackCreds(t *testing.T, n int) []byte {
	var b strings.Builder
	for range n {
		fmt.Fprintf(&b, "DB=postgres://app:%s@127.0.0.1:5432/app\n", randomString(t, "abcdefghijklmnopqrstuvwxyz0123456789", 16))
	}
	return []byte(b.String())
}

func TestLowConfidenceFloodsNeverCrowdOutAKey(t *testing.T) {
	key, _ := scantest.PrivateKeyPEM(t)
	for _, tt := range []struct {
		name    string
		entries []entry
	}{
		{"ten files of loopback credentials, then the key", func() []entry {
			var es []entry
			for i := range 10 {
				es = append(es, file(fmt.Sprintf("app/test%d.env", i), loopbackCreds(t, 150)))
			}
			return append(es, file("app/id_rsa", []byte(key)))
		}()},
		{"one file of loopback credentials with the key at its end", []entry{
			file("app/all.env", append(loopbackCreds(t, 2000), key...)),
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := analyze(t, tarLayer(t, tt.entries...), withSecrets())
			var kept secrets.Counts
			keys := 0
			for _, s := range res.Secrets {
				kept.Add(s.Confidence, 1)
				if s.Type == secrets.TypePrivateKey && s.Confidence == secrets.ConfidenceHigh {
					keys++
				}
			}
			if keys != 1 {
				t.Fatalf("%d private keys listed (kept %+v, omitted %+v), want the one", keys, kept, res.SecretsOmittedBy)
			}
			if res.SecretsOmittedBy.High != 0 || res.SecretsOmittedBy.Low == 0 || res.SecretsOmitted != res.SecretsOmittedBy.Total() {
				t.Errorf("omitted %d, by level %+v: want low ones only", res.SecretsOmitted, res.SecretsOmittedBy)
			}
			if kept.Low > layer.MaxSecrets {
				t.Errorf("%d low-confidence secrets listed, over %d", kept.Low, layer.MaxSecrets)
			}
		})
	}
}

func TestSecretsAfterANulByte(t *testing.T) {
	gh := "ghp_" + randomString(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", 36)
	pass := randomString(t, "abcdefghijklmnopqrstuvwxyz0123456789", 20)
	body := "\x00\n" + strings.Repeat("x", 100) + "\nGITHUB_TOKEN=" + gh + "\nDB=postgres://app:" + pass + "@db.internal/app\n"
	res := analyze(t, tarLayer(t, file("app/config", []byte(body))), withSecrets())
	types := map[string]int{}
	for _, s := range res.Secrets {
		types[s.Type] = s.Line
	}
	if types[secrets.TypeGitHubToken] != 3 || types[secrets.TypeURLCredentials] != 4 {
		t.Fatalf("found %+v after a NUL byte, want the token on line 3 and the URL password on line 4", res.Secrets)
	}
}

func TestFilesNotSearchedAreListed(t *testing.T) {
	key, _ := scantest.PrivateKeyPEM(t)
	big := append(bytes.Repeat([]byte("# padding\n"), secrets.MaxFileBytes/10+1), key...)
	limits := withSecrets()
	res := analyze(t, tarLayer(t,
		file("app/big.conf", big),
		file("usr/share/doc/app/id_rsa", []byte(key)),
		symlink("app/id_rsa", "../usr/share/doc/app/id_rsa"),
		hardlink("srv/key.pem", "usr/share/doc/app/id_rsa"),
		symlink("app/conf", "/usr/share/doc/app"),
		// Links that hide nothing: between skipped paths, to searched ones.
		symlink("usr/share/doc/other", "app"),
		symlink("app/config.pem", "/srv/key.pem"),
		file("app/empty", nil),
	), limits)
	want := map[string]string{
		"/app/big.conf": "over 1 MiB",
		"/app/id_rsa":   "links to /usr/share/doc/app/id_rsa, which the secret search skips",
		"/srv/key.pem":  "links to /usr/share/doc/app/id_rsa, which the secret search skips",
		"/app/conf":     "links to /usr/share/doc/app, which the secret search skips",
	}
	got := map[string]string{}
	for _, n := range res.SecretsNotSearched {
		got[n.Location()] = n.Reason
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || res.SecretsNotSearchedCount != len(want) {
		t.Fatalf("not searched (%d):\n got %v\nwant %v", res.SecretsNotSearchedCount, got, want)
	}
	if len(res.Secrets) != 0 {
		t.Errorf("secrets %+v: none of these files is searched", res.Secrets)
	}

	// Off, nothing is listed.
	if off := analyze(t, tarLayer(t, file("app/big.conf", big)), layer.DefaultLimits()); off.SecretsNotSearchedCount != 0 {
		t.Errorf("secret search off lists %+v", off.SecretsNotSearched)
	}
}

func TestNotSearchedListIsBounded(t *testing.T) {
	var es []entry
	for i := range secrets.MaxNotSearched + 50 {
		es = append(es, symlink(fmt.Sprintf("app/l%d", i), "/usr/share/doc/x"))
	}
	res := analyze(t, tarLayer(t, es...), withSecrets())
	if len(res.SecretsNotSearched) != secrets.MaxNotSearched || res.SecretsNotSearchedCount != secrets.MaxNotSearched+50 {
		t.Fatalf("listed %d, counted %d; want %d and %d", len(res.SecretsNotSearched), res.SecretsNotSearchedCount, secrets.MaxNotSearched, secrets.MaxNotSearched+50)
	}
}

// tarOf returns a tar of files, name → content.
func tarOf(t *testing.T, files ...[2]string) []byte {
	var es []entry
	for _, f := range files {
		es = append(es, file(f[0], []byte(f[1])))
	}
	return tarLayer(t, es...)
}

// deflatedZip returns a zip of files, name → content, deflated.
func deflatedZip(t *testing.T, files ...[2]string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		w, err := zw.Create(f[0])
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(f[1]))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSecretsInArchivesInsideALayer(t *testing.T) {
	key, _ := scantest.PrivateKeyPEM(t)
	id, secret := awsKeyPair(t)
	creds := "[default]\naws_access_key_id = " + id + "\naws_secret_access_key = " + secret + "\n"
	inner := deflatedZip(t, [2]string{"BOOT-INF/classes/key.pem", key})
	res := analyze(t, tarLayer(t,
		// A jar without the .jar extension, its key deflated: not in the zip's bytes as such.
		file("app/lib/service", deflatedZip(t, [2]string{"META-INF/x.properties", "a=b\n"}, [2]string{"config/deploy.pem", key})),
		file("app/backup.tgz", gzipBytes(t, tarOf(t, [2]string{"root/.aws/credentials", creds}))),
		file("app/key.pem.gz", gzipBytes(t, []byte(key))),
		file("app/outer.jar", deflatedZip(t, [2]string{"lib/inner.jar", string(inner)})),
		file("app/bundle.tar", tarOf(t, [2]string{"etc/id_rsa", key})),
	), withSecrets())
	got := map[string]secrets.Confidence{}
	for _, s := range res.Secrets {
		got[s.Type+" "+s.Location()] = s.Confidence
	}
	want := map[string]secrets.Confidence{
		"private-key /app/lib/service!/config/deploy.pem:1":                     secrets.ConfidenceHigh,
		"aws-access-key-id /app/backup.tgz!/root/.aws/credentials:2":            secrets.ConfidenceHigh,
		"aws-secret-access-key /app/backup.tgz!/root/.aws/credentials:3":        secrets.ConfidenceHigh,
		"private-key /app/key.pem.gz!/key.pem:1":                                secrets.ConfidenceHigh,
		"private-key /app/outer.jar!/lib/inner.jar!/BOOT-INF/classes/key.pem:1": secrets.ConfidenceHigh,
		"private-key /app/bundle.tar!/etc/id_rsa:1":                             secrets.ConfidenceHigh,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("found\n %v\nwant\n %v", got, want)
	}
	if res.SecretsNotSearchedCount != 0 {
		t.Errorf("not searched %+v", res.SecretsNotSearched)
	}
}

func TestArchivesPastTheirBoundsAreNotSearched(t *testing.T) {
	key, _ := scantest.PrivateKeyPEM(t)
	// Four levels of zips: the key sits deeper than MaxDepth (3) opens.
	nested := deflatedZip(t, [2]string{"key.pem", key})
	for i := range 3 {
		nested = deflatedZip(t, [2]string{fmt.Sprintf("l%d.jar", 3-i), string(nested)})
	}
	// A member that decompresses past MaxFileBytes.
	bomb := deflatedZip(t, [2]string{"zeros", strings.Repeat("\x00", secrets.MaxFileBytes+1)}, [2]string{"fine.pem", key})
	// A gzip whose content is over MaxFileBytes.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(bytes.Repeat([]byte("a"), secrets.MaxFileBytes+1))
	zw.Close()
	// A tar inside a layer whose member is over MaxFileBytes.
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "big.bin", Size: secrets.MaxFileBytes + 1, Mode: 0o644, Typeflag: tar.TypeReg})
	tw.Write(make([]byte, secrets.MaxFileBytes+1))
	tw.Close()
	gzTar := gzipBytes(t, tb.Bytes())
	res := analyze(t, tarLayer(t,
		file("app/deep.jar", nested),
		file("app/bomb.zip", bomb),
		file("app/data.gz", gz.Bytes()),
		file("app/big.tgz", gzTar),
		file("app/broken.zip", append([]byte("PK\x03\x04"), bytes.Repeat([]byte{0xff}, 100)...)),
	), withSecrets())
	got := map[string]string{}
	for _, n := range res.SecretsNotSearched {
		got[n.Location()] = n.Reason
	}
	want := map[string]string{
		"/app/deep.jar!/l1.jar!/l2.jar!/l3.jar": "zip archive nested deeper than 3 levels",
		"/app/bomb.zip!/zeros":                  "over 1 MiB",
		"/app/data.gz":                          "gzip archive not read to its end: over 1 MiB",
		"/app/big.tgz!/big.bin":                 "over 1 MiB",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: not searched %q, want %q", k, got[k], v)
		}
	}
	if !strings.HasPrefix(got["/app/broken.zip"], "zip archive not read to its end: ") {
		t.Errorf("a corrupt zip: %q", got["/app/broken.zip"])
	}
	if len(got) != len(want)+1 {
		t.Errorf("not searched %v", got)
	}
	// The member next to the bomb is searched.
	if len(res.Secrets) != 1 || res.Secrets[0].Location() != "/app/bomb.zip!/fine.pem:1" {
		t.Errorf("secrets %+v, want the key beside the bomb", res.Secrets)
	}
}

func TestReplacedSecretsAreMarkedPerPath(t *testing.T) {
	// Many entries at one path, each with a secret: each replaces the one
	// before, and each marks only the secrets at its path.
	key, _ := scantest.PrivateKeyPEM(t)
	var es []entry
	for range 50 {
		es = append(es, file("app/key.pem", []byte(key)), file("app/other.pem", []byte(key)))
	}
	res := analyze(t, tarLayer(t, es...), withSecrets())
	replaced := 0
	for _, s := range res.Secrets {
		if s.Replaced {
			replaced++
		}
	}
	if len(res.Secrets) != 100 || replaced != 98 {
		t.Fatalf("%d secrets, %d replaced; want 100 and 98 (the last at each path stays)", len(res.Secrets), replaced)
	}
}
