package secrets

import (
	"context"
	"hash/maphash"
	"strings"
	"unsafe"
)

// match is one detector hit. It holds the raw secret only while a scan runs:
// Scan and ScanText turn matches into Secrets, which keep the redacted form.
type match struct {
	typ      string
	start    int    // byte offset of the secret in the scanned text
	end      int    // byte offset just past it
	secret   string // the raw value; never leaves the package
	redacted string // empty for Redact(secret), computed for kept matches only
	conf     Confidence
	note     string
}

// detector finds one kind of secret in text.
type detector struct {
	typ string
	// priority decides between overlapping matches: the higher one is kept.
	priority int
	// hints are substrings (at least 2 bytes long) one of which every
	// match contains; text without any of them is not searched (see
	// prefilter). None means always search.
	hints []string
	// find returns the matches in text. Work whose cost does not grow with
	// the text alone (parsing keys) draws on b, which may be nil (no bound).
	find func(b *budget, text string) []match
}

// textDetectors run on every text and file, binary or not: a NUL byte
// does not stop a search. Scanning the executables and shared libraries of
// a Debian system (1,800 files, 2.3 GB) with all of them found nothing but
// the private keys gnutls embeds.
var textDetectors = []detector{
	gcpDetector,
	awsDetector,
	githubDetector,
	gitlabDetector,
	slackTokenDetector,
	slackWebhookDetector,
	stripeDetector,
	npmDetector,
	pypiDetector,
	pemDetector,
	urlDetector,
	jwtDetector,
}

// textFilter selects among textDetectors.
var textFilter = newPrefilter(textDetectors...)

// MaxFindings is the most secrets of each confidence level Scan, ScanText
// and Search return for one file or text: the first ones in it. Each level
// has its own cap, so that low-confidence findings, however many, never
// push out a private key. One is enough to fail a check; a hundred say the
// file is a credential dump.
const MaxFindings = 100

// maxParseBytes bounds the DER one search parses to check that PEM blocks
// are keys (about 50 RSA-2048 keys): parsing costs milliseconds per key,
// and a file of nothing but keys must not cost seconds. Blocks past it are
// reported with medium confidence, unparsed.
const maxParseBytes = 64 << 10

// budget bounds the costly work of one search and carries its caller's
// deadline. A nil *budget has no bounds and never stops.
type budget struct {
	ctx       context.Context
	parseLeft int
}

func newBudget(ctx context.Context) *budget {
	return &budget{ctx: ctx, parseLeft: maxParseBytes}
}

// parse reports whether n more bytes of DER may be parsed, and takes them.
func (b *budget) parse(n int) bool {
	if b == nil {
		return true
	}
	if n > b.parseLeft {
		return false
	}
	b.parseLeft -= n
	return true
}

// err returns why the search must stop (the cause of its context's end), or nil.
func (b *budget) err() error {
	if b == nil || b.ctx == nil || b.ctx.Err() == nil {
		return nil
	}
	return context.Cause(b.ctx)
}

// Scan returns the secrets in the contents of the file at path, at most
// MaxFindings of each confidence level. It searches the bytes as they are,
// archives included but not opened (Search opens them), binary or not.
// Scan does not keep data after it returns, nor change it: the caller may
// reuse the buffer at once.
func Scan(path string, data []byte) []Secret {
	c := newCollector(MaxFindings)
	// Without a context, run never stops early.
	_ = c.scan(nil, path, "", data)
	return c.secrets
}

// ScanText returns the secrets in text, a piece of image metadata such as an
// environment variable, a label or a history entry's created_by command;
// source names it in the findings. It returns at most MaxFindings of each
// confidence level.
func ScanText(source, text string) []Secret {
	found, _ := ScanTextContext(context.Background(), source, text)
	return found
}

// ScanTextContext is ScanText stopped by ctx: when ctx ends it returns what
// it found so far with context.Cause(ctx).
func ScanTextContext(ctx context.Context, source, text string) ([]Secret, error) {
	c := newCollector(MaxFindings)
	err := run(newBudget(ctx), textFilter, text, c, Secret{Source: source}, nil)
	return c.secrets, err
}

// run applies the detectors pf selects to text and adds the surviving
// matches to c as Secrets like like (its Path, Member, Source), in the order
// they appear; c counts those past its caps, which are never redacted, and
// skip, if not nil, drops those it reports already found (by type and
// fingerprint). Of overlapping matches it keeps the most specific, then the
// longest. Its time is O(n log n) in the matches and linear in text; b may
// stop it between detectors and steps, adding nothing and returning the cause.
func run(b *budget, pf *prefilter, text string, c *collector, like Secret, skip func(typ string, fingerprint uint64) bool) error {
	// Matches stay in the slices their detectors return; hits, small,
	// point at them.
	var found [][]match
	var hits []hit
	selected := pf.selected(text)
	for i, d := range pf.dets {
		if selected&(1<<i) == 0 {
			continue
		}
		if err := b.err(); err != nil {
			return err
		}
		ms := d.find(b, text)
		if len(ms) == 0 {
			continue
		}
		for j, m := range ms {
			hits = append(hits, hit{start: m.start, end: m.end, priority: int32(d.priority), set: int32(len(found)), index: int32(j)})
		}
		found = append(found, ms)
	}
	kept, err := resolve(b, hits)
	if err != nil {
		return err
	}
	line, at := 1, 0
	for _, h := range kept {
		k := &found[h.set][h.index]
		line += strings.Count(text[at:k.start], "\n")
		at = k.start
		// Findings of one credential by different detectors, or as a URL
		// password and a token, share the raw value.
		fp := maphash.String(fingerprintSeed, k.secret)
		if skip != nil && skip(k.typ, fp) {
			continue
		}
		if c.full(k.conf) {
			c.omitted.Add(k.conf, 1)
			continue
		}
		// Clone what a detector may have cut from text: Scan's text is the
		// caller's buffer, which it will overwrite.
		redacted := strings.Clone(k.redacted)
		if redacted == "" {
			redacted = Redact(k.secret)
		}
		s := like
		s.Type, s.Line, s.Redacted, s.Confidence, s.Note, s.fingerprint = k.typ, line, redacted, k.conf, strings.Clone(k.note), fp
		c.add(s)
	}
	return nil
}

// bytesText returns data as a string sharing its memory, for searching the
// bytes in place rather than copying them: run returns no string that
// shares it.
func bytesText(data []byte) string {
	return unsafe.String(unsafe.SliceData(data), len(data))
}
