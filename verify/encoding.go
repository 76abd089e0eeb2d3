package verify

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
)

// decodeBase64 decodes standard or URL-safe base64, padded or not, as DSSE and protobuf
// JSON producers emit either.
func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("empty")
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// quote quotes s for a detail message, shortening what an attacker could make long.
func quote(s string) string {
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return strconv.Quote(s)
}

// checkJSONObject checks that data is one JSON object with no key repeated (compared
// case-insensitively, as encoding/json matches field names) at any depth. A repeated
// key would let two parsers read two different claims from the same signed bytes.
func checkJSONObject(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	if tok != json.Delim('{') {
		return errors.New("not a JSON object")
	}
	// Each open container on the stack: nil for arrays, a key set for objects.
	stack := []map[string]bool{{}}
	expectKey := true
	for len(stack) > 0 {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("not JSON: %w", err)
		}
		top := stack[len(stack)-1]
		if top != nil && expectKey {
			if tok == json.Delim('}') {
				stack = stack[:len(stack)-1]
				expectKey = len(stack) > 0 && stack[len(stack)-1] != nil
				continue
			}
			key, _ := tok.(string)
			k := foldKey(key)
			if top[k] {
				return fmt.Errorf("key %s appears twice", quote(key))
			}
			top[k] = true
			expectKey = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, map[string]bool{})
			expectKey = true
		case json.Delim('['):
			stack = append(stack, nil)
		case json.Delim(']'), json.Delim('}'):
			stack = stack[:len(stack)-1]
			expectKey = len(stack) > 0 && stack[len(stack)-1] != nil
		default:
			expectKey = top != nil
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON object")
	}
	return nil
}

// foldKey maps key to a canonical case-folded form: every rune becomes the smallest rune
// of its simple case-folding orbit, so keys encoding/json would match fold together.
func foldKey(key string) string {
	var b strings.Builder
	for _, r := range key {
		low := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			low = min(low, f)
		}
		b.WriteRune(low)
	}
	return b.String()
}
