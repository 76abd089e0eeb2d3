package secrets

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

type want struct {
	typ  string
	line int
	conf Confidence
	raw  string // the secret, to check that the excerpt hides it
}

func TestScan(t *testing.T) {
	gh := fakeGitHub("ghp_")
	awsID, awsSecret := fakeAWSID(), fakeAWSSecret()
	rsaKey := rsaPEM(t)
	rsaBody := pemBody64(rsaKey)
	slackHook := fakeSlackWebhook()
	npmTok := fakeNPM()
	jwt := fakeJWT()
	pass := "Zq8" + randFrom(base62Alphabet, 13)
	tests := []struct {
		name string
		path string
		data string
		want []want
	}{
		// Private keys.
		{"rsa pkcs1", "/root/.ssh/id_rsa", rsaKey, []want{{TypePrivateKey, 1, ConfidenceHigh, rsaBody}}},
		{"ec sec1", "/etc/ssl/private/server.key", ecPEM(t), []want{{TypePrivateKey, 1, ConfidenceHigh, ""}}},
		{"pkcs8 ed25519", "/app/key.pem", pkcs8PEM(t), []want{{TypePrivateKey, 1, ConfidenceHigh, ""}}},
		{"openssh", "/home/app/.ssh/id_ed25519", opensshPEM(t), []want{{TypePrivateKey, 1, ConfidenceHigh, ""}}},
		{"encrypted legacy pem", "/app/tls.key", encryptedLegacyPEM(t), []want{{TypePrivateKey, 1, ConfidenceMedium, ""}}},
		{"pgp secret block", "/root/private.asc", pgpPrivateBlock(), []want{{TypePrivateKey, 1, ConfidenceHigh, ""}}},
		{"key after text", "/app/config.yaml", "tls:\n  cert: /etc/tls.crt\n  key: |\n" + indent(rsaKey), []want{{TypePrivateKey, 4, ConfidenceHigh, rsaBody}}},
		{"key escaped in json", "/app/secrets.json", `{"key": "` + strings.ReplaceAll(rsaKey, "\n", `\n`) + `"}`, []want{{TypePrivateKey, 1, ConfidenceHigh, rsaBody}}},
		{"truncated key", "/app/key.pem", rsaKey[:len(rsaKey)/2], []want{{TypePrivateKey, 1, ConfidenceMedium, ""}}},
		{"corrupt key body", "/app/key.pem", strings.Replace(rsaKey, rsaBody[:20], randFrom(base64Alphabet, 20), 1), []want{{TypePrivateKey, 1, ConfidenceMedium, ""}}},
		{"dsa key", "/root/.ssh/id_dsa", "-----BEGIN DSA PRIVATE KEY-----\n" + randFrom(base64Alphabet, 64) + "\n" + randFrom(base64Alphabet, 64) + "\n-----END DSA PRIVATE KEY-----\n", []want{{TypePrivateKey, 1, ConfidenceHigh, ""}}},
		{"public key", "/etc/keys/pub.pem", publicKeyPEM(t), nil},
		{"certificate", "/etc/ssl/server.crt", certificatePEM(t), nil},
		{"elided template key", "/app/README.md", "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA...\n-----END RSA PRIVATE KEY-----\n", nil},
		{"placeholder key", "/app/values.yaml", "key: \"-----BEGIN PRIVATE KEY-----\\n<your private key here>\\n-----END PRIVATE KEY-----\"", nil},
		{"repeated filler key", "/app/values.yaml", "-----BEGIN PRIVATE KEY-----\n" + strings.Repeat("A", 64) + "\n" + strings.Repeat("A", 64) + "\n-----END PRIVATE KEY-----\n", nil},
		{"begin line only in code", "/app/pem.go", `if strings.HasPrefix(s, "-----BEGIN RSA PRIVATE KEY-----") {`, nil},
		// GCP.
		{"gcp service account", "/app/sa.json", gcpServiceAccount(t), []want{{TypeGCPServiceAccount, 5, ConfidenceHigh, ""}}},
		{"gcp without key", "/app/sa.json", `{"type": "service_account", "client_email": "a@b.iam.gserviceaccount.com"}`, nil},
		// AWS.
		{"aws credentials file", "/root/.aws/credentials", "[default]\naws_access_key_id = " + awsID + "\naws_secret_access_key = " + awsSecret + "\nregion = eu-west-1\n",
			[]want{{TypeAWSAccessKeyID, 2, ConfidenceHigh, awsID}, {TypeAWSSecretAccessKey, 3, ConfidenceHigh, awsSecret}}},
		{"aws csv row", "/app/creds.csv", "Access key ID,Secret access key\n" + awsID + "," + awsSecret + "\n",
			[]want{{TypeAWSAccessKeyID, 2, ConfidenceHigh, awsID}, {TypeAWSSecretAccessKey, 2, ConfidenceHigh, awsSecret}}},
		{"aws id alone", "/app/.env", "AWS_ACCESS_KEY_ID=" + awsID + "\n", []want{{TypeAWSAccessKeyID, 1, ConfidenceMedium, awsID}}},
		{"aws temporary id", "/app/.env", "key=ASIA" + randFrom(base32Alphabet, 16), []want{{TypeAWSAccessKeyID, 1, ConfidenceMedium, ""}}},
		{"aws secret json", "/app/sts.json", `{"SecretAccessKey": "` + awsSecret + `"}`, []want{{TypeAWSSecretAccessKey, 1, ConfidenceHigh, awsSecret}}},
		{"aws documentation example", "/app/README", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n", nil},
		{"aws id inside longer word", "/app/x", "XAKIA" + randFrom(base32Alphabet, 16), nil},
		{"sha1 after aws id is no secret", "/app/x", awsID + " " + strings.Repeat("3f786850e387550fdab836ed7e6dc881de23001b", 1), []want{{TypeAWSAccessKeyID, 1, ConfidenceMedium, awsID}}},
		// GitHub.
		{"github ghp", "/app/.git-credentials", "https://x:" + gh + "@github.com\n", []want{{TypeGitHubToken, 1, ConfidenceHigh, gh}}},
		{"github gho", "/app/hosts.yml", "oauth_token: " + fakeGitHub("gho_"), []want{{TypeGitHubToken, 1, ConfidenceHigh, ""}}},
		{"github ghu ghs ghr", "/app/env", fakeGitHub("ghu_") + "\n" + fakeGitHub("ghs_") + "\n" + fakeGitHub("ghr_"),
			[]want{{TypeGitHubToken, 1, ConfidenceHigh, ""}, {TypeGitHubToken, 2, ConfidenceHigh, ""}, {TypeGitHubToken, 3, ConfidenceHigh, ""}}},
		{"github fine-grained", "/app/env", "GH_TOKEN=" + fakeGitHubPAT(), []want{{TypeGitHubToken, 1, ConfidenceHigh, ""}}},
		{"github too short", "/app/env", "ghp_" + randFrom(base62Alphabet, 35), nil},
		{"github too long", "/app/env", "ghp_" + randFrom(base62Alphabet, 37), nil},
		{"github unknown prefix", "/app/env", "ghx_" + randFrom(base62Alphabet, 36), nil},
		{"github low entropy", "/app/env", "ghp_" + strings.Repeat("x", 36), nil},
		// GitLab.
		{"gitlab pat", "/app/.env", "GITLAB_TOKEN=" + fakeGitLab(), []want{{TypeGitLabToken, 1, ConfidenceHigh, ""}}},
		{"gitlab routable", "/app/.env", "glpat-" + randFrom(urlAlphabet, 36) + ".01.1" + randFrom("abcdefghijklmnopqrstuvwxyz0123456789", 8), []want{{TypeGitLabToken, 1, ConfidenceHigh, ""}}},
		{"gitlab acceptance-test token", "/app/Makefile", "GITLAB_TOKEN ?= glpat-ACCTEST1234567890123", nil},
		{"github example token", "/app/README", "ghp_" + randFrom(base62Alphabet, 29) + "EXAMPLE", nil},
		{"stripe sequence", "/app/.env", "sk_live_" + "abcdefgh" + randFrom(base62Alphabet, 20), nil},
		{"gitlab too short", "/app/.env", "glpat-" + randFrom(urlAlphabet, 12), nil},
		// Slack.
		{"slack bot", "/app/config.js", `const token = "` + fakeSlackBot() + `";`, []want{{TypeSlackToken, 1, ConfidenceHigh, ""}}},
		{"slack user", "/app/config.js", fakeSlackUser(), []want{{TypeSlackToken, 1, ConfidenceHigh, ""}}},
		{"slack placeholder", "/app/config.js", "SLACK_TOKEN=xoxb-your-token-here", nil},
		{"slack webhook", "/app/alert.sh", "curl -X POST " + slackHook + " -d @msg.json", []want{{TypeSlackWebhook, 1, ConfidenceHigh, slackHook[len("https://hooks.slack.com/services/"):]}}},
		{"slack workflow webhook", "/app/notify.py", "URL = 'https://hooks.slack.com/triggers/T" + randFrom("ABCDEFGHJKLMNPQRSTUVWXYZ", 9) + "/" + randFrom("0123456789", 13) + "/" + randFrom(base62Alphabet, 32) + "'", []want{{TypeSlackWebhook, 1, ConfidenceHigh, ""}}},
		{"slack webhook placeholder", "/app/alert.sh", "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX", nil},
		// Stripe.
		{"stripe secret", "/app/.env", "STRIPE_KEY=" + fakeStripe("sk_live_"), []want{{TypeStripeKey, 1, ConfidenceHigh, ""}}},
		{"stripe restricted", "/app/.env", "key: " + fakeStripe("rk_live_"), []want{{TypeStripeKey, 1, ConfidenceHigh, ""}}},
		{"stripe test key", "/app/.env", "STRIPE_KEY=" + fakeStripe("sk_test_"), nil},
		// URL credentials.
		{"postgres dsn", "/app/config.toml", "dsn = \"postgres://app:" + pass + "@db.internal:5432/app?sslmode=require\"", []want{{TypeURLCredentials, 1, ConfidenceMedium, pass}}},
		{"redis empty user", "/app/.env", "REDIS_URL=redis://:" + pass + "@cache:6379/0", []want{{TypeURLCredentials, 1, ConfidenceMedium, pass}}},
		{"url placeholder password", "/app/README", "mysql://user:password@db/app", nil},
		{"url variable", "/app/entrypoint.sh", "DATABASE_URL=postgres://${DB_USER}:${DB_PASSWORD}@db/app", nil},
		{"url template", "/app/dsn.py", `url = "%s://%s:%s@%s" % (scheme, user, pw, host)`, nil},
		{"url go template", "/app/chart.yaml", "url: amqp://{{ .User }}:{{ .Pass }}@rabbit", nil},
		{"url example host", "/app/doc.txt", "https://alice:" + pass + "@example.com/", nil},
		{"url scott tiger", "/app/models.py", "engine = create_engine('postgresql://scott:tiger@localhost/test')", nil},
		{"url short password", "/app/.env", "AMQP=amqp://app:k9Xq2@rabbit.internal:5672", []want{{TypeURLCredentials, 1, ConfidenceLow, ""}}},
		{"url loopback", "/app/.env", "DB=mysql://app:" + pass + "@127.0.0.1:3306/app", []want{{TypeURLCredentials, 1, ConfidenceLow, pass}}},
		{"url leetspeak placeholder", "/app/test.py", "http://john:p4ssw0rd@10.0.0.8/", nil},
		{"url password is user", "/app/x", "https://admin:admin@registry.corp/", nil},
		{"url tiny password", "/app/x", "https://u:abc@registry.corp/", nil},
		{"url test tld", "/app/x", "https://alice:" + pass + "@api.test/", nil},
		{"url scheme glued to word", "/app/x", "xhttps://alice:" + pass + "@api.corp/", []want{{TypeURLCredentials, 1, ConfidenceMedium, pass}}},
		{"url password with colon and at", "/app/x", "redis://default:" + pass + ":x@y@cache.corp:6379", []want{{TypeURLCredentials, 1, ConfidenceMedium, pass + ":x@y"}}},
		{"url no password", "/app/x", "https://user@github.com/org/repo.git", nil},
		// npm.
		{"npmrc granular", "/root/.npmrc", "//registry.npmjs.org/:_authToken=" + npmTok + "\n", []want{{TypeNPMToken, 1, ConfidenceHigh, npmTok}}},
		{"npmrc uuid", "/root/.npmrc", "registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken=5c0f2f0a-2f7b-4b7e-9d0f-3a1c2b4d5e6f\n", []want{{TypeNPMToken, 2, ConfidenceHigh, ""}}},
		{"npmrc private registry", "/root/.npmrc", "//npm.corp/:_authToken=\"" + randFrom(base64Alphabet, 60) + "\"", []want{{TypeNPMToken, 1, ConfidenceMedium, ""}}},
		{"npmrc documented name", "/root/.npmrc", "//somehost.com/:_authToken=MYTOKEN\n//other/:_authToken=NPM_TOKEN_GOES_HERE\n", nil},
		{"npmrc variable", "/app/.npmrc", "//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n", nil},
		{"bare npm token", "/app/ci.sh", "export NPM_TOKEN=" + npmTok, []want{{TypeNPMToken, 1, ConfidenceHigh, npmTok}}},
		// PyPI.
		{"pypirc", "/root/.pypirc", "[pypi]\nusername = __token__\npassword = " + fakePyPI() + "\n", []want{{TypePyPIToken, 3, ConfidenceHigh, ""}}},
		{"test pypi", "/root/.pypirc", "[testpypi]\npassword = pypi-AgENdGVzdC5weXBpLm9yZw" + randFrom(urlAlphabet, 120) + "\n", []want{{TypePyPIToken, 2, ConfidenceMedium, ""}}},
		{"pypi prefix only", "/root/.pypirc", "password = pypi-AgEIcHlwaS5vcmc", nil},
		// JWT.
		{"jwt", "/app/config.json", `{"token": "` + jwt + `"}`, []want{{TypeJWT, 1, ConfidenceMedium, jwt}}},
		{"jwt-shaped garbage", "/app/x", "eyJ" + randFrom(urlAlphabet, 20) + ".eyJ" + randFrom(urlAlphabet, 20) + "." + randFrom(urlAlphabet, 30), nil},
		// Binary.
		{"binary keeps tokens", "/usr/bin/app", "\x7fELF\x00\x00" + gh, []want{{TypeGitHubToken, 1, ConfidenceHigh, gh}}},
		{"binary keeps pem", "/usr/bin/app", "\x7fELF\x00\x00" + rsaKey, []want{{TypePrivateKey, 1, ConfidenceHigh, rsaBody}}},
		// Mixed and overlapping.
		{"several in one file", "/app/.env", "A=1\nGITHUB_TOKEN=" + gh + "\nNPM_TOKEN=" + npmTok + "\nDB=postgres://app:" + pass + "@db/app\n",
			[]want{{TypeGitHubToken, 2, ConfidenceHigh, gh}, {TypeNPMToken, 3, ConfidenceHigh, npmTok}, {TypeURLCredentials, 4, ConfidenceMedium, pass}}},
		{"token as url password reported once", "/app/.git-credentials", "https://oauth2:" + gh + "@gitlab.corp\n", []want{{TypeGitHubToken, 1, ConfidenceHigh, gh}}},
		{"nothing", "/etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Scan(tt.path, []byte(tt.data))
			if len(got) != len(tt.want) {
				t.Fatalf("got %d findings %+v, want %d", len(got), got, len(tt.want))
			}
			for i, w := range tt.want {
				g := got[i]
				if g.Type != w.typ || g.Line != w.line || g.Confidence != w.conf || g.Path != tt.path || g.Source != "" {
					t.Errorf("finding %d = %+v, want type %s line %d confidence %s", i, g, w.typ, w.line, w.conf)
				}
				if w.raw != "" {
					assertRedacted(t, g.Redacted, w.raw)
				}
				assertNoLongRun(t, g, tt.data)
			}
		})
	}
}

