package secrets

import (
	"encoding/base64"
	"encoding/json"
	"regexp"
	"strings"
)

// jwtRe matches a signed JSON Web Token: base64url header and payload that
// both start with '{"' (eyJ), and a signature.
var jwtRe = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}`)

var jwtChars = newCharset("a-z", "A-Z", "0-9", "_-.")

// jwtDetector finds signed JSON Web Tokens whose header decodes to a JSON
// object naming an "alg" and whose payload decodes to a JSON object. They are
// medium confidence: many are expired or for tests, but some are long-lived
// service credentials.
var jwtDetector = detector{typ: TypeJWT, priority: priorityGeneric, hints: []string{"eyJ"}, find: findJWT}

func findJWT(_ *budget, text string) []match {
	var out []match
	for _, loc := range jwtRe.FindAllStringIndex(text, -1) {
		start, end := loc[0], loc[1]
		if !isolated(text, start, end, jwtChars) {
			continue
		}
		tok := text[start:end]
		parts := strings.SplitN(tok, ".", 3)
		var header struct {
			Alg string `json:"alg"`
		}
		var payload map[string]any
		if !decodeJSONSegment(parts[0], &header) || header.Alg == "" || !decodeJSONSegment(parts[1], &payload) {
			continue
		}
		out = append(out, match{typ: TypeJWT, start: start, end: end, secret: tok, conf: ConfidenceMedium, note: "alg " + truncate(header.Alg, 16)})
	}
	return out
}

func decodeJSONSegment(seg string, v any) bool {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(seg, "="))
	return err == nil && json.Unmarshal(b, v) == nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
