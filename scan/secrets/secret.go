package secrets

import (
	"hash/maphash"
	"strconv"
	"unicode/utf8"
)

// Confidence says how sure a detector is that a finding is a live credential.
type Confidence string

// Confidence levels, from most to least certain.
const (
	// ConfidenceHigh means the value has the exact format of the credential
	// (and, where it can be checked, parses as one).
	ConfidenceHigh Confidence = "high"
	// ConfidenceMedium means the value has the credential's shape but could be
	// a test value, or lacks the part that makes it usable.
	ConfidenceMedium Confidence = "medium"
	// ConfidenceLow means the value is likely, not certainly, a credential.
	ConfidenceLow Confidence = "low"
)

// Secret types reported in Secret.Type.
const (
	// TypePrivateKey is a PEM-armored private key: PKCS#1, SEC 1, PKCS#8, DSA, OpenSSH or OpenPGP.
	TypePrivateKey = "private-key"
	// TypeAWSAccessKeyID is an AWS access key ID (AKIA…, ASIA…).
	TypeAWSAccessKeyID = "aws-access-key-id"
	// TypeAWSSecretAccessKey is an AWS secret access key.
	TypeAWSSecretAccessKey = "aws-secret-access-key"
	// TypeGCPServiceAccount is a Google Cloud service account key file.
	TypeGCPServiceAccount = "gcp-service-account-key"
	// TypeGitHubToken is a GitHub token (ghp_, gho_, ghu_, ghs_, ghr_, github_pat_).
	TypeGitHubToken = "github-token"
	// TypeGitLabToken is a GitLab personal access token (glpat-).
	TypeGitLabToken = "gitlab-token"
	// TypeSlackToken is a Slack API token (xoxb-, xoxp-, xoxa-, xoxr-, xoxs-).
	TypeSlackToken = "slack-token"
	// TypeSlackWebhook is a Slack incoming or workflow webhook URL.
	TypeSlackWebhook = "slack-webhook"
	// TypeStripeKey is a Stripe live secret or restricted key.
	TypeStripeKey = "stripe-key"
	// TypeURLCredentials is a password in a URL, scheme://user:password@host.
	TypeURLCredentials = "url-credentials"
	// TypeNPMToken is an npm registry token.
	TypeNPMToken = "npm-token"
	// TypePyPIToken is a PyPI API token.
	TypePyPIToken = "pypi-token"
	// TypeJWT is a signed JSON Web Token.
	TypeJWT = "jwt"
	// TypeEnvironmentSecret is a literal value of an environment variable
	// whose name says it holds a credential (DB_PASSWORD, API_KEY …).
	TypeEnvironmentSecret = "env-secret"
)

// Secret is one credential found in a file or in image metadata. It never
// holds the credential itself, only a redacted excerpt of it.
type Secret struct {
	// Type names the kind of credential, one of the Type constants.
	Type string `json:"type"`
	// Path is the file the secret was found in (Scan, Search); empty for ScanText.
	Path string `json:"path,omitempty"`
	// Member is the file inside the archive at Path the secret was found in
	// (Search), "WEB-INF/lib/x.jar!/app.properties" for nested archives;
	// empty for a secret in Path's own bytes.
	Member string `json:"member,omitempty"`
	// Source names where in image metadata the secret was found (ScanText),
	// e.g. "config.Env[2] AWS_SECRET_ACCESS_KEY"; empty for Scan.
	Source string `json:"source,omitempty"`
	// Line is the 1-based line the secret starts on.
	Line int `json:"line"`
	// Redacted is an excerpt that identifies the secret to its owner without
	// revealing it: at most its first 4 and last 2 characters.
	Redacted string `json:"redacted"`
	// Confidence says how sure the detector is.
	Confidence Confidence `json:"confidence"`
	// Note explains the finding when there is more to say, e.g. "encrypted".
	Note string `json:"note,omitempty"`

	// fingerprint identifies the raw secret within this process (see Fingerprint).
	fingerprint uint64
}

// fingerprintSeed keys fingerprints: random per process, so that a
// fingerprint says nothing about the secret outside it.
var fingerprintSeed = maphash.MakeSeed()

// Fingerprint identifies the credential itself within this process: two
// findings of the same credential have the same fingerprint, two of
// different ones (almost certainly) do not, even when their excerpts
// coincide ("ghp_…x7" stands for 62×62 different tokens). It is a hash
// keyed with a random per-process seed, never stored or shown, and zero
// for a Secret decoded from JSON.
func (s Secret) Fingerprint() uint64 { return s.fingerprint }

// Redact returns an excerpt of secret that never reveals more than its first
// 4 and last 2 characters, and less of short values: 16 characters or more
// keep 4 and 2, 8 to 15 keep the first 2, shorter ones keep nothing.
func Redact(secret string) string {
	r := make([]rune, 0, len(secret))
	for i := 0; i < len(secret); {
		c, size := utf8.DecodeRuneInString(secret[i:])
		if c == utf8.RuneError && size == 1 {
			c = '?' // each invalid byte counts as one character
		}
		r = append(r, c)
		i += size
	}
	switch {
	case len(r) >= 16:
		return string(r[:4]) + "…" + string(r[len(r)-2:])
	case len(r) >= 8:
		return string(r[:2]) + "…"
	default:
		return "…"
	}
}

// Location names where the secret is, for people: the metadata Source, or
// "path:line" for a file, "path!/member:line" for a file inside an archive.
func (s Secret) Location() string {
	if s.Source != "" {
		return s.Source
	}
	if s.Member != "" {
		return s.Path + "!/" + s.Member + ":" + strconv.Itoa(s.Line)
	}
	return s.Path + ":" + strconv.Itoa(s.Line)
}

// Version identifies what the detectors report. It changes whenever a
// detector is added or changed, so results cached under it (per layer, per
// config) are recomputed rather than trusted.
const Version = "secrets/3"