// assertNoLongRun fails if a finding repeats 12 or more consecutive bytes of
// the scanned data that are not fixed, public text (prefixes, armor lines,
// hosts and notes), a coarse check that no excerpt carries a secret.
func assertNoLongRun(t *testing.T, s Secret, data string) {
	t.Helper()
	text := s.Redacted
	for _, part := range strings.Split(text, "…") {
		for _, word := range strings.FieldsFunc(part, func(r rune) bool { return r == ' ' || r == ':' || r == '@' || r == '/' }) {
			if len(word) >= 12 && strings.Contains(data, word) && !publicWord(word) {
				t.Errorf("excerpt %q repeats %q from the data", text, word)
			}
		}
	}
}

func publicWord(w string) bool {
	return strings.HasPrefix(w, "-----BEGIN") || strings.Contains(w, ".") || w == "private_key_id"
}

func indent(s string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	for i := range lines {
		lines[i] = "    " + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}

// pemBody64 returns the base64 body of a PEM block on one line.
func pemBody64(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[1:len(lines)-1], "")
}

func TestScanText(t *testing.T) {
	gh := fakeGitHub("ghs_")
	got := ScanText("history[4].created_by", "/bin/sh -c git clone https://x-access-token:"+gh+"@github.com/acme/app.git")
	if len(got) != 1 || got[0].Type != TypeGitHubToken || got[0].Source != "history[4].created_by" || got[0].Path != "" || got[0].Line != 1 {
		t.Fatalf("got %+v", got)
	}
	assertRedacted(t, got[0].Redacted, gh)
	// A binary-looking value is still searched in full.
	if got := ScanText("label", "\x00"+gh); len(got) != 1 {
		t.Fatalf("got %+v", got)
	}
	if got := ScanText("env", "PATH=/usr/local/sbin:/usr/local/bin"); got != nil {
		t.Fatalf("got %+v", got)
	}
}

