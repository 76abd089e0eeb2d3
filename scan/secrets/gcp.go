package secrets

import (
	"regexp"
)

var (
	gcpType       = regexp.MustCompile(`"type"\s*:\s*"service_account"`)
	gcpPrivateKey = regexp.MustCompile(`"private_key"\s*:\s*"((?:[^"\\]|\\.)*)"`)
	gcpKeyID      = regexp.MustCompile(`"private_key_id"\s*:\s*"([0-9a-f]{16,64})"`)
	gcpEmail      = regexp.MustCompile(`"client_email"\s*:\s*"([^"\s]{1,256})"`)
)

// gcpDetector finds Google Cloud service account key files: JSON with
// "type": "service_account" and a "private_key" holding a PEM private key.
// It reports the key ID (redacted) and names the account in the note; the
// PEM key inside is reported once, as this finding.
var gcpDetector = detector{typ: TypeGCPServiceAccount, priority: prioritySpecific + 10, hints: []string{"service_account"}, find: findGCP}

func findGCP(b *budget, text string) []match {
	if !gcpType.MatchString(text) {
		return nil
	}
	// The key ID and the account are looked up once per text, not once per
	// key: a file of "private_key" fields must not be read once per field.
	var keyID, email []string
	looked := false
	var out []match
	for _, loc := range gcpPrivateKey.FindAllStringSubmatchIndex(text, -1) {
		start, end := loc[2], loc[3]
		keys := findPEM(b, text[start:end])
		if len(keys) == 0 {
			continue
		}
		if !looked {
			keyID, email, looked = gcpKeyID.FindStringSubmatch(text), gcpEmail.FindStringSubmatch(text), true
		}
		m := match{typ: TypeGCPServiceAccount, start: start, end: end, secret: keys[0].secret, conf: keys[0].conf, note: keys[0].note}
		if keyID != nil {
			m.redacted = "private_key_id " + Redact(keyID[1])
		} else {
			m.redacted = keys[0].redacted
		}
		if email != nil {
			if m.note != "" {
				m.note += "; "
			}
			m.note += "service account " + email[1]
		}
		out = append(out, m)
	}
	return out
}
