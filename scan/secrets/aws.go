package secrets

import (
	"cmp"
	"regexp"
	"slices"
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

func findAWS(_ *budget, text string) []match {
	var assigned []match
	findNear(awsSecretAssign, text, []string{"ecret", "ECRET"}, 16, 120, func(loc []int) {
		if m, ok := awsSecret(text, loc[2], loc[3]); ok {
			assigned = append(assigned, m)
		}
	})
	// assigned and bare are in text order (bare: a secret is looked for
	// after an ID only when no earlier one lies within reach of it), and
	// every secret is 40 bytes long, so ends are in order too: nearby finds
	// them by binary search, not by a look at every secret for every ID.
	var out, bare []match
	findKeyIDs(text, func(start, end int) {
		id := text[start:end]
		if !isolated(text, start, end, alnum) || entropy(id[4:]) < 2.5 || looksFake(id[4:]) {
			return
		}
		m := match{typ: TypeAWSAccessKeyID, start: start, end: end, secret: id, conf: ConfidenceMedium}
		paired := nearby(assigned, start, end) || nearby(bare, start, end)
		if !paired {
			if s, ok := bareSecret(text, end); ok {
				bare = append(bare, s)
				paired = true
			}
		}
		if paired {
			m.conf, m.note = ConfidenceHigh, "secret access key next to it"
		}
		out = append(out, m)
	})
	out = append(out, assigned...)
	return append(out, bare...)
}

// base32Upper is the alphabet of access key IDs after their prefix.
var base32Upper = newCharset("A-Z", "2-7")

// findKeyIDs calls found with the access key IDs in text, in order, as
// awsKeyID.FindAllStringIndex finds them (leftmost first, not
// overlapping): a key ID starts with its prefix and is 20 bytes long, so
// only the bytes after each "A" are looked at, with no regular expression
// and nothing allocated.
func findKeyIDs(text string, found func(start, end int)) {
	for i := 0; i+20 <= len(text); {
		j := strings.IndexByte(text[i:len(text)-19], 'A')
		if j < 0 {
			return
		}
		at := i + j
		if p := text[at : at+4]; p != "AKIA" && p != "ASIA" || !allIn(text[at+4:at+20], base32Upper) {
			i = at + 1
			continue
		}
		found(at, at+20)
		i = at + 20
	}
}

func allIn(s string, set *charset) bool {
	for i := 0; i < len(s); i++ {
		if !set[s[i]] {
			return false
		}
	}
	return true
}

// nearby reports whether one of secrets, in text order, starts within
// awsSecretWindow bytes after end or ends within awsSecretWindow bytes
// before start.
func nearby(secrets []match, start, end int) bool {
	i, _ := slices.BinarySearchFunc(secrets, end, func(s match, at int) int { return cmp.Compare(s.start, at) })
	if i < len(secrets) && secrets[i].start < end+awsSecretWindow {
		return true
	}
	j, _ := slices.BinarySearchFunc(secrets, start+1, func(s match, at int) int { return cmp.Compare(s.end, at) })
	return j > 0 && secrets[j-1].end > start-awsSecretWindow
}

// bareSecret returns the first secret access key written on its own (a
// 40-character run of base64 characters) in the awsSecretWindow bytes
// after an access key ID that ends at end: a loop over the bytes, where a
// regular expression with a 40-fold repetition cost microseconds per ID.
func bareSecret(text string, end int) (match, bool) {
	limit := min(len(text), end+awsSecretWindow)
	for i := end; i < limit; {
		if !base64Chars[text[i]] {
			i++
			continue
		}
		j := i
		for j < limit && base64Chars[text[j]] {
			j++
		}
		if j-i >= 40 {
			// The first 40 bytes of the run, as the regular expression
			// took them; awsSecret rejects them unless the run is 40 long.
			if m, ok := awsSecret(text, i, i+40); ok {
				return m, true
			}
		}
		i = j
	}
	return match{}, false
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
	return match{typ: TypeAWSSecretAccessKey, start: start, end: end, secret: s, conf: ConfidenceHigh}, true
}