func TestScanEnv(t *testing.T) {
	awsSecret := fakeAWSSecret()
	random := randFrom(base62Alphabet, 24)
	tests := []struct {
		entry string
		typ   string
		conf  Confidence
	}{
		{"AWS_SECRET_ACCESS_KEY=" + awsSecret, TypeAWSSecretAccessKey, ConfidenceHigh},
		{"DB_PASSWORD=" + random, TypeEnvironmentSecret, ConfidenceMedium},
		{"API_KEY=" + random, TypeEnvironmentSecret, ConfidenceMedium},
		{"ADMIN_PASSWORD=hunter2hunter2", TypeEnvironmentSecret, ConfidenceLow},
		{"DB_PASSWORD=", "", ""},
		{"DB_PASSWORD=changeme", "", ""},
		{"DB_PASSWORD=${DB_PASSWORD}", "", ""},
		{"DB_PASSWORD_FILE=/run/secrets/db_password", "", ""},
		{"SECRET_KEY_PATH=/etc/app/secret.key", "", ""},
		{"TOKEN_TTL=3600", "", ""},
		{"JWT_SECRET_ENABLED=true", "", ""},
		{"GPG_KEY=A035C8C19219BA821ECEA86B64E628F8D684696D", "", ""},
		{"PYTHON_VERSION=3.12.7", "", ""},
		{"NO_EQUALS_SECRET", "", ""},
	}
	for _, tt := range tests {
		got := ScanEnv("config.Env[0]", tt.entry)
		if tt.typ == "" {
			if got != nil {
				t.Errorf("ScanEnv(%q) = %+v, want nothing", tt.entry, got)
			}
			continue
		}
		if len(got) != 1 || got[0].Type != tt.typ || got[0].Confidence != tt.conf || got[0].Source != "config.Env[0]" {
			t.Errorf("ScanEnv(%q) = %+v, want one %s %s", tt.entry, got, tt.typ, tt.conf)
			continue
		}
		_, value, _ := strings.Cut(tt.entry, "=")
		assertRedacted(t, got[0].Redacted, value)
	}
}

