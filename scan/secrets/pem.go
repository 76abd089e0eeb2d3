package secrets

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"regexp"
	"strings"
)

// pemBegin matches the armor line of a private key: PKCS#1 RSA, SEC 1 EC,
// DSA, OpenSSH, PKCS#8 (plain and encrypted) and OpenPGP secret key blocks.
// Public keys and certificates have other labels and never match.
var pemBegin = regexp.MustCompile(`-----BEGIN ((?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?)-----`)

// pemMaxBody is how far after the BEGIN line the END line is looked for;
// an RSA-8192 key is under 7 KiB of base64.
const pemMaxBody = 16 << 10

// pemMinBytes is the least decoded size of a key body: an Ed25519 PKCS#8 key,
// the smallest, is 48 bytes.
const pemMinBytes = 32

// pemDetector finds PEM-armored private keys, including ones written with
// "\n" escapes inside JSON or environment values. A block whose body is not
// base64 (an elided "MIIE...", a "<your key here>") or is too short or
// uniform to be a key is a template and skipped; a block that decodes and
// parses as a key is high confidence, an encrypted key or one that does not
// parse (or has no END line) medium.
var pemDetector = detector{typ: TypePrivateKey, priority: priorityKey, hints: []string{"-----BEGIN "}, find: findPEM}

func findPEM(b *budget, text string) []match {
	var out []match
	for _, loc := range pemBegin.FindAllStringSubmatchIndex(text, -1) {
		label := text[loc[2]:loc[3]]
		bodyStart := loc[1]
		rest := text[bodyStart:min(len(text), bodyStart+pemMaxBody)]
		// The body runs to the next armor line: the END line, or whatever
		// cuts the block short. Looking no further than that keeps the
		// search linear: a file of BEGIN lines is read once, not once per
		// line for pemMaxBody bytes.
		bodyEnd := strings.Index(rest, "-----")
		if bodyEnd < 0 {
			bodyEnd = len(rest) // truncated, or cut by the scan window
		}
		end := "-----END " + label + "-----"
		complete := strings.HasPrefix(rest[bodyEnd:], end)
		body, encrypted, ok := pemBody(rest[:bodyEnd])
		if !ok {
			continue
		}
		matchEnd := bodyStart + bodyEnd
		if complete {
			matchEnd += len(end)
		}
		m := match{
			typ: TypePrivateKey, start: loc[0], end: matchEnd, secret: body,
			redacted: "-----BEGIN " + label + "----- " + Redact(body),
			conf:     ConfidenceHigh,
		}
		switch {
		case encrypted || strings.HasPrefix(label, "ENCRYPTED"):
			m.conf, m.note = ConfidenceMedium, "encrypted with a passphrase"
		case !complete:
			m.conf, m.note = ConfidenceMedium, "no END line"
		default:
			switch parseKey(b, label, body) {
			case keyInvalid:
				m.conf, m.note = ConfidenceMedium, "does not parse as a "+strings.ToLower(label)
			case keyUnchecked:
				m.conf, m.note = ConfidenceMedium, "not parsed: too large, or too many keys in one file"
			}
		}
		out = append(out, m)
	}
	return out
}

// pemNewlines turns escaped and CR line breaks into LF.
var pemNewlines = strings.NewReplacer(`\r`, "\n", `\n`, "\n", "\r", "\n")

// pemBody returns the base64 body of an armored block: literal "\n" and
// "\r" escapes become line breaks, header lines ("Proc-Type: …", "Version: …")
// and an OpenPGP checksum line ("=abcd") are dropped. It reports whether the
// block is encrypted (Proc-Type 4,ENCRYPTED), and ok false when what remains
// is not the base64 of something key-sized and random.
func pemBody(raw string) (body string, encrypted, ok bool) {
	raw = pemNewlines.Replace(raw)
	var b strings.Builder
	for _, line := range strings.Split(raw, "\n") {
		line = strings.TrimSpace(line)
		line = strings.Trim(line, `"',`)
		switch {
		case line == "":
		case strings.Contains(line, ":"):
			if strings.HasPrefix(line, "Proc-Type:") && strings.Contains(line, "ENCRYPTED") {
				encrypted = true
			}
		case line[0] == '=' && len(line) == 5: // OpenPGP CRC-24
		default:
			b.WriteString(line)
		}
	}
	body = b.String()
	if len(body) < pemMinBytes*4/3 {
		return "", false, false
	}
	for i := 0; i < len(body); i++ {
		if !base64Chars[body[i]] && body[i] != '=' {
			return "", false, false
		}
	}
	if entropy(body) < 4 {
		return "", false, false
	}
	return body, encrypted, true
}

// pemMaxParse is the largest DER parsed as a key: an RSA-8192 key is under
// 5 KB; parsing larger ones costs tens of milliseconds each.
const pemMaxParse = 5 << 10

// keyCheck is what parseKey concluded.
type keyCheck int

const (
	keyValid     keyCheck = iota // parses as the key its label announces
	keyInvalid                   // does not
	keyUnchecked                 // too large, or the search's parse budget is spent
)

// parseKey checks that body decodes to the key its label announces, as far
// as b allows.
func parseKey(b *budget, label, body string) keyCheck {
	der, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		return keyInvalid
	}
	switch label {
	case "RSA PRIVATE KEY", "EC PRIVATE KEY", "PRIVATE KEY":
		if len(der) > pemMaxParse || !b.parse(len(der)) {
			return keyUnchecked
		}
	}
	switch label {
	case "RSA PRIVATE KEY":
		_, err = x509.ParsePKCS1PrivateKey(der)
	case "EC PRIVATE KEY":
		_, err = x509.ParseECPrivateKey(der)
	case "PRIVATE KEY":
		_, err = x509.ParsePKCS8PrivateKey(der)
	case "OPENSSH PRIVATE KEY":
		if !bytes.HasPrefix(der, []byte("openssh-key-v1\x00")) {
			return keyInvalid
		}
		return keyValid
	default: // DSA, PGP: decoding is as far as we check
		if len(der) < pemMinBytes {
			return keyInvalid
		}
		return keyValid
	}
	if err != nil {
		return keyInvalid
	}
	return keyValid
}
