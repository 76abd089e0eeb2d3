package secrets

import (
	"context"
	"hash/maphash"
	"strings"
)

// secretEnvWords are parts of environment variable names that say the value
// is a credential.
var secretEnvWords = []string{"PASSWORD", "PASSWD", "SECRET", "TOKEN", "API_KEY", "APIKEY", "PRIVATE_KEY", "ACCESS_KEY", "CREDENTIAL", "AUTH_KEY"}

// nonSecretEnvSuffixes end names whose value is about a credential, not the
// credential itself: where to find it, how long it lives, whether it is on.
var nonSecretEnvSuffixes = []string{"_FILE", "_PATH", "_DIR", "_URL", "_URI", "_ENDPOINT", "_HOST", "_PORT", "_NAME", "_ID", "_ENABLED", "_DISABLED", "_TTL", "_TIMEOUT", "_EXPIRY", "_EXPIRES", "_LENGTH", "_TYPE", "_HEADER", "_ALGORITHM", "_VERSION", "_REGION", "_ENV", "_VAR"}

// ScanEnv returns the secrets in one environment variable of an image
// config, "NAME=value": whatever ScanText finds in it, and otherwise, if
// NAME says it holds a credential (…_PASSWORD, …_SECRET, …_TOKEN,
// …_API_KEY) and the value is a literal rather than a placeholder or a file
// path, an "env-secret" finding: medium confidence for a long random value,
// low for others.
func ScanEnv(source, entry string) []Secret {
	found, _ := ScanEnvContext(context.Background(), source, entry)
	return found
}

// ScanEnvContext is ScanEnv stopped by ctx, as ScanTextContext is.
func ScanEnvContext(ctx context.Context, source, entry string) ([]Secret, error) {
	found, err := ScanTextContext(ctx, source, entry)
	if len(found) > 0 || err != nil {
		return found, err
	}
	return envSecret(source, entry), nil
}

// envSecret is the "env-secret" finding of ScanEnv, if any.
func envSecret(source, entry string) []Secret {
	name, value, ok := strings.Cut(entry, "=")
	if !ok || !secretEnvName(name) {
		return nil
	}
	v := strings.Trim(value, `"'`)
	if len(v) < 8 || isPlaceholder(v) || strings.HasPrefix(v, "/") || strings.HasPrefix(v, "./") ||
		strings.EqualFold(v, "true") || strings.EqualFold(v, "false") || isDigits(v) {
		return nil
	}
	conf := ConfidenceLow
	if len(v) >= 16 && entropy(v) >= 3.5 {
		conf = ConfidenceMedium
	}
	return []Secret{{Type: TypeEnvironmentSecret, Source: source, Line: 1, Redacted: name + "=" + Redact(v), Confidence: conf,
		fingerprint: maphash.String(fingerprintSeed, v)}}
}

func secretEnvName(name string) bool {
	n := strings.ToUpper(name)
	for _, s := range nonSecretEnvSuffixes {
		if strings.HasSuffix(n, s) {
			return false
		}
	}
	for _, w := range secretEnvWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}
