package secrets

import (
	"regexp"
	"strings"
)

// urlCreds matches scheme://user:password@host. The user may be empty
// (redis://:password@host); the password runs to the last "@" before the
// host, so it may itself hold ":".
var urlCreds = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]{1,30})://([^\s:/?#@'"<>\[\]{}\\]{0,256}):([^\s/?#'"<>\\]{1,256})@([A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])`)

// exampleHosts are hosts used in documentation, never for real services.
var exampleHosts = []string{"example.com", "example.org", "example.net", "example", "host", "hostname", "server", "domain.com", "your-host", "yourhost"}

// urlDetector finds credentials written into URLs, such as a database DSN or
// a git remote with a token, skipping placeholders: a password that is a
// variable or template reference, a word such as "password", a repeated
// character, or a host from documentation (example.com).
var urlDetector = detector{typ: TypeURLCredentials, priority: priorityGeneric, hints: []string{"://"}, find: findURLCreds}

func findURLCreds(text string) []match {
	var out []match
	for _, loc := range urlCreds.FindAllStringSubmatchIndex(text, -1) {
		scheme, user, pass, host := text[loc[2]:loc[3]], text[loc[4]:loc[5]], text[loc[6]:loc[7]], text[loc[8]:loc[9]]
		if loc[2] > 0 && alnum[text[loc[2]-1]] {
			continue // the scheme is the tail of a longer word
		}
		if isPlaceholder(pass) || strings.Contains(user, "$") || strings.Contains(pass, "@") && isPlaceholder(pass[strings.LastIndex(pass, "@")+1:]) {
			continue
		}
		if isExampleHost(host) {
			continue
		}
		redactedUser := user
		if len(user) > 0 {
			redactedUser = Redact(user)
		}
		out = append(out, match{
			typ: TypeURLCredentials, start: loc[0], end: loc[1], secret: pass,
			redacted: scheme + "://" + redactedUser + ":" + Redact(pass) + "@" + host,
			conf:     ConfidenceMedium,
		})
	}
	return out
}

func isExampleHost(host string) bool {
	h := strings.ToLower(host)
	for _, e := range exampleHosts {
		if h == e || strings.HasSuffix(h, "."+e) {
			return true
		}
	}
	return false
}
