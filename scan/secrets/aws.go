package secrets

import (
	"regexp"
	"strings"
)

var (
	// awsKeyID matches long-term (AKIA) and temporary (ASIA) access key IDs:
	// the prefix and 16 base32 characters.
	awsKeyID = regexp.MustCompile(`(?:AKIA|ASIA)[A-Z2-7]{16}`)
	// awsSecretAssign matches a secret access key assigned to a name that
	// says so: aws_secret_access_key = …, AWS_SECRET_ACCESS_KEY=…,
	// "SecretAccessKey": "…", aws_secret_key: ….
	awsSecretAssign = regexp.MustCompile(`(?i)(?:secret[_-]?access[_-]?key|aws[_-]?secret[_-]?key)["']?[ \t]*(?::=|=>|[:=])[ \t]*["']?([A-Za-z0-9/+]{40})`)
	// awsSecretBare matches a 40-character run that could be a secret access
	// key; it is only looked for right after an access key ID.
	awsSecretBare = regexp.MustCompile(`[A-Za-z0-9/+]{40}`)
)

// awsSecretWindow is how far after an access key ID a bare secret access key
// is looked for (the rest of a credentials CSV row, a command line).
const awsSecretWindow = 200

// awsDetector finds AWS access key IDs, and secret access keys either
// assigned to a name that says so or written right after an access key ID.
// An ID with its secret beside it is high confidence; an ID alone is medium
// (it names a credential but is not one). AWS's documentation examples
// (AKIAIOSFODNN7EXAMPLE, wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY) are skipped.
var awsDetector = detector{typ: TypeAWSAccessKeyID, priority: prioritySpecific, hints: []string{"AKIA", "ASIA", "ecret", "ECRET"}, find: findAWS}

func findAWS(text string) []match {
	var secrets []match
	for _, loc := range findNear(awsSecretAssign, text, []string{"ecret", "ECRET"}, 16, 120) {
		start, end := loc[2], loc[3]
		if m, ok := awsSecret(text, start, end); ok {
			secrets = append(secrets, m)
		}
	}
	var out []match
	// A key ID starts with its prefix and is 20 bytes long: search only
	// there, not with the regular expression over the whole text.
	for _, loc := range findNear(awsKeyID, text, []string{"AKIA", "ASIA"}, 0, 16) {
		start, end := loc[0], loc[1]
		id := text[start:end]
		if !isolated(text, start, end, alnum) || entropy(id[4:]) < 2.5 || looksFake(id[4:]) {
			continue
		}
		m := match{typ: TypeAWSAccessKeyID, start: start, end: end, secret: id, redacted: Redact(id), conf: ConfidenceMedium}
		window := text[end:min(len(text), end+awsSecretWindow)]
		paired := false
		for _, s := range secrets {
			if s.start >= end && s.start < end+awsSecretWindow || s.end <= start && s.end > start-awsSecretWindow {
				paired = true
			}
		}
		if !paired {
			for _, sl := range awsSecretBare.FindAllStringIndex(window, -1) {
				if s, ok := awsSecret(text, end+sl[0], end+sl[1]); ok {
					secrets = append(secrets, s)
					paired = true
					break
				}
			}
		}
		if paired {
			m.conf, m.note = ConfidenceHigh, "secret access key next to it"
		}
		out = append(out, m)
	}
	return append(out, secrets...)
}

// awsSecret checks that text[start:end] is a plausible secret access key: a
// whole token, random-looking, mixing upper and lower case and digits, and
// not AWS's documentation example.
func awsSecret(text string, start, end int) (match, bool) {
	s := text[start:end]
	if !isolated(text, start, end, base64Chars) || looksFake(s) || entropy(s) < 4.2 ||
		!strings.ContainsAny(s, "abcdefghijklmnopqrstuvwxyz") || !strings.ContainsAny(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") ||
		!strings.ContainsAny(s, "0123456789") {
		return match{}, false
	}
	return match{typ: TypeAWSSecretAccessKey, start: start, end: end, secret: s, redacted: Redact(s), conf: ConfidenceHigh}, true
}