func TestRedact(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", "…"},
		{"abc", "…"},
		{"abcdefg", "…"},
		{"abcdefgh", "ab…"},
		{"abcdefghijklmno", "ab…"},
		{"abcdefghijklmnop", "abcd…op"},
		{"ghp_" + strings.Repeat("Z", 36), "ghp_…ZZ"},
		{"päßwörtpäßwörtpäßwört", "päßw…rt"},
		{"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6\xf5\xf4\xf3\xf2\xf1\xf0", "????…??"},
	} {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for n := range 200 {
		s := randFrom(base64Alphabet, n)
		r := []rune(Redact(s))
		shown := slices.DeleteFunc(r, func(c rune) bool { return c == '…' })
		if len(shown) > 6 || n > 0 && len(shown)*2 > n {
			t.Errorf("Redact of %d chars shows %d", n, len(shown))
		}
	}
}

func TestWants(t *testing.T) {
	for _, tt := range []struct {
		path string
		size int64
		want bool
	}{
		{"/root/.aws/credentials", 120, true},
		{"/app/.env", 300, true},
		{"/app/config/settings.py", 4 << 10, true},
		{"/app/tests/fixtures/key.pem", 1700, true}, // the image's own tests are read
		{"/etc/ssl/private/server.key", 1700, true},
		{"/app/.env", 0, false},
		{"/app/big.json", MaxFileBytes + 1, false},
		{"/app/big.json", MaxFileBytes, true},
		{"/app/logo.PNG", 100, true},
		{"/usr/lib/x86_64-linux-gnu/libssl.so", 100, true},
		{"/app/lib/app.jar", 100, true},
		{"/proc/self/environ", 100, false},
		{"/usr/share/doc/openssl/README", 100, false},
		{"/etc/ssl/certs/ca-certificates.crt", 200 << 10, true},
		{"/etc/ssl/certs/server-key.pem", 1700, true},
		{"/usr/share/ca-certificates/mozilla/ISRG_Root_X1.crt", 1900, true},
		{"/usr/lib/python3.12/test/certdata/keycert.pem", 4000, false},
		{"/usr/local/lib/python3.11/test/keycert.pem", 4000, false},
		{"/usr/lib/python3.12/site-packages/requests/sessions.py", 4000, true},
		{"/usr/local/lib/python3.12/site-packages/tornado/test/test.key", 1700, false},
		{"/app/node_modules/ssh2/test/fixtures/id_rsa", 1700, false},
		{"/app/node_modules/ssh2/lib/client.js", 1700, true},
		{"/usr/local/go/src/crypto/tls/testdata/example-key.pem", 1700, false},
		{"/go/pkg/mod/github.com/x/y@v1.0.0/testdata/key.pem", 1700, false},
		{"/app/testdata/key.pem", 1700, true},
		{"/app/docs/deploy.md", 1700, true},
		{"/opt/app/test-fixtures/key.pem", 1700, true},
		{"/root/go/pkg/mod/github.com/x/y@v1.0.0/auth/token_test.go", 1700, false},
		{"/root/go/pkg/mod/github.com/x/y@v1.0.0/openpgp/keys_test_data.go", 1700, false},
		{"/root/go/pkg/mod/github.com/x/y@v1.0.0/test-fixtures/keys/key.pem", 1700, false},
		{"/root/go/pkg/mod/github.com/x/y@v1.0.0/auth/token.go", 1700, true},
		{"/usr/lib/node_modules/npm/docs/content/configuring-npm/npmrc.md", 1700, false},
		{"/usr/lib/node_modules/jwt/README.md", 1700, false},
		{"/usr/lib/google-cloud-sdk/platform/gsutil/gslib/tests/test_data/test.json", 1700, false},
		{"/usr/local/lib/python3.12/site-packages/boto/test_connection.py", 1700, false},
		{"/usr/local/lib/python3.12/site-packages/boto/connection.py", 1700, true},
	} {
		if got := Wants(tt.path, tt.size); got != tt.want {
			t.Errorf("Wants(%s, %d) = %v, want %v", tt.path, tt.size, got, tt.want)
		}
	}
}

