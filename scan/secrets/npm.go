package secrets

import (
	"regexp"
	"strings"
)

var (
	npmAuthToken = regexp.MustCompile(`_authToken[ \t]*=[ \t]*["']?([^\s"']+)`)
	npmToken     = regexp.MustCompile(`npm_[A-Za-z0-9]{36}`)
	uuidRe       = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

// npmDetector finds npm registry tokens: the value of an .npmrc
// "_authToken=" line (unless it is a ${VAR} reference) and bare granular
// tokens, npm_ and 36 base62 characters.
var npmDetector = detector{typ: TypeNPMToken, priority: prioritySpecific, hints: []string{"_authToken", "npm_"}, find: findNPM}

func findNPM(_ *budget, text string) []match {
	var out []match
	for _, loc := range npmAuthToken.FindAllStringSubmatchIndex(text, -1) {
		start, end := loc[2], loc[3]
		tok := text[start:end]
		if len(tok) < 8 || isPlaceholder(tok) || looksFake(tok) {
			continue
		}
		conf := ConfidenceMedium
		if npmToken.MatchString(tok) && len(tok) == 40 || uuidRe.MatchString(tok) {
			conf = ConfidenceHigh
		} else if len(tok) < 16 || entropy(tok) < 3.5 {
			continue // "MYTOKEN", "NPM_TOKEN_HERE": names, not tokens
		}
		out = append(out, match{typ: TypeNPMToken, start: start, end: end, secret: tok, conf: conf})
	}
	for _, loc := range npmToken.FindAllStringIndex(text, -1) {
		start, end := loc[0], loc[1]
		if !isolated(text, start, end, alnumUnderscore) || entropy(text[start+4:end]) < 3.5 || looksFake(text[start+4:end]) {
			continue
		}
		tok := text[start:end]
		out = append(out, match{typ: TypeNPMToken, start: start, end: end, secret: tok, conf: ConfidenceHigh})
	}
	return out
}

// placeholderWords are values that stand for a credential in examples and
// templates rather than being one.
var placeholderWords = map[string]bool{
	"password": true, "passwd": true, "pass": true, "pwd": true, "secret": true, "token": true,
	"changeme": true, "change_me": true, "change-me": true, "example": true, "sample": true,
	"yourpassword": true, "your_password": true, "your-password": true, "mypassword": true,
	"my_password": true, "my-password": true, "yoursecret": true, "your_secret": true,
	"your-secret": true, "yourtoken": true, "your_token": true, "your-token": true,
	"apikey": true, "api_key": true, "api-key": true, "tiger": true, "foo": true, "bar": true,
	"foobar": true, "dummy": true, "placeholder": true, "redacted": true, "null": true,
	"none": true, "undefined": true, "test": true, "xxx": true,
}

// isPlaceholder reports whether v is a stand-in for a credential: a
// variable or template reference (${VAR}, $VAR, $(cmd), {{ .X }}, <value>,
// %s, %(name)s), a word such as "password" or "changeme", or one character
// repeated ("xxxxxx", "******").
func isPlaceholder(v string) bool {
	if v == "" {
		return true
	}
	if strings.HasPrefix(v, "$") || strings.Contains(v, "${") || strings.Contains(v, "$(") ||
		strings.Contains(v, "{{") || strings.Contains(v, "}}") || strings.ContainsAny(v, "<>") ||
		strings.Contains(v, "%s") || strings.Contains(v, "%(") || strings.HasPrefix(v, "{") {
		return true
	}
	if placeholderWords[strings.ToLower(strings.Trim(v, `"'`))] {
		return true
	}
	same := true
	for i := 1; i < len(v); i++ {
		if v[i] != v[0] {
			same = false
			break
		}
	}
	return same
}
