package secrets

import "regexp"

// tokenRule is a credential recognised by its exact format alone.
type tokenRule struct {
	typ string
	re  *regexp.Regexp
	// boundary is the token's character set: a match glued to more of them
	// is part of something longer and not reported.
	boundary *charset
	// prefixLen is the length of the fixed prefix, excluded from the
	// entropy check.
	prefixLen func(tok string) int
	// minEntropy is the least entropy the random part must have.
	minEntropy float64
	conf       func(tok string) Confidence
	note       string
}

func fixed(n int) func(string) int                { return func(string) int { return n } }
func always(c Confidence) func(string) Confidence { return func(string) Confidence { return c } }

// find returns the rule's matches in text.
func (r tokenRule) find(text string) []match {
	var out []match
	for _, loc := range r.re.FindAllStringIndex(text, -1) {
		start, end := loc[0], loc[1]
		if !isolated(text, start, end, r.boundary) {
			continue
		}
		tok := text[start:end]
		if random := tok[r.prefixLen(tok):]; entropy(random) < r.minEntropy || looksFake(random) {
			continue
		}
		out = append(out, match{typ: r.typ, start: start, end: end, secret: tok, conf: r.conf(tok), note: r.note})
	}
	return out
}

func ruleDetector(typ string, priority int, hints []string, rules ...tokenRule) detector {
	return detector{typ: typ, priority: priority, hints: hints, find: func(_ *budget, text string) []match {
		var out []match
		for _, r := range rules {
			out = append(out, r.find(text)...)
		}
		return out
	}}
}

// Priorities for overlapping matches: specific formats beat generic ones.
const (
	prioritySpecific = 30
	priorityKey      = 20
	priorityGeneric  = 10
)

// githubDetector: classic tokens are a prefix naming the kind (ghp_ personal,
// gho_ OAuth, ghu_ user-to-server, ghs_ server-to-server, ghr_ refresh) and
// 36 base62 characters; fine-grained tokens are github_pat_, 22 base62
// characters, "_" and 59 more.
var githubDetector = ruleDetector(TypeGitHubToken, prioritySpecific, []string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"},
	tokenRule{typ: TypeGitHubToken, re: regexp.MustCompile(`gh[pousr]_[A-Za-z0-9]{36}`), boundary: alnumUnderscore,
		prefixLen: fixed(4), minEntropy: 3.5, conf: always(ConfidenceHigh)},
	tokenRule{typ: TypeGitHubToken, re: regexp.MustCompile(`github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}`), boundary: alnumUnderscore,
		prefixLen: fixed(11), minEntropy: 4, conf: always(ConfidenceHigh)},
)

// gitlabDetector: personal access tokens are glpat- and 20 characters of
// [A-Za-z0-9_-]; GitLab 17.x routable tokens are longer and end in
// ".<2-char version>.<7 to 9 chars>".
var gitlabDetector = ruleDetector(TypeGitLabToken, prioritySpecific, []string{"glpat-"},
	tokenRule{typ: TypeGitLabToken, re: regexp.MustCompile(`glpat-[A-Za-z0-9_-]{20,300}(?:\.[0-9a-z]{2}\.[0-9a-z]{7,9})?`),
		boundary: newCharset("a-z", "A-Z", "0-9", "_-."), prefixLen: fixed(6), minEntropy: 3.2,
		conf: func(tok string) Confidence {
			if len(tok) == 26 || gitlabRoutable.MatchString(tok) {
				return ConfidenceHigh
			}
			return ConfidenceMedium
		}},
)

var gitlabRoutable = regexp.MustCompile(`\.[0-9a-z]{2}\.[0-9a-z]{7,9}$`)

// slackTokenDetector: xoxb- (bot), xoxp- (user), xoxa- (app), xoxr-
// (refresh) and xoxs- (session) tokens: one to three numeric IDs and a
// random tail.
var slackTokenDetector = ruleDetector(TypeSlackToken, prioritySpecific, []string{"xox"},
	tokenRule{typ: TypeSlackToken, re: regexp.MustCompile(`xox[baprs]-(?:[0-9]{1,14}-){1,3}[A-Za-z0-9]{20,64}`),
		boundary: alnumDash, prefixLen: fixed(5), minEntropy: 3.2, conf: always(ConfidenceHigh)},
)

// slackWebhookDetector: incoming webhooks
// (hooks.slack.com/services/T…/B…/<24 chars>) and workflow webhooks
// (hooks.slack.com/workflows|triggers/T…[/A…]/<id>/<32 chars>).
var slackWebhookDetector = ruleDetector(TypeSlackWebhook, prioritySpecific, []string{"hooks.slack.com/"},
	tokenRule{typ: TypeSlackWebhook, re: regexp.MustCompile(`hooks\.slack\.com/services/T[A-Z0-9]{8,12}/B[A-Z0-9]{8,12}/[A-Za-z0-9]{24}`),
		boundary: alnum, prefixLen: fixed(len("hooks.slack.com/services/")), minEntropy: 3.5, conf: always(ConfidenceHigh)},
	tokenRule{typ: TypeSlackWebhook, re: regexp.MustCompile(`hooks\.slack\.com/(?:workflows|triggers)/T[A-Z0-9]{8,12}(?:/[A-Z0-9]{8,14})?/[0-9]{6,24}/[A-Za-z0-9]{32}`),
		boundary: alnum, prefixLen: fixed(len("hooks.slack.com/")), minEntropy: 3.5, conf: always(ConfidenceHigh)},
)

// stripeDetector: live secret (sk_live_) and restricted (rk_live_) keys.
// Test-mode keys (sk_test_) reach no money and are not reported.
var stripeDetector = ruleDetector(TypeStripeKey, prioritySpecific, []string{"_live_"},
	tokenRule{typ: TypeStripeKey, re: regexp.MustCompile(`[sr]k_live_[A-Za-z0-9]{24,247}`), boundary: alnumUnderscore,
		prefixLen: fixed(8), minEntropy: 3.5, conf: always(ConfidenceHigh)},
)

// pypiDetector: PyPI API tokens are pypi- and a base64url macaroon whose
// first bytes encode the location "pypi.org" (AgEIcHlwaS5vcmc) or
// "test.pypi.org" (AgENdGVzdC5weXBpLm9yZw).
var pypiDetector = ruleDetector(TypePyPIToken, prioritySpecific, []string{"pypi-Ag"},
	tokenRule{typ: TypePyPIToken, re: regexp.MustCompile(`pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}`), boundary: alnumDash,
		prefixLen: fixed(5), minEntropy: 4, conf: always(ConfidenceHigh)},
	tokenRule{typ: TypePyPIToken, re: regexp.MustCompile(`pypi-AgENdGVzdC5weXBpLm9yZw[A-Za-z0-9_-]{50,}`), boundary: alnumDash,
		prefixLen: fixed(5), minEntropy: 4, conf: always(ConfidenceMedium), note: "test.pypi.org token"},
)