func TestLineNumbers(t *testing.T) {
	gh := fakeGitHub("ghp_")
	var b strings.Builder
	for i := 1; i <= 500; i++ {
		if i%100 == 0 {
			fmt.Fprintf(&b, "token%d=%s\n", i, gh)
		} else {
			fmt.Fprintf(&b, "line %d\n", i)
		}
	}
	got := Scan("/app/x", []byte(b.String()))
	var lines []int
	for _, s := range got {
		lines = append(lines, s.Line)
	}
	if !slices.Equal(lines, []int{100, 200, 300, 400, 500}) {
		t.Fatalf("lines %v", lines)
	}
}

func TestLocation(t *testing.T) {
	if got := (Secret{Path: "/app/.env", Line: 3}).Location(); got != "/app/.env:3" {
		t.Errorf("file location %q", got)
	}
	if got := (Secret{Source: "config.Env[1] TOKEN", Line: 1}).Location(); got != "config.Env[1] TOKEN" {
		t.Errorf("metadata location %q", got)
	}
}

func TestCharsets(t *testing.T) {
	for _, tt := range []struct {
		set  *charset
		in   string
		out  string
		name string
	}{
		{alnum, "azAZ09", "_-./:@ ", "alnum"},
		{alnumDash, "azAZ09_-", "./:@ ", "alnumDash"},
		{jwtChars, "azAZ09_-.", "/:@+ ", "jwtChars"},
		{hostChars, "azAZ09.-_", "/:@[ ", "hostChars"},
		{schemeChars, "azAZ09+.-", "/:@_ ", "schemeChars"},
		{base64Chars, "azAZ09+/", "=-_. ", "base64Chars"},
	} {
		for i := 0; i < len(tt.in); i++ {
			if !tt.set[tt.in[i]] {
				t.Errorf("%s lacks %q", tt.name, tt.in[i])
			}
		}
		for i := 0; i < len(tt.out); i++ {
			if tt.set[tt.out[i]] {
				t.Errorf("%s has %q", tt.name, tt.out[i])
			}
		}
	}
}

