package secrets

import "strings"

// exampleHosts are hosts used in documentation, never for real services.
var exampleHosts = []string{
	"example.com", "example.org", "example.net", "example", "test", "invalid", "localdomain.test",
	"host", "hostname", "server", "domain.com", "your-host", "yourhost", "foo.com", "foo.bar", "test.com", "bogus.net",
}

// urlDetector finds credentials written into URLs, such as a database DSN or
// a git remote with a token, skipping placeholders: a password that is a
// variable or template reference, a word such as "password" (leetspeak
// included), a repeated character, the user name again, under 4 characters,
// or a host from documentation (example.com, *.test, *.invalid). A password
// under 8 characters or a loopback host makes the finding low confidence.
var urlDetector = detector{typ: TypeURLCredentials, priority: priorityGeneric, hints: []string{"://"}, find: findURLCreds}

func findURLCreds(_ *budget, text string) []match {
	var out []match
	for i := 0; i < len(text); {
		j := strings.Index(text[i:], "://")
		if j < 0 {
			break
		}
		at := i + j
		i = at + 3
		m, ok := urlCredsAt(text, at)
		if !ok {
			continue
		}
		out = append(out, m)
	}
	return out
}

// urlCredsAt reads scheme://user:password@host around the "://" at text[at:]:
// a scheme of up to 31 letters, digits, "+", "." or "-" starting with a
// letter; an authority running to the first "/", "?", "#", quote, angle
// bracket, backslash or space; in it a user (possibly empty) up to the first
// ":", the password from there to the last "@", and the host after it.
func urlCredsAt(text string, at int) (match, bool) {
	s := at
	for s > 0 && at-s < 31 && schemeChars[text[s-1]] {
		s--
	}
	for s < at && !isLetter(text[s]) {
		s++
	}
	if at-s < 2 || (s > 0 && alnum[text[s-1]]) {
		return match{}, false
	}
	authStart := at + 3
	authEnd := authStart
	for authEnd < len(text) && authEnd-authStart < 800 && !authorityEnd[text[authEnd]] {
		authEnd++
	}
	auth := text[authStart:authEnd]
	colon := strings.IndexByte(auth, ':')
	lastAt := strings.LastIndexByte(auth, '@')
	if colon < 0 || lastAt < colon+2 {
		return match{}, false
	}
	user, pass := auth[:colon], auth[colon+1:lastAt]
	if strings.ContainsAny(user, "@[]{}") || len(user) > 256 || len(pass) > 256 {
		return match{}, false
	}
	host := auth[lastAt+1:]
	if strings.HasPrefix(host, "[") {
		if k := strings.IndexByte(host, ']'); k > 0 {
			host = host[:k+1]
		} else {
			return match{}, false
		}
	} else {
		k := 0
		for k < len(host) && hostChars[host[k]] {
			k++
		}
		host = host[:k]
	}
	if host == "" || len(host) > 253 || isPlaceholder(pass) || weakPlaceholder(pass) || strings.Contains(user, "$") ||
		pass == user || len(pass) < 4 || isExampleHost(host) {
		return match{}, false
	}
	conf := ConfidenceMedium
	if len(pass) < 8 || isLoopback(host) {
		conf = ConfidenceLow
	}
	redactedUser := user
	if user != "" {
		redactedUser = Redact(user)
	}
	scheme := text[s:at]
	return match{
		typ: TypeURLCredentials, start: s, end: authStart + lastAt + 1 + len(host), secret: pass,
		redacted: scheme + "://" + redactedUser + ":" + Redact(pass) + "@" + host,
		conf:     conf,
	}, true
}

var (
	schemeChars  = newCharset("a-z", "A-Z", "0-9", "+.-")
	hostChars    = newCharset("a-z", "A-Z", "0-9", ".-_")
	authorityEnd = newCharset("/?#'\"<>\\ \t\r\n\v\f`")
)

func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// unLeet undoes leetspeak.
var unLeet = strings.NewReplacer("4", "a", "@", "a", "0", "o", "3", "e", "1", "i", "$", "s", "5", "s")

// weakPlaceholder reports passwords that say they are examples once
// leetspeak is undone: "p4ssw0rd", "mysecretpassword", "s3cr3t".
func weakPlaceholder(p string) bool {
	n := strings.ToLower(unLeet.Replace(p))
	for _, w := range []string{"password", "passwd", "passw", "secret", "changeme", "example", "dummy", "redacted"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

func isLoopback(host string) bool {
	h := strings.ToLower(host)
	return h == "localhost" || strings.HasPrefix(h, "127.") || h == "[::1]" || strings.HasSuffix(h, ".localhost")
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