func TestExcerpts(t *testing.T) {
	gh := "ghp_" + randFrom(base62Alphabet, 34) + "Qz"
	for _, tt := range []struct{ data, want string }{
		{"DB=postgres://appuser:Xk29fPq7Lm3vRt8w@db.internal:5432/app", "postgres://…:Xk29…8w@db.internal"},
		{"redis://:Xk29fPq7Lm3vRt8w@[fd00::12]:6379", "redis://:Xk29…8w@[fd00::12]"},
		{"t=" + gh, "ghp_…Qz"},
		{"AKIAQ3WERTY7UIOP2Z6M", "AKIA…6M"},
	} {
		got := Scan("/x", []byte(tt.data))
		if len(got) != 1 || got[0].Redacted != tt.want {
			t.Errorf("Scan(%q) = %+v, want excerpt %q", tt.data, got, tt.want)
		}
	}
}

func TestLooksFake(t *testing.T) {
	for s, want := range map[string]bool{
		"ACCTEST1234567890123":                 true,
		"abcdefXq":                             true,
		"zyxwvuQ":                              true,
		"R2d9ExAmPlE0":                         true,
		"hX9kQ2mZ7vB4nL8pW3cT6yF1jD5sG0aE":     false,
		"wJalrXUtnFEMI/K7MDENG/bPxRfiCYzz9Kq2": false,
	} {
		if got := looksFake(s); got != want {
			t.Errorf("looksFake(%q) = %v", s, got)
		}
	}
}

func TestScanManyTokens(t *testing.T) {
	var b strings.Builder
	for b.Len() < MaxFileBytes-100 {
		b.WriteString(fakeGitHub("ghp_"))
		b.WriteString(" ")
		b.WriteString(fakeJWT())
		b.WriteString("\n")
	}
	got := Scan("/dump.txt", []byte(b.String()))
	// Every line holds two tokens, a high-confidence GitHub token and a
	// medium-confidence JWT; a random one may rarely look made-up and be
	// skipped, so each level stops at its cap within the first lines, in order.
	var n Counts
	for _, s := range got {
		n.Add(s.Confidence, 1)
	}
	if n.High != MaxFindings || n.Medium != MaxFindings || got[0].Line > 2 || got[len(got)-1].Line > MaxFindings+2 {
		t.Fatalf("%+v findings, first on line %d, last on line %d", n, got[0].Line, got[len(got)-1].Line)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Line < got[i-1].Line {
			t.Fatalf("findings out of order at %d: line %d after %d", i, got[i].Line, got[i-1].Line)
		}
	}
}
